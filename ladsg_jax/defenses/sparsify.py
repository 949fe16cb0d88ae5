"""Sparse messages: gradient compression and PPDL's selective upload."""
from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax
import jax.numpy as jnp

from flax import struct

from ladsg_jax.defenses.base import BATCH_CUT, WHOLE_BATCH, Defense
from ladsg_jax.defenses.quantize import true_messages
from ladsg_jax.errors import one_of, require

COUNTS = ("ceil", "fu")


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


@struct.dataclass
class Residual:
    """What compression dropped at the last step, per passive party: (parties, B, d)."""

    residual: jax.Array


def fu_mask(g: jax.Array, fraction) -> jax.Array:
    """Fu et al.'s rule: k = ⌊fraction·size⌋ (at least 1) and the entries with |g| strictly
    above the k-th largest |g| kept, so k − 1 of them when no two magnitudes tie (none when the
    k-th ties the largest)."""
    magnitude = jnp.abs(g).reshape(-1)
    count = jnp.clip(jnp.floor(fraction * magnitude.size * (1 + 1e-7)), 1, magnitude.size)
    threshold = jnp.sort(magnitude)[::-1][count.astype(jnp.int32) - 1]
    return (magnitude > threshold).reshape(g.shape)


def keep_largest(g: jax.Array, fraction) -> jax.Array:
    """g with all but its ⌈fraction·size⌉ entries of largest |g| (over the batch) set to 0."""
    return jnp.where(largest_mask(g, fraction), g, 0.0)


@dataclasses.dataclass(frozen=True)
class GradientCompression(Defense):
    """Gradient compression (Lin et al., ICLR 2018's sparsification, as Fu et al. 2022 apply
    it to the message): only the fraction `keep` of the batch's message entries with the
    largest magnitude is sent, the rest are zero.

    `count="fu"` keeps what Fu et al.'s released code keeps: the entries strictly above the
    ⌊keep·size⌋-th largest |g| (one fewer than that count when no magnitudes tie).
    `error_feedback=True` is VFLAIR's variant (after Lin et al.'s accumulation): what a step
    drops is added to the next step's message before it is compressed, position by position in
    the batch, the residual kept per passive party in the defense's state. The residual is
    (g + r) − sent, g read in `forward` by one VJP of the top model (`quantize.true_messages`),
    hence the whole batch.

    Attributes:
        keep: fraction of the batch's message entries sent (those of largest |g|); smaller,
            stronger. The ⌈keep·size⌉ largest are sent, at least one. Allowed: (0, 1].
        count: ceil (ours: the ⌈keep·size⌉ largest) or fu (Fu et al.'s: those strictly above
            the ⌊keep·size⌋-th largest). Allowed: one of ceil, fu.
        error_feedback: carry what a step drops into the next step's message (VFLAIR's).
    """

    name: ClassVar[str] = "compression"
    summary: ClassVar[str] = "send only the largest message entries (Lin et al. 2018)"
    knob: ClassVar[str] = "keep"
    hyper: ClassVar[tuple] = ("keep",)
    keep: float = 0.25
    count: str = "ceil"
    error_feedback: bool = False

    def __post_init__(self):
        require(0 < self.keep <= 1, "defense.compression.keep",
                f"must be in (0, 1], got {self.keep!r}")
        one_of("defense.compression.count", self.count, COUNTS)

    @property
    def needs(self) -> str:
        # the batch's top entries; error feedback reads g through the top model's pullback
        return WHOLE_BATCH if self.error_feedback else BATCH_CUT

    def init(self, key, data, config, hp):
        if not self.error_feedback:
            return None
        width = config.embed_dim or data.num_classes
        return Residual(jnp.zeros((config.num_parties - 1, config.batch_size, width)))

    def forward(self, hp, state, hs, ctx, top_fn):
        if ctx is None or not self.error_feedback:
            return super().forward(hp, state, hs, ctx, top_fn)
        contexts = tuple({**ctx, "residual": state.residual[k]} for k in range(len(hs) - 1))
        return hs, contexts, true_messages(hs, ctx, top_fn)

    def update(self, hp, state, report, messages):
        if not self.error_feedback:
            return state, None, {}
        carried = jnp.stack([g + state.residual[k] - m
                             for k, (g, m) in enumerate(zip(report, messages))])
        return state.replace(residual=carried), None, {}

    def cut(self, hp, g, ctx):
        if self.error_feedback:
            g = g + ctx["residual"]
        if self.count == "fu":
            return jnp.where(fu_mask(g, hp["keep"]), g, 0.0)
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
