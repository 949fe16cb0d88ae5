"""Norm scoring and direction scoring (Li et al., ICLR 2022, "Label Leakage and Protection in
Two-party Split Learning").

In a binary task with a skewed label distribution, the gradient messages the passive party
receives for positive samples are larger in norm and point one way, those of negatives the
other. Norm scoring ranks samples by ‖m_i‖; direction scoring by the cosine of m_i with the
message of one sample the attacker knows to be positive, in the same batch. Both are scored
with leak AUC per batch (`ladsg_jax.metrics.batched_leak_auc`, by the suite). Pure jax.numpy,
jit-able.
"""
from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from ladsg_jax import metrics
from ladsg_jax.attacks.predictions import Predictions

EPSILON = 1e-12


def norm_scores(messages):
    """Per-message L2 norm: messages (..., B, d) -> scores (..., B)."""
    return jnp.linalg.norm(messages, axis=-1)


def direction_scores(messages, reference_mask):
    """Cosine of each message with its batch's known positive message.

    messages: (num_batches, B, d); reference_mask: (num_batches, B) boolean, True for the
    samples known to be positive. Each batch's reference is the message of its first marked
    sample. Returns (scores (num_batches, B), valid (num_batches, B)): `valid` is False for
    every entry of a batch without a marked sample and for the reference entries themselves
    (they are known, not attacked).
    """
    reference_mask = jnp.asarray(reference_mask, bool)
    has_reference = reference_mask.any(axis=1)                          # (num_batches,)
    first = jnp.argmax(reference_mask, axis=1)                          # (num_batches,)
    reference = jnp.take_along_axis(messages, first[:, None, None], axis=1)   # (nb, 1, d)
    dots = jnp.sum(messages * reference, axis=-1)
    norms = jnp.maximum(norm_scores(messages), EPSILON)
    reference_norms = jnp.maximum(norm_scores(reference), EPSILON)      # (nb, 1)
    scores = dots / (norms * reference_norms)
    is_reference = jnp.arange(messages.shape[1])[None, :] == first[:, None]
    valid = has_reference[:, None] & ~is_reference
    return scores, valid


def scored_batches(context, view):
    """The batches of the last `settings.scoring_epochs` epochs: indices (n, B) and party 0's
    messages (n, B, d)."""
    first = -context.settings.scoring_epochs
    indices = np.asarray(view.wire.indices[first:])
    indices = indices.reshape(-1, indices.shape[-1])
    messages = view.wire.messages[0][first:].reshape(indices.shape + (-1,))
    return indices, messages


def norm_orientation(norms, indices, known_idx, known_y) -> float:
    """+1 or −1: the sign that makes the attacker's own known samples score as positives.

    Li et al.'s norm score points at the positive class only when that class is the rarer
    one; the attacker orients it with the leak AUC of the messages of its few known samples
    (+1 when those do not tell).
    """
    label_of = np.full(int(indices.max()) + 1, -1)
    known_idx = np.asarray(known_idx)
    in_range = known_idx < label_of.size
    label_of[known_idx[in_range]] = np.asarray(known_y)[in_range]
    labels = label_of[indices.ravel()]
    known = labels >= 0
    if len(set(labels[known].tolist())) < 2:
        return 1.0
    return 1.0 if metrics.leak_auc(norms.ravel()[known], labels[known]) >= 0.5 else -1.0


def run_norm(context, view, key):
    """The oriented message norms, per batch."""
    indices, messages = scored_batches(context, view)
    norms = np.asarray(norm_scores(messages))
    orientation = norm_orientation(norms, indices, np.asarray(view.known_idx),
                                   np.asarray(view.known_y))
    return {"score": Predictions(index=indices, scores=orientation * norms)}


def run_direction(context, view, key):
    """The cosine with a known positive's message in the same batch, per batch."""
    indices, messages = scored_batches(context, view)
    known = np.zeros(context.num_train, bool)
    known[np.asarray(view.known_idx)[np.asarray(view.known_y) == 1]] = True
    scores, valid = direction_scores(messages, jnp.asarray(known[indices]))
    return {"score": Predictions(index=indices, scores=np.asarray(scores),
                                 mask=np.asarray(valid))}
