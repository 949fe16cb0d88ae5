"""Running a config over seeds with the execution strategy DESIGN §8 calls for.

The loop and seed strategies, and "auto"'s choice between them, are `vfl/strategy.py`'s.

A hyperparameter grid runs the same way: `fit(data, keys, hparams)` with `hparams` a pytree
whose leaves lead with a grid axis (`stack_hparams`) trains every (grid point, seed) pair as one
more run of the same compiled program (the numeric knobs are traced arguments): all points
vmapped together with the seeds (`grid="vmap"`; "auto" wherever seeds are vmapped) or one point
after another (`"sequential"`: each point's numbers then equal its separate run's bit for bit,
where a wider vmap sums in another order); the result's runs are point-major
(`run = point·S + seed`).

Every strategy runs the same pure functions from `make_trainer` and gives the same numbers
(to float rounding: vmapped matrix products may sum in another order). The host sees the
state only between epochs, for the progress bar, never inside one.
"""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from ladsg_jax.config import TrainConfig
from ladsg_jax.data.arrays import VFLData
from ladsg_jax.errors import ConfigError, require
from ladsg_jax.vfl.programs import (first_key, model_config, shared_model_init,
                                     traced_model_init, with_key)
from ladsg_jax.vfl.strategy import count_params, resolve_grid, resolve_strategy
from ladsg_jax.vfl.train import (Result, WireRecord, default_hparams, make_trainer,
                                  result_from_history, stack_hparams)


def restart_clock(bar, label: str, done: int) -> None:
    """Restarts a tqdm bar's clock with `done` steps counted as done before it, so its rate
    and ETA measure only what comes after (e.g. after compilation)."""
    bar.reset(total=bar.total)
    bar.n = bar.last_print_n = bar.initial = done
    bar.set_description_str(label)


