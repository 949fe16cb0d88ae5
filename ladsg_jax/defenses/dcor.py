"""Distance-correlation loss (Sun et al., "Label Leakage and Protection from Forward Embedding
in Vertical Federated Learning", 2022)."""
from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax
import jax.numpy as jnp

from ladsg_jax.defenses.base import WHOLE_BATCH, Defense
from ladsg_jax.errors import require


def _centered_distances(x: jax.Array) -> jax.Array:
    squared = jnp.sum((x[:, None, :] - x[None, :, :]) ** 2, axis=-1)
    d = jnp.sqrt(squared + 1e-12) - 1e-6                    # smooth at 0 for the gradient
    return d - d.mean(0, keepdims=True) - d.mean(1, keepdims=True) + d.mean()


def distance_correlation(x: jax.Array, y: jax.Array) -> jax.Array:
    """Sample distance correlation of the rows of x and y (Székely et al., 2007), in [0, 1]."""
    a, b = _centered_distances(x), _centered_distances(y)
    xy, xx, yy = jnp.mean(a * b), jnp.mean(a * a), jnp.mean(b * b)
    # the small offsets keep the square roots' gradients finite when a batch is degenerate
    return jnp.sqrt(jnp.maximum(xy, 0.0) / (jnp.sqrt(xx * yy + 1e-24) + 1e-12) + 1e-12)


@dataclasses.dataclass(frozen=True)
class DistanceCorrelation(Defense):
    """Sun et al.'s defense: the active party adds α·dCor(h_k, onehot(y)) per passive party to
    the loss, computed on the embeddings it receives, so the passive parties are pushed to
    embeddings that carry less about the labels (the term's gradient reaches them in their
    messages).

    Attributes:
        weight: weight α of each passive party's dCor term in the loss; larger, stronger.
            Allowed: >= 0.
    """

    name: ClassVar[str] = "dcor"
    summary: ClassVar[str] = "distance-correlation loss on the embeddings (Sun et al. 2022)"
    knob: ClassVar[str] = "weight"
    hyper: ClassVar[tuple] = ("weight",)
    needs: ClassVar[str] = WHOLE_BATCH         # a loss over all pairs of the batch
    weight: float = 0.5

    def __post_init__(self):
        require(self.weight >= 0, "defense.dcor.weight",
                f"must be non-negative, got {self.weight!r}")

    def penalty(self, hp, state, hs, ctx):
        labels = jax.nn.one_hot(ctx["labels"], ctx["targets"].shape[-1])
        return hp["weight"] * sum(distance_correlation(h, labels) for h in hs[:-1])
