"""Norm scoring and direction scoring (Li et al., ICLR 2022, "Label Leakage and Protection in
Two-party Split Learning").

In a binary task with a skewed label distribution, the gradient messages the passive party
receives for positive samples are larger in norm and point one way, those of negatives the
other. Norm scoring ranks samples by ‖m_i‖; direction scoring by the cosine of m_i with the
message of one sample the attacker knows to be positive, in the same batch. Both are scored
with leak AUC (`ladsg_jax.metrics.leak_auc` / `batched_leak_auc`). Pure jax.numpy, jit-able.
"""
from __future__ import annotations

import jax.numpy as jnp

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
