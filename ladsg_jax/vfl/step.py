"""One VFL training step, for one device and for data-parallel maps (DESIGN §2): a pure
function of the state and a batch. How to reduce across devices is an argument (`Reduction`).
"""
from __future__ import annotations

import contextlib
import dataclasses

import jax
import jax.numpy as jnp
import optax

from ladsg_jax.defenses import Defense
from ladsg_jax.defenses.base import call_hook, check_returned
from ladsg_jax.vfl.model import VFLModel, party_name
from ladsg_jax.vfl.state import Batch, TrainState


@dataclasses.dataclass(frozen=True)
class Reduction:
    """How a step's batch-wide quantities combine. `axis_name=None`: the batch is all here
    (one device). Otherwise the step runs inside a map over `axis_name` on one shard of the
    global batch, and `vfl/parallel.py` fills in the cross-device pieces: the psum of the
    gradients and the loss, the pmean of the accuracy, BatchNorm synced over the devices
    (`batch_norm`), the parameters marked as varying (`varying`), and the cut policy that
    follows the defense's declared needs (`cut_policy`)."""

    axis_name: str | None = None
    batch_norm: object = None            # () -> context manager; None: nothing to sync
    varying: object = None               # tree -> tree; None: the identity
    cut_policy: object = None            # defense -> cut policy; None: the defense itself

    def total(self, local: int):
        return local if self.axis_name is None else local * jax.lax.axis_size(self.axis_name)

    def sum(self, tree):
        return tree if self.axis_name is None else jax.lax.psum(tree, self.axis_name)

    def mean(self, x):
        return x if self.axis_name is None else jax.lax.pmean(x, self.axis_name)


ONE_DEVICE = Reduction()
MESSAGE_NORM = "message_norm"     # a step's mean per-sample L2 norm of the messages sent


def apply_optimizers(optimizers: dict, grads: dict, state: TrainState) -> tuple[dict, dict]:
    """Each party's optax update applied to its parameters: (params, opt_state)."""
    params, opt_state = {}, {}
    for name, opt in optimizers.items():
        updates, opt_state[name] = opt.update(grads[name], state.opt_state[name],
                                              state.params[name])
        params[name] = optax.apply_updates(state.params[name], updates)
    return params, opt_state


def zero_blocked(blocked, model: VFLModel, messages: tuple, grads: dict):
    """A blocked passive party's message and gradient zeroed for the step."""
    messages = tuple(jnp.where(blocked[k], 0.0, m) for k, m in enumerate(messages))
    for k in model.passive:
        name = party_name(k)
        grads = {**grads, name: jax.tree.map(lambda g, b=blocked[k]: jnp.where(b, 0.0, g),
                                             grads[name])}
    return messages, grads


def check_blocked(defense: Defense, blocked, parties: int) -> None:
    """`update`'s `blocked`: a bool array with one entry per passive party, else one line."""
    if getattr(blocked, "shape", None) != (parties,) or blocked.dtype != jnp.bool_:
        from ladsg_jax.errors import ConfigError

        got = (f"of shape {blocked.shape} and dtype {blocked.dtype}"
               if hasattr(blocked, "shape") else f"a {type(blocked).__name__}")
        raise ConfigError(f"defense {defense.name!r}",
                          f"its update returned blocked {got} where None or a bool array of "
                          f"shape ({parties},) (one per passive party) belongs")


def make_train_step(model: VFLModel, optimizers, defense: Defense,
                    reduction: Reduction = ONE_DEVICE):
    """`train_step(state, batch) -> (state, metrics, wire)`.

    One `jax.value_and_grad` over all parties' parameters and the passive parties' wires of
    the batch's share of the (global) mean loss; each party's gradient then goes to its own
    optax optimizer. `optimizers(learning_rate) -> {"party_k": transformation}` builds them
    with the state's (traced) learning rate. `wire` is the tuple of messages the passive
    parties received, one (B, d) array each; `metrics[MESSAGE_NORM]` their mean per-sample L2
    norm (over the passive parties), the scale a noise knob is sized against. The defense's
    hooks read its hyperparameters and
    state from `state.hparams["defense"]` and `state.defense_state`; its `update` sees the
    messages before they are sent and may block a party for the step.
    """
    varying = reduction.varying or (lambda tree: tree)
    cut_policy = (reduction.cut_policy or (lambda d: d))(defense)
    batch_norm = reduction.batch_norm or contextlib.nullcontext

    def train_step(state: TrainState, batch: Batch):
        key, cut_key = jax.random.split(state.key)
        hp, defense_state = state.hparams["defense"], state.defense_state
        local = batch.y.shape[0]
        index = batch.index if batch.index is not None else jnp.arange(local)
        onehot = jax.nn.one_hot(batch.y, model.num_classes, dtype=jnp.float32)
        targets = call_hook(defense, "targets", hp, defense_state, onehot, batch.y, index)
        check_returned(defense, "targets", targets, onehot,
                       "where targets of shape {shape} and dtype {dtype} belong")
        ctx = {"labels": batch.y, "targets": targets, "index": index}
        if "cut" in defense.draws:                  # `call_hook` names a hook reading it else
            ctx["key"] = cut_key
        wires = varying(tuple(jnp.zeros((local, model.embed_dim)) for _ in model.passive))
        total = reduction.total(local)

        def loss_fn(params, wires):
            with batch_norm():
                logits, batch_stats, report, penalty = model.apply_train(
                    params, state.batch_stats, batch.x, wires, defense, hp, defense_state, ctx,
                    cut_policy)
            share = optax.softmax_cross_entropy(logits, targets).sum() / total + penalty
            return share, (logits, batch_stats, report)

        (share, (logits, batch_stats, report)), (grads, messages) = jax.value_and_grad(
            loss_fn, argnums=(0, 1), has_aux=True)(varying(state.params), wires)
        defense_state, blocked, defense_metrics = call_hook(defense, "update", hp, defense_state,
                                                            report, messages)
        if blocked is not None:
            check_blocked(defense, blocked, len(messages))
            messages, grads = zero_blocked(blocked, model, messages, grads)
        params, opt_state = apply_optimizers(
            optimizers(state.hparams["learning_rate"]), reduction.sum(grads), state)
        scores = call_hook(defense, "decode", hp, state.defense_state, logits)
        correct = jnp.argmax(scores, -1) == batch.y
        sent = jnp.mean(jnp.stack([jnp.linalg.norm(m, axis=-1).mean() for m in messages]))
        metrics = {"loss": reduction.sum(share), "accuracy": reduction.mean(jnp.mean(correct)),
                   MESSAGE_NORM: reduction.mean(sent), **defense_metrics}
        new_state = state.replace(params=params, batch_stats=batch_stats, opt_state=opt_state,
                                  key=key, step=state.step + 1, defense_state=defense_state)
        return new_state, metrics, messages

    return train_step
