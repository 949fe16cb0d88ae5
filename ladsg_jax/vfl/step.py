"""One VFL training step: a pure function of the state and a batch (DESIGN §2)."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from ladsg_jax.defenses import Defense
from ladsg_jax.vfl.model import VFLModel, party_name
from ladsg_jax.vfl.state import Batch, TrainState


def make_train_step(model: VFLModel, optimizers: dict, defense: Defense):
    """`train_step(state, batch) -> (state, metrics, wire)`.

    One `jax.value_and_grad` over all parties' parameters and the passive parties' wires; each
    party's gradient then goes to its own optax optimizer (`optimizers["party_k"]`). `wire` is
    the tuple of messages the passive parties received, one (B, d) array each. The defense's
    `filter` sees the messages before they are sent and may block a party for the step: its
    message (and so its bottom model's gradient) is zeroed.
    """

    def train_step(state: TrainState, batch: Batch):
        key, cut_key = jax.random.split(state.key)
        index = batch.index if batch.index is not None else jnp.arange(batch.y.shape[0])
        targets = defense.targets(batch.y, model.num_classes, state.defense_state, index)
        ctx = {"labels": batch.y, "targets": targets, "key": cut_key, "index": index,
               "state": state.defense_state}
        wires = tuple(jnp.zeros((batch.y.shape[0], model.embed_dim)) for _ in model.passive)

        def loss_fn(params, wires):
            logits, batch_stats, report, penalty = model.apply_train(
                params, state.batch_stats, batch.x, wires, defense, ctx)
            loss = optax.softmax_cross_entropy(logits, targets).mean() + penalty
            return loss, (logits, batch_stats, report)

        (loss, (logits, batch_stats, report)), (grads, messages) = jax.value_and_grad(
            loss_fn, argnums=(0, 1), has_aux=True)(state.params, wires)
        defense_state, blocked, defense_metrics = defense.filter(state.defense_state, report,
                                                                 messages)
        if blocked is not None:
            messages = tuple(jnp.where(blocked[k], 0.0, m) for k, m in enumerate(messages))
            for k in model.passive:
                name = party_name(k)
                grads = {**grads, name: jax.tree.map(
                    lambda g, b=blocked[k]: jnp.where(b, 0.0, g), grads[name])}
        params, opt_state = {}, {}
        for k in range(model.num_parties):
            name = party_name(k)
            updates, opt_state[name] = optimizers[name].update(
                grads[name], state.opt_state[name], state.params[name])
            params[name] = optax.apply_updates(state.params[name], updates)
        metrics = {"loss": loss,
                   "accuracy": jnp.mean(jnp.argmax(defense.decode(logits, state.defense_state), -1)
                                        == batch.y), **defense_metrics}
        new_state = state.replace(params=params, batch_stats=batch_stats, opt_state=opt_state,
                                  key=key, step=state.step + 1, defense_state=defense_state)
        return new_state, metrics, messages

    return train_step