class Runner:
    """Jitted functions of one config, compiled once and reused for every call to `fit`.

    The strategy is resolved at the first `fit` (it may depend on the model's size); `loop`
    and `seeds` then say what was chosen.
    """

    def __init__(self, config: TrainConfig, optimizers: dict | None = None,
                 backend: str | None = None):
        self.config = config
        self.backend = backend or jax.default_backend()
        self.trainer = make_trainer(config, optimizers)
        self.optimizers = optimizers
        self.loop: str | None = None
        self.seeds: str | None = None
        self._init = self._epoch = None
        self._warm = False              # whether this runner's programs have run once

    def _build(self, data: VFLData, key: jax.Array) -> None:
        trainer = self.trainer
        hparams = default_hparams(self.config)
        model_init = (jax.jit(trainer.init_model) if self.optimizers else
                      traced_model_init(model_config(self.config)))
        num_params = count_params(model_init, key, data, hparams["learning_rate"])
        self.loop, self.seeds = resolve_strategy(self.config, self.backend, num_params)
        self.grid = resolve_grid(self.config, self.seeds)
        # batch and epoch axes of recorded wires sit after the seed axis when seeds are vmapped
        self._seed_lead = 1 if self.seeds == "vmap" else 0

        def compile_fn(fn: Callable, seed_axes: tuple, donate: tuple = ()) -> Callable:
            """jit, over a vmap across seeds when the strategy is vmap (None: shared argument)."""
            if self.seeds != "vmap":
                return jax.jit(fn, donate_argnums=donate)
            return jax.jit(jax.vmap(fn, in_axes=seed_axes), donate_argnums=donate)

        recording = self.config.record_wire != "none"

        def step_at(state, data, indices, i):
            sent = trainer.sent_embeddings(state, data, indices[i])
            state, metrics, messages = trainer.step_on_indices(state, data, indices[i])
            return state, metrics, (messages, sent) if recording else None

        def summarize_eval(stacked, state, data):
            accuracy = trainer.evaluate(state, data.test_x, data.test_y, data)
            return trainer.summarize(stacked, accuracy)

        # the programs take raw key data, tiled and sliced on the host: no program is compiled
        # for a grid's or a seed group's size
        impl = str(jax.random.key_impl(key))
        init_defense = compile_fn(with_key(trainer.init_defense, impl), (0, None, 0))
        empty = jax.eval_shape(trainer.init_defense, key, data, hparams)
        if not jax.tree.leaves(empty):                 # a defense without state compiles nothing
            init_defense = lambda key_data, data, hparams: empty     # noqa: E731
        init_model = (compile_fn(with_key(model_init, impl), (0, None, 0))
                      if self.optimizers else
                      shared_model_init(model_config(self.config), self.seeds == "vmap", impl))

        def init(key_data, data, hparams):
            return init_model(key_data, data, hparams["learning_rate"]).replace(
                defense_state=init_defense(key_data, data, hparams),
                hparams=jax.device_put(hparams))

        self._init = init
        if self.loop == "scan":
            self._epoch = compile_fn(trainer.run_epoch, (0, None))
            return
        draw = compile_fn(trainer.draw_epoch, (0, None))
        if self.config.parallel != "none":
            step = self._parallel_step(data, recording)
            draw_jitted = draw

            def draw(state, data):
                # the replicated state the parallel step returned, back on one local device,
                # so that the epoch's indices (and the batches gathered with them) are too
                return draw_jitted(jax.device_put(state, jax.local_devices()[0]), data)
        else:
            # the step updates the state in place: it only ever gets the state that `draw` (a
            # new copy, the caller's stays valid) or the previous step returned
            step = compile_fn(step_at, (0, None, 0, None), donate=(0,))
        summarize = compile_fn(summarize_eval, (0, 0, None))

        def epoch_by_steps(state, data):
            state, indices = draw(state, data)
            step_metrics, step_wires = [], []
            for i in range(indices.shape[-2]):
                state, metrics, sent = step(state, data, indices, i)
                step_metrics.append(metrics)
                step_wires.append(sent)
            stack = lambda *m: jnp.stack(m, axis=self._seed_lead)     # noqa: E731
            stacked = jax.tree.map(stack, *step_metrics)
            wire = None
            if recording:
                messages, embeddings = jax.tree.map(stack, *step_wires)
                wire = WireRecord(indices=indices, messages=messages, embeddings=embeddings)
            return state, summarize(stacked, state, data), wire

        self._epoch = epoch_by_steps

    def _parallel_step(self, data: VFLData, recording: bool) -> Callable:
        """`step_at` of `config.parallel`: this process's rows of batch i through the
        compiled data-parallel step (which holds its own jit)."""
        from ladsg_jax.vfl.parallel import gather_batch, make_parallel_step

        step = make_parallel_step(self.config, data, self.config.parallel, self.optimizers)
        count, index = jax.process_count(), jax.process_index()
        if count > 1 and recording:
            raise ConfigError("record_wire", f"with {count} processes each holds only its rows "
                                             "of the messages; allowed: none")

        def step_at(state, data, indices, i):
            rows = indices[i].reshape(count, -1)[index]
            state, metrics, messages = step(state, gather_batch(data, rows))
            return state, metrics, (messages, None) if recording else None

        return step_at

    def runs(self, keys: jax.Array, hparams=None) -> tuple[np.ndarray, dict]:
        """Every run's raw key data and hyperparameters (host arrays), point-major over the grid
        of `hparams` (leaves leading with the grid axis; None: the config's values, one point)."""
        if hparams is None:
            hparams = stack_hparams([default_hparams(self.config)])
        points = jax.tree.leaves(hparams)[0].shape[0]
        key_data = np.asarray(jax.random.key_data(keys))
        return (np.tile(key_data, (points, 1)),
                jax.tree.map(lambda a: np.repeat(np.asarray(a), key_data.shape[0], axis=0),
                             hparams))

    def groups(self, key_data: np.ndarray, hparams, num_seeds: int) -> list:
        """The (key data, hparams) of each group of runs one compiled call trains: with vmapped
        seeds, all runs at once (grid "vmap") or each point's seeds (grid "sequential"); else
        one run each."""
        if self.seeds == "vmap":
            size = key_data.shape[0] if self.grid == "vmap" else num_seeds
            return [(key_data[i:i + size], jax.tree.map(lambda a, i=i: a[i:i + size], hparams))
                    for i in range(0, key_data.shape[0], size)]
        return [(key_data[i], jax.tree.map(lambda a, i=i: a[i], hparams))
                for i in range(key_data.shape[0])]

    def initial_states(self, data: VFLData, keys: jax.Array, hparams=None) -> list:
        """The states `fit` starts from, one per group of runs (the jitted init: parameters and
        the defense's setup, e.g. LADSG's teacher or CAE's autoencoder training)."""
        data, keys, hparams, groups = self._prepare(data, keys, hparams)
        return [self._init(k, data, h) for k, h in groups]

    def _prepare(self, data: VFLData, keys: jax.Array, hparams):
        """`data` on the device, every run's raw key data and hyperparameters, and the groups
        of runs (`groups`), the programs built on first use; bad data or keys are refused."""
        require(isinstance(data, VFLData), "data", f"must be a VFLData, got {type(data).__name__}")
        require(getattr(keys, "ndim", 0) >= 1 and keys.shape[0] > 0, "keys",
                f"must hold at least one key (seed_keys), got {getattr(keys, 'shape', keys)}")
        data, keys = jax.device_put(data), jnp.asarray(keys)
        if self._epoch is None:
            self._build(data, first_key(keys))
        num_seeds = keys.shape[0]
        keys, hparams = self.runs(keys, hparams)
        return data, keys, hparams, self.groups(keys, hparams, num_seeds)

    def epoch(self, state, data: VFLData):
        """One epoch of a seed group's state with the compiled strategy (after `fit` or
        `initial_states` built it): `(state, epoch metrics, WireRecord or None)`."""
        return self._epoch(state, jax.device_put(data))

    def _fit_group(self, g: int, keys, hparams, data: VFLData, checkpoints, on_epoch,
                   bar) -> Result:
        """Trains seed group `g` for the config's epochs, from its last checkpoint if any.
        While this runner's programs compile (its first epoch), the bar says so, and its clock
        restarts when they have: the ETA counts training epochs only."""
        compiling = not self._warm and not bar.disable
        label = bar.desc if compiling else None
        if compiling:
            bar.set_description_str(f"{label} (compiling)")
        state = self._init(keys, data, hparams)
        history, wires, done = [], [], 0
        restored = checkpoints.restore(g, state) if checkpoints else None
        if restored is not None:
            done, state, history, wires = restored
            bar.update(done)
        for epoch in range(done, self.config.epochs):
            state, metrics, wire = self._epoch(state, data)
            if wire is not None:
                wires = [wire] if self.config.record_wire == "last" else wires + [wire]
            metrics = jax.device_get(metrics)
            history.append(metrics)
            if checkpoints:
                checkpoints.save(g, epoch + 1, state, history, wires)
            if on_epoch is not None:
                on_epoch(g, epoch + 1)
            if compiling:
                restart_clock(bar, label, bar.n + 1)
                compiling = False
            else:
                bar.update(1)
            self._warm = True
            bar.set_postfix(test_acc=f"{np.mean(metrics['test_accuracy']):.3f}")
        if compiling:                                       # restored whole: nothing ran
            bar.set_description_str(label)
        stacked = {k: np.stack([m[k] for m in history], axis=self._seed_lead)
                   for k in history[0]}
        wire = (jax.tree.map(lambda *w: jnp.stack(w, axis=self._seed_lead), *wires)
                if wires else None)
        return result_from_history(state, stacked, wire)

    def fit(self, data: VFLData, keys: jax.Array, progress: bool | str = False,
            checkpoint_dir: str | None = None, on_epoch: Callable | None = None,
            hparams=None) -> Result:
        """Trains one run per key; returns a `Result` whose arrays lead with the seed axis.

        With `hparams` (a grid: `stack_hparams` of G pytrees like `default_hparams(config)`),
        one run per (point, key), point-major: the leading axis has G·S runs.

        `progress` shows a bar per epoch (a string sets its label). With `checkpoint_dir`, the
        state is checkpointed with orbax after every epoch and a run that was interrupted
        resumes from its last checkpoint, ending with the same numbers
        (`ladsg_jax.vfl.checkpoint`).
        `on_epoch(group, epoch)` is called after each epoch (and its checkpoint).
        """
        given = data                                       # as passed, for its digest
        data, keys, hparams, groups = self._prepare(data, keys, hparams)
        checkpoints = None
        if checkpoint_dir is not None:
            from ladsg_jax.vfl.checkpoint import EpochCheckpoints
            from ladsg_jax.vfl.identity import run_identity
            checkpoints = EpochCheckpoints(checkpoint_dir, run_identity(
                self.config, given, keys, hparams, self.optimizers))
        bar = tqdm(total=self.config.epochs * len(groups),
                   desc=progress if isinstance(progress, str) else data.name, unit="epoch",
                   disable=not progress, leave=False)
        try:
            results = [self._fit_group(g, group_keys, group_hparams, data, checkpoints,
                                       on_epoch, bar)
                       for g, (group_keys, group_hparams) in enumerate(groups)]
        finally:                    # Ctrl-C included: the lock and orbax's threads let go
            bar.close()
            if checkpoints:
                checkpoints.close()
        if self.seeds == "vmap":
            return results[0] if len(results) == 1 else concatenate_runs(results)
        return stack_runs(results)


@jax.jit
def stack_runs(results: list) -> Result:
    """Sequential runs stacked along a leading seed axis, in one compiled program."""
    return jax.tree.map(lambda *r: jnp.stack(r), *results)


@jax.jit
def concatenate_runs(results: list) -> Result:
    """Groups of vmapped runs (each leading with its runs) joined along that axis, in one
    compiled program (the grid strategy "sequential" with vmapped seeds)."""
    return jax.tree.map(lambda *r: jnp.concatenate(r), *results)


def seed_keys(seed: int, num_seeds: int) -> jax.Array:
    """`num_seeds` independent typed keys from one integer seed."""
    return jax.random.split(jax.random.key(seed), num_seeds)
