"""Sparse messages: gradient compression and PPDL's selective upload."""
from __future__ import annotations

import dataclasses
import math
from typing import ClassVar

import jax
import jax.numpy as jnp

from ladsg_jax.defenses.base import Defense
from ladsg_jax.errors import require


def keep_largest(g: jax.Array, fraction: float) -> jax.Array:
    """g with all but its ⌈fraction·size⌉ entries of largest |g| (over the batch) set to 0."""
    count = max(1, math.ceil(fraction * g.size))
    flat = g.reshape(-1)
    _, index = jax.lax.top_k(jnp.abs(flat), count)
    return jnp.zeros_like(flat).at[index].set(flat[index]).reshape(g.shape)


@dataclasses.dataclass(frozen=True)
class GradientCompression(Defense):
    """Gradient compression (Lin et al., ICLR 2018's sparsification, as Fu et al. 2022 apply
    it to the message): only the fraction `keep` of the batch's message entries with the
    largest magnitude is sent, the rest are zero. Smaller `keep`, stronger."""

    name: ClassVar[str] = "compression"
    summary: ClassVar[str] = "send only the largest message entries (Lin et al. 2018)"
    knob: ClassVar[str] = "keep"
    keep: float = 0.25

    def __post_init__(self):
        require(0 < self.keep <= 1, "defense.compression.keep",
                f"must be in (0, 1], got {self.keep!r}")

    def cut(self, g, ctx):
        return keep_largest(g, self.keep)


@dataclasses.dataclass(frozen=True)
class PPDL(Defense):
    """PPDL (Shokri & Shmatikov, CCS 2015), selective upload, as Fu et al. 2022 evaluate it:
    of the batch's message entries a fraction `upload` (θ_u) is sent, picked by largest |g|
    after Laplace noise of scale `noise`·max|g| is added for the selection; the sent values
    are clipped to ±`bound`·max|g| and noised again. Departure: the noise scale and the bound
    are relative to the batch's largest entry, not absolute, so one setting fits every stage of
    training. Smaller `upload`, stronger."""

    name: ClassVar[str] = "ppdl"
    summary: ClassVar[str] = "selective upload with noise (Shokri & Shmatikov 2015)"
    knob: ClassVar[str] = "upload"
    upload: float = 0.25
    noise: float = 0.1
    bound: float = 0.5

    def __post_init__(self):
        require(0 < self.upload <= 1, "defense.ppdl.upload",
                f"must be in (0, 1], got {self.upload!r}")
        require(self.noise >= 0, "defense.ppdl.noise", f"must be non-negative, got {self.noise!r}")
        require(self.bound > 0, "defense.ppdl.bound", f"must be positive, got {self.bound!r}")

    def cut(self, g, ctx):
        select_key, value_key = jax.random.split(ctx["key"])
        scale = jnp.max(jnp.abs(g)) + 1e-12
        noisy = g + self.noise * scale * jax.random.laplace(select_key, g.shape)
        chosen = keep_largest(noisy, self.upload) != 0
        bound = self.bound * scale
        values = jnp.clip(g, -bound, bound) + self.noise * scale * jax.random.laplace(
            value_key, g.shape)
        return jnp.where(chosen, values, 0.0)
