"""`make_train(config) -> train(key, data) -> Result`: a whole VFL training run, pure.

An epoch draws a permutation from the state's key and runs the step over its batches as one
`lax.scan`; `train` scans epochs and evaluates after each. A seed sweep is

    train = make_train(config)
    results = jax.jit(jax.vmap(train, in_axes=(0, None)))(jax.random.split(key, 8), data)

`data` is an argument, not a closure: jit embeds closed-over arrays in the program as constants.
So are the numeric hyperparameters (`train(key, data, hparams)`, default `default_hparams(config)`:
the learning rate and the defense's knobs): a grid of them vmaps like seeds in one program.
The pieces (`init`, `draw_epoch`, `step_on_indices`, `run_epoch`, `evaluate`) are exposed by
`make_trainer`, so the runner can drive a jitted step per batch with identical numbers.
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from ladsg_jax.chunks import map_in_chunks
from ladsg_jax.config import TrainConfig, check_against_data, run_config
from ladsg_jax.data.arrays import VFLData
from ladsg_jax.defenses.base import call_hook
from ladsg_jax.vfl.model import VFLModel
from ladsg_jax.vfl.optim import make_optimizers
from ladsg_jax.vfl.state import Batch, TrainState
from ladsg_jax.vfl.step import MESSAGE_NORM, make_train_step


@struct.dataclass
class Result:
    """A finished run: the final state and per-epoch metrics (leading seed axis when swept).

    `defense_metrics` holds what the defense's `update` reported, averaged over each epoch's
    steps (LADSG's norm detection: the rate at which each passive party was flagged), each
    array shaped (epochs, ...) after the seed axis. `message_norm` (epochs,): the mean
    per-sample L2 norm of the messages the passive parties were sent (after the defense).
    """

    state: TrainState
    train_loss: jax.Array
    train_accuracy: jax.Array
    test_accuracy: jax.Array
    wire: "WireRecord | None" = None
    defense_metrics: dict = struct.field(default_factory=dict)
    message_norm: jax.Array | None = None

    @property
    def final_test_accuracy(self) -> jax.Array:
        return self.test_accuracy[..., -1]


@struct.dataclass
class WireRecord:
    """What the passive parties received, batch by batch (config `record_wire`).

    `indices[e, b]` are the training-sample indices of batch b of recorded epoch e, and
    `messages[k][e, b]` the (batch_size, d) messages passive party k received for them. With
    `record_wire="last"` only the final epoch is kept (e has length 1). Within one epoch (as
    `run_epoch` returns it) the epoch axis is absent. `embeddings[k][e, b]`, with config
    `record_embeddings` (else None), are the embeddings party k sent for that batch: its
    bottom's output at that step, before the update.
    """

    indices: jax.Array
    messages: tuple
    embeddings: tuple | None = None

    def per_sample(self, num_samples: int, epoch: int = -1) -> tuple[jax.Array, jax.Array]:
        """Party 0's messages of one recorded epoch in sample order, and which samples were seen.

        Samples left out by the epoch's last partial batch have zero messages and `seen=False`.
        """
        idx = self.indices[epoch].reshape(-1)
        msgs = self.messages[0][epoch].reshape(idx.shape[0], -1)
        out = jnp.zeros((num_samples, msgs.shape[-1]), msgs.dtype).at[idx].set(msgs)
        seen = jnp.zeros((num_samples,), bool).at[idx].set(True)
        return out, seen


class Trainer(NamedTuple):
    """The pure functions of one config; every execution strategy is built from these."""

    config: TrainConfig
    init: Callable          # (key, data, hparams=None) -> TrainState
    init_model: Callable    # (key, data, learning_rate) -> TrainState without the defense's
    init_defense: Callable  # (key, data, hparams=None) -> the defense's state
    draw_epoch: Callable    # (state, data) -> (state, indices (num_batches, batch_size))
    step_on_indices: Callable  # (state, data, indices (batch_size,)) -> (state, metrics, messages)
    sent_embeddings: Callable  # (state, data, indices) -> passive parties' embeddings, or None
    summarize: Callable     # (stacked step metrics, test accuracy) -> epoch metrics
    run_epoch: Callable     # (state, data) -> (state, epoch metrics, WireRecord of it or None)
    evaluate: Callable      # (state, xs, y, data) -> accuracy
    train: Callable         # (key, data, hparams=None) -> Result


def make_trainer(config: TrainConfig, optimizers: dict | None = None) -> Trainer:
    """Builds the pure training functions of `config`.

    `optimizers` overrides some parties' optax transformations (a dict keyed by "party_k");
    the rest use the config's optimizer.
    """
    def model_for(data: VFLData) -> VFLModel:
        check_against_data(config, data.num_parties, data.num_classes, data.num_train,
                           data.vocab_size)
        return VFLModel.from_config(config, data.num_classes)

    def optimizers_for(data: VFLData):
        """`rate -> {"party_k": optax transformation}` at a (traced) learning rate."""
        steps = data.num_train // config.batch_size
        return lambda rate: make_optimizers(config, optimizers, steps, rate)

    def init_model(key: jax.Array, data: VFLData, learning_rate: jax.Array) -> TrainState:
        """Parameters, BatchNorm statistics and optimizer states: all but the defense's state
        and the hyperparameters (a function of the model and optimizer alone, so runs of
        every defense can share its compiled program)."""
        model = model_for(data)
        init_key, key = jax.random.split(key)
        sample = tuple(x[: config.batch_size] for x in data.train_x)
        params, batch_stats = model.init(init_key, sample)
        opts = optimizers_for(data)(learning_rate)
        opt_state = {name: opts[name].init(p) for name, p in params.items()}
        return TrainState(params=params, batch_stats=batch_stats, opt_state=opt_state, key=key,
                          step=jnp.zeros((), jnp.int32))

    def init_defense(key: jax.Array, data: VFLData, hparams: dict | None = None):
        """The defense's per-run state (LADSG's teacher, CAE's autoencoder), from the same key."""
        model_for(data)
        hparams = default_hparams(config) if hparams is None else hparams
        defense_key = jax.random.fold_in(jax.random.split(key)[0], 1)
        return call_hook(config.defense, "init", defense_key, data,
                         run_config(config, hparams["learning_rate"]), hparams["defense"])

    def init(key: jax.Array, data: VFLData, hparams: dict | None = None) -> TrainState:
        hparams = default_hparams(config) if hparams is None else hparams
        return init_model(key, data, hparams["learning_rate"]).replace(
            defense_state=init_defense(key, data, hparams), hparams=hparams)

    def draw_epoch(state: TrainState, data: VFLData):
        key, perm_key = jax.random.split(state.key)
        num_batches = data.num_train // config.batch_size
        perm = jax.random.permutation(perm_key, data.num_train)
        indices = perm[: num_batches * config.batch_size].reshape(num_batches, config.batch_size)
        return state.replace(key=key), indices

    def step_on_indices(state: TrainState, data: VFLData, indices: jax.Array):
        step = make_train_step(model_for(data), optimizers_for(data), config.defense)
        batch = Batch(x=tuple(x[indices] for x in data.train_x), y=data.train_y[indices],
                      index=indices)
        return step(state, batch)

    def sent_embeddings(state: TrainState, data: VFLData, indices: jax.Array):
        """What the passive parties send in the step on `indices` from `state` (their bottoms
        in training mode), when the config records them; else None."""
        if not config.record_embeddings:
            return None
        model = model_for(data)
        hs, _ = model.embeddings(state.params, state.batch_stats,
                                 tuple(x[indices] for x in data.train_x), train=True)
        return tuple(hs[k] for k in model.passive)

    def evaluate(state: TrainState, xs: tuple, y: jax.Array, data: VFLData) -> jax.Array:
        model = model_for(data)
        hp = state.hparams["defense"]
        logits = map_in_chunks(lambda c: model.predict(state.params, state.batch_stats, c,
                                                       config.defense, hp, state.defense_state),
                               xs, config.eval_batch_size)
        scores = call_hook(config.defense, "decode", hp, state.defense_state, logits)
        predictions = jnp.argmax(scores, axis=-1)
        return jnp.mean(predictions == y)

    def summarize(step_metrics: dict, test_accuracy: jax.Array) -> dict:
        """Epoch means of the step metrics (stacked on axis 0) and the test accuracy."""
        epoch = {name: jnp.mean(values, axis=0) for name, values in step_metrics.items()}
        return {"train_loss": epoch.pop("loss"), "train_accuracy": epoch.pop("accuracy"),
                "test_accuracy": test_accuracy, **epoch}

    recording = config.record_wire != "none"

    def run_epoch(state: TrainState, data: VFLData):
        state, indices = draw_epoch(state, data)

        def body(s, i):
            sent = sent_embeddings(s, data, i)
            s, metrics, messages = step_on_indices(s, data, i)
            return s, (metrics, messages if recording else None, sent)

        state, (step_metrics, messages, sent) = jax.lax.scan(body, state, indices)
        wire = WireRecord(indices=indices, messages=messages, embeddings=sent) if recording \
            else None
        return state, summarize(step_metrics, evaluate(state, data.test_x, data.test_y, data)), wire

    def train(key: jax.Array, data: VFLData, hparams: dict | None = None) -> Result:
        data = jax.tree.map(jnp.asarray, data)      # host arrays cannot be indexed by tracers
        state = init(key, data, hparams)
        if config.record_wire == "last":
            blank = jax.tree.map(lambda a: jnp.zeros(a.shape, a.dtype),
                                 jax.eval_shape(run_epoch, state, data)[2])

            def epoch(carry, _):
                s, metrics, wire = run_epoch(carry[0], data)
                return (s, wire), metrics

            (state, wire), history = jax.lax.scan(epoch, (state, blank), None,
                                                  length=config.epochs)
            wire = jax.tree.map(lambda a: a[None], wire)
        else:
            def epoch(s, _):
                s, metrics, wire = run_epoch(s, data)
                return s, (metrics, wire)

            state, (history, wire) = jax.lax.scan(epoch, state, None, length=config.epochs)
        return result_from_history(state, history, wire)

    return Trainer(config=config, init=init, init_model=init_model, init_defense=init_defense,
                   draw_epoch=draw_epoch,
                   step_on_indices=step_on_indices, sent_embeddings=sent_embeddings,
                   summarize=summarize, run_epoch=run_epoch,
                   evaluate=evaluate, train=train)


def default_hparams(config: TrainConfig) -> dict:
    """The run's numeric hyperparameters as float32 arrays: the learning rate and the
    defense's knobs (`Defense.hparams`). Pass another such pytree (or a stack of them, under
    `vmap`) to `train`/`init` to run other values with the same compiled program."""
    return {"learning_rate": jnp.asarray(config.learning_rate, jnp.float32),
            "defense": config.defense.hparams()}


def stack_hparams(points: list) -> dict:
    """G hyperparameter pytrees (as `default_hparams` makes them) stacked on a leading grid
    axis, as `Runner.fit(..., hparams=...)` takes them."""
    return jax.tree.map(lambda *leaves: np.stack([np.asarray(x, np.float32) for x in leaves]),
                        *points)


def result_from_history(state: TrainState, history: dict, wire) -> Result:
    """A `Result` from the stacked epoch summaries of `summarize`."""
    history = dict(history)
    return Result(state=state, train_loss=history.pop("train_loss"),
                  train_accuracy=history.pop("train_accuracy"),
                  test_accuracy=history.pop("test_accuracy"), wire=wire,
                  message_norm=history.pop(MESSAGE_NORM, None), defense_metrics=history)


def make_train(config: TrainConfig, optimizers: dict | None = None):
    """`train(key, data, hparams=None) -> Result`, pure: jit it, vmap it over keys (and
    hparams) for a seed (and hyperparameter) sweep."""
    return make_trainer(config, optimizers).train
