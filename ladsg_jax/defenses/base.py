"""The three places a defense plugs in (DESIGN §2): the labels, the cut and the updates."""
from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax
import jax.numpy as jnp


@dataclasses.dataclass(frozen=True)
class Defense:
    """No defense: one-hot targets, the true message sent back, no filtering.

    Subclasses are frozen (hashable) dataclasses, so a defense is a static argument of the cut's
    `custom_vjp` and of jitted functions; the arrays a hook needs arrive in its arguments.

    - `targets(labels, num_classes)`: the training targets (soft labels) of the active party.
    - `cut(g, ctx)`: the message sent to a passive party for the true message `g = ∂L/∂h`
      (shape (B, d)); `ctx` is a dict of arrays (`labels`, `key`, ...).
    """

    name: ClassVar[str] = "none"

    def targets(self, labels: jax.Array, num_classes: int) -> jax.Array:
        return jax.nn.one_hot(labels, num_classes, dtype=jnp.float32)

    def cut(self, g: jax.Array, ctx: dict) -> jax.Array:
        return g
