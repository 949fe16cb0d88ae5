"""Max-norm alignment and Marvell (Li et al., "Label Leakage and Protection in Two-party Split
Learning", ICLR 2022): Gaussian noise on the messages against norm and direction scoring."""
from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax
import jax.numpy as jnp

from ladsg_jax.defenses.base import BATCH_CUT, Defense
from ladsg_jax.errors import require

_TINY = 1e-12
_GRID = 64      # grid points of each level of Marvell's search
_LEVELS = 4     # coarse-to-fine levels: the last cell is about 1/(64·32³) of the search range


@dataclasses.dataclass(frozen=True)
class MaxNorm(Defense):
    """Li et al.'s max-norm heuristic: each sample's message gets isotropic Gaussian noise so
    that its expected squared norm is the batch's largest squared norm,
    m_i = g_i + scale·sqrt((max_j ‖g_j‖² − ‖g_i‖²)/d)·N(0, I_d),
    and message norms no longer tell the classes apart.

    Departure from the released code, which reaches the same expected norm differently: it
    draws one scalar ξ_i ~ N(0, 1) per sample and sends g_i·(1 + ξ_i·sqrt(max‖g‖²/‖g_i‖² − 1)),
    noise along g_i itself; here the noise is isotropic, as the paper's text has it.

    Attributes:
        scale: factor on the noise's standard deviation; larger, stronger. The paper's is 1.0;
            0 sends the true message. Allowed: >= 0.
    """

    name: ClassVar[str] = "max_norm"
    summary: ClassVar[str] = "Gaussian noise up to the batch's largest norm (Li et al. 2022)"
    knob: ClassVar[str] = "scale"
    hyper: ClassVar[tuple] = ("scale",)
    needs: ClassVar[str] = BATCH_CUT           # the batch's largest norm
    draws: ClassVar[frozenset] = frozenset({"cut"})
    scale: float = 1.0

    def __post_init__(self):
        require(self.scale >= 0, "defense.max_norm.scale",
                f"must be non-negative, got {self.scale!r}")

    def cut(self, hp, g, ctx):
        squared = jnp.sum(g ** 2, axis=-1, keepdims=True)
        std = hp["scale"] * jnp.sqrt(jnp.maximum(jnp.max(squared) - squared, 0.0) / g.shape[-1])
        return g + std * jax.random.normal(ctx["key"], g.shape)


def sum_kl(sigma0, sigma1, lam0, lam1, u, v, d, gap):
    """2·(KL(P̃₁‖P̃₀) + KL(P̃₀‖P̃₁)) + 2d for P̃₁ = N(ḡ₁, (v + σ₁)I + λ₁ΔΔᵀ/‖Δ‖²) and
    P̃₀ = N(ḡ₀, (u + σ₀)I + λ₀ΔΔᵀ/‖Δ‖²), ‖Δ‖² = `gap`: the objective Marvell minimizes."""
    o1, o0 = v + sigma1, u + sigma0                 # variances across Δ
    a1, a0 = o1 + lam1, o0 + lam0                   # variances along Δ
    return (d - 1) * (o0 / o1 + o1 / o0) + (a0 + gap) / a1 + (a1 + gap) / a0


def marvell_covariances(g: jax.Array, labels: jax.Array, power: float):
    """Marvell's noise for a batch: per class c, Σ_c = σ_c·I + λ_c·ΔΔᵀ/‖Δ‖².

    Returns (sigma0, sigma1, lam0, lam1, direction, has_both): the four variances in the
    messages' units, the unit vector Δ/‖Δ‖ (Δ = mean(g | y=1) − mean(g | y=0)) and whether the
    batch holds both classes (no noise otherwise, as in the released code). The budget
    p·tr(Σ₁) + (1−p)·tr(Σ₀) = power·‖Δ‖² is spent in full: more noise along Δ on both classes
    always lowers the objective, so the optimum lies on the budget's boundary.

    Solved numerically. The within-class variances u, v are the classes' mean per-coordinate
    variances (as in the released code). Only the class with the smaller variance gets
    isotropic noise, and no more than matches the other class's variance: isotropic noise on
    the other class, or beyond that, pulls the two variance ratios away from 1 and costs d
    times what the same variance along Δ costs through λ. For a given σ the best λ₀, λ₁ have
    a closed form (`_solve`); σ itself is found by a coarse-to-fine grid search over
    [0, its limit] (`_LEVELS` levels of `_GRID` points, each a window of ±1 cell around the
    last level's best): fixed cost, no step size, jit-able. Against SLSQP with 20 random
    starts on the full four-variable problem (200 random instances, d from 2 to 64), its
    objective was never more than 3e-7 (relative) above SLSQP's best.
    """
    y = (labels == 1).astype(g.dtype)[:, None]
    n1, n0 = jnp.sum(y), jnp.sum(1 - y)
    has_both = (n1 > 0) & (n0 > 0)
    mean1 = jnp.sum(g * y, 0) / jnp.maximum(n1, 1)
    mean0 = jnp.sum(g * (1 - y), 0) / jnp.maximum(n0, 1)
    v = jnp.sum(((g - mean1) ** 2) * y) / jnp.maximum(n1, 1) / g.shape[-1]
    u = jnp.sum(((g - mean0) ** 2) * (1 - y)) / jnp.maximum(n0, 1) / g.shape[-1]
    delta = mean1 - mean0
    gap = jnp.sum(delta ** 2)
    scale = jnp.maximum(gap, jnp.maximum(1e-12 * (u + v), 1e-30))    # no overflow in u/scale
    # In units of ‖Δ‖² the budget is `power` and the problem depends on u, v, d and p only.
    unit = _solve(u / scale + _TINY, v / scale + _TINY, g.shape[-1],
                  jnp.clip(n1 / g.shape[0], 1e-6, 1 - 1e-6), power)
    sigma0, sigma1, lam0, lam1 = (jnp.where(has_both, x * gap, 0.0) for x in unit)
    direction = delta / jnp.sqrt(scale)
    return sigma0, sigma1, lam0, lam1, direction, has_both


