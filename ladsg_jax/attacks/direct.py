"""Direct label inference (Fu et al., USENIX Security 2022, §4.1).

With no top model the logits are the sum of the parties' outputs, so the message the passive
party receives is m_i = (softmax(z_i) − onehot(y_i)) / B: the only negative entry is at the
label. The attacker reads the label off each message it received.
"""
from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from ladsg_jax import metrics
from ladsg_jax.attacks.view import last_epoch_batches, mean_messages_per_sample

VARIANTS = ("first_negative", "argmin")


def direct_label_inference(messages, variant: str = "first_negative"):
    """Predicted labels from received messages (..., d): the first negative entry's index
    ("first_negative", falling back to the argmin when no entry is negative) or the argmin."""
    if variant == "argmin":
        return jnp.argmin(messages, axis=-1)
    negative = messages < 0
    first = jnp.argmax(negative, axis=-1)
    return jnp.where(negative.any(axis=-1), first, jnp.argmin(messages, axis=-1))


def _direct(variant: str):
    def run(runner, view, key):
        """Top-1 of the last epoch's messages read by `variant`."""
        indices, messages = last_epoch_batches(view.wire)
        predicted = direct_label_inference(messages, variant)
        labels = np.asarray(runner.data.train_y)[np.asarray(indices)]
        return {"score": metrics.top1_accuracy(predicted, labels)}
    return run


run_first_negative = _direct("first_negative")
run_argmin = _direct("argmin")


def run_averaged(runner, view, key):
    """The adaptive attacker's reading: argmin of each sample's messages averaged over the
    epochs (per-step random substitutes cancel), top-1 over the samples seen."""
    train_y = np.asarray(runner.data.train_y)
    mean_messages, seen = mean_messages_per_sample(view.wire, train_y.shape[0])
    predicted = direct_label_inference(mean_messages, "argmin")
    rows = np.flatnonzero(np.asarray(seen))
    return {"score": metrics.top1_accuracy(np.asarray(predicted)[rows], train_y[rows])}
