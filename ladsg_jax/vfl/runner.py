"""Running a config over seeds with the execution strategy DESIGN §8 calls for.

`loop="scan"` runs an epoch as one jitted `lax.scan`; `loop="step"` calls a jitted step per
batch. `seeds="vmap"` runs all seeds in one vmapped program; `"sequential"` one after another.
`"auto"` picks scan + vmap on a GPU or TPU, and on the CPU scan for MLP bottoms, step for
convolutional ones, and sequential seeds. Every strategy runs the same pure functions from
`make_trainer` and gives the same numbers. The host sees the state only between epochs (for
the progress bar), never inside one.
"""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
from tqdm.auto import tqdm

from ladsg_jax.config import TrainConfig
from ladsg_jax.data.arrays import VFLData
from ladsg_jax.vfl.train import Result, make_trainer


def resolve_strategy(config: TrainConfig, backend: str | None = None) -> tuple[str, str]:
    """The (loop, seeds) strategy that `config` asks for, with "auto" resolved for `backend`."""
    backend = backend or jax.default_backend()
    accelerator = backend != "cpu"
    loop = config.loop
    if loop == "auto":
        loop = "scan" if accelerator or config.bottom == "mlp" else "step"
    seeds = config.seeds
    if seeds == "auto":
        seeds = "vmap" if accelerator else "sequential"
    return loop, seeds


class Runner:
    """Jitted functions of one config, compiled once and reused for every call to `fit`."""

    def __init__(self, config: TrainConfig, optimizers: dict | None = None,
                 backend: str | None = None):
        self.config = config
        self.loop, self.seeds = resolve_strategy(config, backend)
        trainer = make_trainer(config, optimizers)
        self._trainer = trainer

        def epoch_by_steps(state, data, step_fn, draw_fn, eval_fn):
            state, indices = draw_fn(state, data)
            step_metrics = []
            for i in range(indices.shape[-2]):
                state, metrics = step_fn(state, data, indices[..., i, :])
                step_metrics.append(metrics)
            stacked = jax.tree.map(lambda *m: jnp.stack(m, axis=-1), *step_metrics)
            return state, eval_fn(stacked, state, data)

        def vectorize(fn: Callable, data_arg: int) -> Callable:
            if self.seeds != "vmap":
                return jax.jit(fn)
            in_axes = [0] * fn.__code__.co_argcount
            in_axes[data_arg] = None
            return jax.jit(jax.vmap(fn, in_axes=tuple(in_axes)))

        def summarize_eval(stacked, state, data):
            accuracy = trainer.evaluate(state, data.test_x, data.test_y, data)
            return trainer.summarize(stacked, accuracy)

        self._init = vectorize(lambda key, data: trainer.init(key, data), 1)
        if self.loop == "scan":
            self._epoch = vectorize(lambda state, data: trainer.run_epoch(state, data), 1)
        else:
            draw = vectorize(lambda state, data: trainer.draw_epoch(state, data), 1)
            step = vectorize(lambda state, data, idx: trainer.step_on_indices(state, data, idx), 1)
            summarize = vectorize(lambda stacked, state, data: summarize_eval(stacked, state, data), 2)
            self._epoch = lambda state, data: epoch_by_steps(state, data, step, draw, summarize)

    def fit(self, data: VFLData, keys: jax.Array, progress: bool | str = False) -> Result:
        """Trains one run per key; returns a `Result` whose arrays lead with the seed axis.

        `progress` shows a bar per epoch (a string sets its label).
        """
        data = jax.device_put(data)
        keys = jnp.asarray(keys)
        num_seeds, epochs = keys.shape[0], self.config.epochs
        label = progress if isinstance(progress, str) else data.name
        bar = tqdm(total=epochs * (1 if self.seeds == "vmap" else num_seeds), desc=label,
                   unit="epoch", disable=not progress, leave=False)
        groups = [keys] if self.seeds == "vmap" else [keys[i] for i in range(num_seeds)]
        results = []
        for group in groups:
            state = self._init(group, data)
            history = []
            for _ in range(epochs):
                state, metrics = self._epoch(state, data)
                history.append(metrics)
                bar.update(1)
                bar.set_postfix(test_acc=f"{float(jnp.mean(metrics['test_accuracy'])):.3f}")
            stacked = jax.tree.map(lambda *m: jnp.stack(m, axis=-1), *history)
            results.append(Result(state=state, train_loss=stacked["train_loss"],
                                  train_accuracy=stacked["train_accuracy"],
                                  test_accuracy=stacked["test_accuracy"]))
        bar.close()
        if self.seeds == "vmap":
            return results[0]
        return jax.tree.map(lambda *r: jnp.stack(r), *results)


def seed_keys(seed: int, num_seeds: int) -> jax.Array:
    """`num_seeds` independent typed keys from one integer seed."""
    return jax.random.split(jax.random.key(seed), num_seeds)