def _solve(u, v, d, p, power):
    """(σ₀, σ₁, λ₀, λ₁) in units of ‖Δ‖² minimizing `sum_kl` at budget `power`."""
    iso_positive = v < u                          # the class with the smaller variance
    iso_cost = jnp.where(iso_positive, p, 1 - p) * d        # budget per unit of its σ
    iso_limit = jnp.minimum(jnp.abs(u - v), power / iso_cost)

    def allocate(iso):
        """The best λ₀, λ₁ for a given σ of the smaller-variance class: along Δ the objective
        is (a₀ + 1)/a₁ + (a₁ + 1)/a₀ (a_c the classes' variances along Δ) on the line
        p·a₁ + (1−p)·a₀ = t, convex there, with its minimum at a₁/a₀ = sqrt((t + 1 − p)/(t + p));
        clipped to λ₀, λ₁ ≥ 0."""
        sigma1 = jnp.where(iso_positive, iso, 0.0)
        sigma0 = jnp.where(iso_positive, 0.0, iso)
        rest = jnp.maximum(power - iso_cost * iso, 0.0)
        total = rest + p * (v + sigma1) + (1 - p) * (u + sigma0)
        ratio = jnp.sqrt((total + 1 - p) / (total + p))
        lam0 = jnp.clip(total / (p * ratio + 1 - p) - u - sigma0, 0.0, rest / (1 - p))
        return sigma0, sigma1, lam0, jnp.maximum(rest - (1 - p) * lam0, 0.0) / p

    lo, hi = 0.0, 1.0
    for _ in range(_LEVELS):
        share = jnp.linspace(lo, hi, _GRID)
        values = sum_kl(*allocate(share * iso_limit), u, v, d, 1.0)
        best = share[jnp.argmin(jnp.where(jnp.isnan(values), jnp.inf, values))]
        cell = (hi - lo) / (_GRID - 1)
        lo, hi = jnp.maximum(best - cell, 0.0), jnp.minimum(best + cell, 1.0)
    return allocate(best * iso_limit)


@dataclasses.dataclass(frozen=True)
class Marvell(Defense):
    """Marvell (Li et al., ICLR 2022), for binary tasks: positive messages get noise
    N(0, Σ₁), negative ones N(0, Σ₀), chosen to minimize the symmetrized KL divergence between
    the two classes' (Gaussian-modelled) message distributions, whose smallness bounds every
    scoring attacker's error from below, under the power budget p·tr(Σ₁) + (1−p)·tr(Σ₀) ≤ P, p the
    batch's positive fraction. As in the paper, Σ_c = σ_c·I + λ_c·ΔΔᵀ/‖Δ‖² with
    Δ = mean(g | y=1) − mean(g | y=0) over the batch; the small problem over (σ₀, σ₁, λ₀, λ₁)
    ≥ 0 is solved numerically by `marvell_covariances` (the released code alternates 1-D
    minimizations on the CPU; the solution is the same problem's optimum).

    Default `power` 4.0. A batch with one class only gets no noise (as in the released
    code). Departure: no "dynamic" mode (the released code's option that raises P until the
    objective falls below a threshold); P is always power·‖Δ‖².

    Attributes:
        power: the power budget P as a multiple of ‖Δ‖², P = power·‖Δ‖²; larger, stronger.
            It is the paper's scale s, reported from 0.1 to 10. Allowed: >= 0.
    """

    name: ClassVar[str] = "marvell"
    summary: ClassVar[str] = "class-dependent Gaussian noise minimizing KL leakage (Li et al. 2022)"
    knob: ClassVar[str] = "power"
    hyper: ClassVar[tuple] = ("power",)
    needs: ClassVar[str] = BATCH_CUT           # the batch's class means
    draws: ClassVar[frozenset] = frozenset({"cut"})
    binary_only: ClassVar[bool] = True
    power: float = 4.0

    def __post_init__(self):
        require(self.power >= 0, "defense.marvell.power",
                f"must be non-negative (a multiple of ‖Δ‖²), got {self.power!r}")

    def check_data(self, num_classes):
        require(num_classes == 2, "defense.marvell",
                f"Marvell protects binary labels; the data set has {num_classes} classes")

    def cut(self, hp, g, ctx):
        sigma0, sigma1, lam0, lam1, direction, _ = marvell_covariances(g, ctx["labels"],
                                                                       hp["power"])
        positive = (ctx["labels"] == 1)[:, None]
        # rounding can leave a variance a hair below zero
        iso_std = jnp.sqrt(jnp.maximum(jnp.where(positive, sigma1, sigma0), 0.0))
        dir_std = jnp.sqrt(jnp.maximum(jnp.where(positive, lam1, lam0), 0.0))
        iso_key, dir_key = jax.random.split(ctx["key"])
        iso = jax.random.normal(iso_key, g.shape)
        along = jax.random.normal(dir_key, (g.shape[0], 1))
        return g + iso_std * iso + dir_std * along * direction
