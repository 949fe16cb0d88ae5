"""Direct label inference (Fu et al., USENIX Security 2022, §4.1).

With no top model the logits are the sum of the parties' outputs, so the message the passive
party receives is m_i = (softmax(z_i) − onehot(y_i)) / B: the only negative entry is at the
label. The attacker reads the label off each message it received.
"""
from __future__ import annotations

import jax.numpy as jnp

VARIANTS = ("first_negative", "argmin")


def direct_label_inference(messages, variant: str = "first_negative"):
    """Predicted labels from received messages (..., d): the first negative entry's index
    ("first_negative", falling back to the argmin when no entry is negative) or the argmin."""
    if variant == "argmin":
        return jnp.argmin(messages, axis=-1)
    negative = messages < 0
    first = jnp.argmax(negative, axis=-1)
    return jnp.where(negative.any(axis=-1), first, jnp.argmin(messages, axis=-1))
