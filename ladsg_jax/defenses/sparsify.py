"""Sparse messages: gradient compression and PPDL's selective upload."""
from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax
import jax.numpy as jnp

from ladsg_jax.defenses.base import BATCH_CUT, Defense
from ladsg_jax.errors import require


def largest_mask(g: jax.Array, fraction) -> jax.Array:
    """Whether each entry of g is among its ⌈fraction·size⌉ of largest |g| (over the batch),
    ties broken by position as `lax.top_k` breaks them (the binary sum-top messages come in
    pairs of equal magnitude).

    `fraction` may be traced: each entry's rank in a stable descending sort is compared with
    the count. The product is taken 1e-7 (relative) low, so that a fraction whose exact product
    is an integer n keeps n in float32 as in exact arithmetic."""
    magnitude = jnp.abs(g).reshape(-1)
    count = jnp.clip(jnp.ceil(fraction * magnitude.size * (1 - 1e-7)), 1, magnitude.size)
    order = jnp.argsort(-magnitude, stable=True)
    rank = jnp.zeros(magnitude.shape, jnp.int32).at[order].set(
        jnp.arange(magnitude.size, dtype=jnp.int32))
    return (rank < count).reshape(g.shape)


def keep_largest(g: jax.Array, fraction) -> jax.Array:
    """g with all but its ⌈fraction·size⌉ entries of largest |g| (over the batch) set to 0."""
    return jnp.where(largest_mask(g, fraction), g, 0.0)


@dataclasses.dataclass(frozen=True)
class GradientCompression(Defense):
    """Gradient compression (Lin et al., ICLR 2018's sparsification, as Fu et al. 2022 apply
    it to the message): only the fraction `keep` of the batch's message entries with the
    largest magnitude is sent, the rest are zero.

    Attributes:
        keep: fraction of the batch's message entries sent (those of largest |g|); smaller,
            stronger. The ⌈keep·size⌉ largest are sent, at least one. Allowed: (0, 1].
    """

    name: ClassVar[str] = "compression"
    summary: ClassVar[str] = "send only the largest message entries (Lin et al. 2018)"
    knob: ClassVar[str] = "keep"
    hyper: ClassVar[tuple] = ("keep",)
    needs: ClassVar[str] = BATCH_CUT           # the batch's top entries
    keep: float = 0.25

    def __post_init__(self):
        require(0 < self.keep <= 1, "defense.compression.keep",
                f"must be in (0, 1], got {self.keep!r}")

    def cut(self, hp, g, ctx):
        return keep_largest(g, hp["keep"])


@dataclasses.dataclass(frozen=True)
class PPDL(Defense):
    """PPDL (Shokri & Shmatikov, CCS 2015), selective upload, as Fu et al. 2022 evaluate it:
    of the batch's message entries a fraction `upload` (θ_u) is sent, picked by largest |g|
    after Laplace noise of scale `noise`·max|g| is added for the selection; the sent values
    are clipped to ±`bound`·max|g| and noised again. Departure: the noise scale and the bound
    are relative to the batch's largest entry, not absolute, so one setting fits every stage of
    training.

    Attributes:
        upload: fraction θ_u of the batch's message entries sent; smaller, stronger.
            Allowed: (0, 1].
        noise: Laplace noise scale on the selection and the sent values, in units of the
            batch's max |g|. Allowed: >= 0.
        bound: bound the sent values are clipped to, in units of the batch's max |g|.
            Allowed: > 0.
    """

    name: ClassVar[str] = "ppdl"
    summary: ClassVar[str] = "selective upload with noise (Shokri & Shmatikov 2015)"
    knob: ClassVar[str] = "upload"
    hyper: ClassVar[tuple] = ("upload", "noise", "bound")
    needs: ClassVar[str] = BATCH_CUT
    draws: ClassVar[frozenset] = frozenset({"cut"})
    upload: float = 0.25
    noise: float = 0.1
    bound: float = 0.5

    def __post_init__(self):
        require(0 < self.upload <= 1, "defense.ppdl.upload",
                f"must be in (0, 1], got {self.upload!r}")
        require(self.noise >= 0, "defense.ppdl.noise", f"must be non-negative, got {self.noise!r}")
        require(self.bound > 0, "defense.ppdl.bound", f"must be positive, got {self.bound!r}")

    def cut(self, hp, g, ctx):
        select_key, value_key = jax.random.split(ctx["key"])
        scale = jnp.max(jnp.abs(g)) + 1e-12
        noisy = g + hp["noise"] * scale * jax.random.laplace(select_key, g.shape)
        chosen = largest_mask(noisy, hp["upload"])
        bound = hp["bound"] * scale
        values = jnp.clip(g, -bound, bound) + hp["noise"] * scale * jax.random.laplace(
            value_key, g.shape)
        return jnp.where(chosen, values, 0.0)
