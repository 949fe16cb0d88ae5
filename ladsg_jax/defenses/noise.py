"""Noisy messages: Laplace noise and the Gaussian mechanism with a privacy accountant."""
from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax
import jax.numpy as jnp

from ladsg_jax.defenses.base import BATCH_CUT, Defense, clip_scale
from ladsg_jax.errors import one_of, require

RESCALES = ("none", "vflair")
VFLAIR_ROW_NORM = 0.2        # VFLAIR's LaplaceDP scales the batch to this largest row norm


@dataclasses.dataclass(frozen=True)
class LaplaceNoise(Defense):
    """Laplace noise of scale β added to every entry of the message (the noisy-gradients
    defense Fu et al., USENIX Security 2022, evaluate, as their code adds it: `rescale="none"`,
    the default). VFLAIR's LaplaceDP first scales the batch down so that its largest row norm is
    at most 0.2 (`rescale="vflair"`: g / max(1, max_i ‖g_i‖ / 0.2); never scaled up, not scaled
    back), which changes nothing while the messages are smaller.

    Attributes:
        scale: scale β of the Laplace noise added to every message entry; larger, stronger.
            Allowed: >= 0.
        rescale: none (Fu et al.'s) or vflair (the batch first scaled to a largest row norm of
            at most 0.2, VFLAIR's). Allowed: one of none, vflair.
    """

    name: ClassVar[str] = "laplace"
    summary: ClassVar[str] = "Laplace noise on every message entry (Fu et al. 2022)"
    knob: ClassVar[str] = "scale"
    hyper: ClassVar[tuple] = ("scale",)
    needs: ClassVar[str] = BATCH_CUT           # noise drawn in the batch's shape
    draws: ClassVar[frozenset] = frozenset({"cut"})
    scale: float = 0.01
    rescale: str = "none"

    def __post_init__(self):
        require(self.scale >= 0, "defense.laplace.scale",
                f"must be non-negative, got {self.scale!r}")
        one_of("defense.laplace.rescale", self.rescale, RESCALES)

    def cut(self, hp, g, ctx):
        if self.rescale == "vflair":
            largest = jnp.max(jnp.linalg.norm(g, axis=-1))
            g = g / jnp.maximum(largest / (VFLAIR_ROW_NORM + 1e-6), 1.0)
        return g + hp["scale"] * jax.random.laplace(ctx["key"], g.shape)


@dataclasses.dataclass(frozen=True)
class GaussianDP(Defense):
    """The Gaussian mechanism on each sample's message (Abadi et al., CCS 2016, applied to the
    label party's messages as in label-DP split learning): m_i = clip(g_i, C) + N(0, (σC)²I).

    The privacy guarantee is per label. Changing one sample's label moves its clipped message
    anywhere in a ball of radius C, an L2 sensitivity of 2C, and the sample is sent once per
    epoch, so a run is `epochs` Gaussian mechanisms with noise multiplier σ/2; `epsilon(epochs)`
    reports the ε at `delta` that Google's dp-accounting RDP accountant gives for it (no
    sampling amplification is claimed: every sample is in every epoch).

    Attributes:
        noise_multiplier: noise multiplier σ: the noise's standard deviation is σC; larger,
            stronger. Allowed: > 0.
        clip: norm C each sample's message is clipped to, absolute (not relative to the batch).
            The default 0.02 suits the built-in presets, whose messages have norms of
            0.005–0.1. Allowed: > 0.
        delta: the δ at which `epsilon(epochs)` reports the run's ε. Allowed: (0, 1).
    """

    name: ClassVar[str] = "gaussian_dp"
    summary: ClassVar[str] = ("per-sample clipping + Gaussian noise, ε from an RDP accountant "
                              "(Abadi et al. 2016)")
    knob: ClassVar[str] = "noise_multiplier"
    hyper: ClassVar[tuple] = ("noise_multiplier", "clip")
    needs: ClassVar[str] = BATCH_CUT
    draws: ClassVar[frozenset] = frozenset({"cut"})
    noise_multiplier: float = 1.0
    clip: float = 0.02
    delta: float = 1e-5

    def __post_init__(self):
        require(self.noise_multiplier > 0, "defense.gaussian_dp.noise_multiplier",
                f"must be positive, got {self.noise_multiplier!r}")
        require(self.clip > 0, "defense.gaussian_dp.clip",
                f"must be positive, got {self.clip!r}")
        require(0 < self.delta < 1, "defense.gaussian_dp.delta",
                f"must be in (0, 1), got {self.delta!r}")

    def cut(self, hp, g, ctx):
        clipped = g * clip_scale(g, hp["clip"])
        noise = jax.random.normal(ctx["key"], g.shape)
        return clipped + hp["noise_multiplier"] * hp["clip"] * noise

    def epsilon(self, epochs: int) -> float:
        """ε at `delta` of a run of `epochs` epochs (RDP accountant of dp-accounting)."""
        import dp_accounting
        from dp_accounting import rdp

        accountant = rdp.RdpAccountant()
        accountant.compose(dp_accounting.SelfComposedDpEvent(
            dp_accounting.GaussianDpEvent(self.noise_multiplier / 2.0), epochs))
        return float(accountant.get_epsilon(self.delta))
