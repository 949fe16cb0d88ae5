"""What party 0, the passive party, holds after a run (DESIGN §4), and views of its messages.

The true labels are never in it; `AttackerView.restricted` keeps only what an attack declares
it reads (`Attack.reads`).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from typing import Any

from flax import struct

from ladsg_jax.data.arrays import VFLData
from ladsg_jax.vfl.train import Result, WireRecord


@struct.dataclass
class AttackerView:
    """Party 0's bottom parameters, feature slices, received wire and known labels, and the
    run's defense as configured (public: its options and knobs, not its state)."""

    bottom_params: dict
    bottom_stats: dict        # its BatchNorm running statistics ({} without BatchNorm)
    train_x: jax.Array
    test_x: jax.Array
    wire: WireRecord          # every epoch's messages, (epochs, num_batches, B, d)
    known_idx: jax.Array
    known_y: jax.Array
    defense: Any = struct.field(pytree_node=False, default=None)

    def restricted(self, reads: tuple) -> "AttackerView":
        """This view with what is not in `reads` removed (None): the wire keeps only party
        0's messages (and its sent embeddings with `embeddings_sent`), and with `wire_last`
        only the last epoch's."""
        wire = None
        if "wire_all" in reads or "wire_last" in reads:
            sent = self.wire.embeddings
            wire = WireRecord(self.wire.indices, self.wire.messages[:1],
                              sent[:1] if sent is not None and "embeddings_sent" in reads
                              else None)
            if "wire_all" not in reads:
                wire = jax.tree.map(lambda a: a[-1:], wire)
        has = lambda item: item in reads
        return AttackerView(
            bottom_params=self.bottom_params if has("bottom") else None,
            bottom_stats=self.bottom_stats if has("bottom") else None,
            train_x=self.train_x if has("features") else None,
            test_x=self.test_x if has("features") else None, wire=wire,
            known_idx=self.known_idx if has("known_labels") else None,
            known_y=self.known_y if has("known_labels") else None,
            defense=self.defense if has("defense") else None)


def attacker_view(result: Result, seed_index: int, data: VFLData, known_idx,
                  defense=None) -> AttackerView:
    take = lambda a: a[seed_index]
    known_idx = jnp.asarray(known_idx)
    stats = result.state.batch_stats.get("party_0", {}).get("bottom", {})
    return AttackerView(bottom_params=jax.tree.map(take, result.state.params["party_0"]["bottom"]),
                        bottom_stats=jax.tree.map(take, stats),
                        train_x=jnp.asarray(data.train_x[0]), test_x=jnp.asarray(data.test_x[0]),
                        wire=jax.tree.map(take, result.wire), known_idx=known_idx,
                        known_y=jnp.asarray(data.train_y)[known_idx], defense=defense)


def mean_messages_per_sample(wire: WireRecord, num_samples: int, unit: bool = False):
    """Each sample's received messages averaged over the epochs it was seen in, and whether it
    was seen at all.

    Raw (`unit=False`): the adaptive attacker's answer to per-step random substitutes, whose
    random parts average out. As unit vectors (`unit=True`): a message's direction carries its
    label (softmax − onehot through the top model) while its norm mostly says how well the
    sample is already fit, so the attacker clusters directions.
    """
    total, count = 0.0, 0
    for epoch in range(wire.indices.shape[0]):
        messages, seen = wire.per_sample(num_samples, epoch)
        if unit:
            messages = messages / (jnp.linalg.norm(messages, axis=-1, keepdims=True) + 1e-12)
        total, count = total + messages, count + seen
    return total / jnp.maximum(count, 1)[:, None], count > 0


def last_epoch_batches(wire: WireRecord):
    """The last recorded epoch's batches: sample indices (num_batches, B) and party 0's
    messages (num_batches, B, d)."""
    return wire.indices[-1], wire.messages[0][-1]
