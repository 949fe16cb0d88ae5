"""Quantized messages: DiscreteSGD and signSGD, as Fu et al. (USENIX Security 2022) evaluate them
against label inference."""
from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax
import jax.numpy as jnp

from flax import struct

from ladsg_jax.defenses.base import BATCH_CUT, WHOLE_BATCH, Defense
from ladsg_jax.errors import one_of, require

GRIDS = ("batch", "fu", "vflair")


def discretize(g: jax.Array, bins) -> jax.Array:
    """Each entry of g rounded to the nearest of `bins` evenly spaced values over
    [−max|g|, max|g|] (the batch's range), so the message carries log2(bins) bits an entry."""
    bound = jnp.max(jnp.abs(g)) + 1e-12
    # times the reciprocal, as XLA computes a division by a compile-time constant: the numbers
    # of a traced `bins` equal those of a constant one
    grid_step = 2 * bound * (1.0 / (bins - 1))
    return jnp.round((g + bound) / grid_step) * grid_step - bound


def fu_grid(g: jax.Array, bins, bound) -> jax.Array:
    """Fu et al.'s rule: each entry rounded to the nearest multiple of the fixed step
    2·bound/bins (zero on the grid; nothing clipped, so entries beyond ±bound keep levels of
    their own)."""
    step = 2 * bound / bins
    return jnp.round(g / step) * step


def vflair_step(g: jax.Array, bins) -> jax.Array:
    """VFLAIR's step for W = bins + 1 levels: 2σ/(W//2), σ the sample standard deviation of
    the whole message (every entry of the batch)."""
    return 2 * jnp.std(g, ddof=1) / jnp.floor((bins + 1) / 2)


def true_messages(hs: tuple, ctx: dict, top_fn) -> tuple:
    """The messages the passive parties' cuts will carry, ∂L/∂h_k of the batch-mean softmax
    cross-entropy at the step's targets, made in `forward` by one VJP of the top model with its
    parameters held fixed (as LADSG's decoy makes its shift)."""
    targets = ctx["targets"]
    logits, pullback = jax.vjp(lambda *h: top_fn(h), *hs)
    grads = pullback((jax.nn.softmax(logits) - targets) / targets.shape[0])
    return tuple(jax.lax.stop_gradient(g) for g in grads[:-1])


@struct.dataclass
class GridState:
    """VFLAIR's grid step per passive party, fixed at the first step (0 until then)."""

    step: jax.Array


@dataclasses.dataclass(frozen=True)
class DiscreteSGD(Defense):
    """DiscreteSGD (Dryden et al. 2016's quantized gradients, as Fu et al. 2022 apply them to
    the message): every entry of the batch's message is rounded to a grid. Three grids:

    - `grid="batch"` (the default): `bins` values spanning [−max|g|, max|g|] of the batch, so
      the grid follows the message's scale as training shrinks it (a departure from both
      references, kept as the default because one `bins` then means the same strength on every
      data set, batch size and epoch; an even `bins` leaves 0 off the grid).
    - `grid="fu"`: Fu et al.'s released code, the nearest multiple of 2·`bound`/`bins`, a fixed
      step with nothing clipped (their default bound 0.03, about 1/B of a message at B = 32).
      At bins 3 / 6 / 12 a message of entries ~N(0, 0.01²) takes 5 / 8 / 14 distinct values.
    - `grid="vflair"`: VFLAIR's, the nearest multiple of 2σ/(W//2), W = `bins` + 1 (their
      `bin_numbers` is `bins`), σ the standard deviation of the first step's message, kept for
      the run (so later, smaller messages fall on fewer levels). σ is read in `forward` from the
      cross-entropy's messages by one VJP of the top model, hence the whole batch.

    Attributes:
        bins: number of grid values each message entry is rounded to (`vflair`: VFLAIR's
            bin_numbers); fewer, stronger. Allowed: integer >= 2.
        grid: which grid: batch (ours), fu (Fu et al.'s fixed step) or vflair (VFLAIR's step
            from the first message's σ). Allowed: one of batch, fu, vflair.
        bound: Fu et al.'s bound (grid fu only): the step is 2·bound/bins. Allowed: > 0.
    """

    name: ClassVar[str] = "discrete_sgd"
    summary: ClassVar[str] = "message entries rounded to a grid (Dryden et al. 2016)"
    knob: ClassVar[str] = "bins"
    hyper: ClassVar[tuple] = ("bins", "bound")
    bins: int = 3
    grid: str = "batch"
    bound: float = 0.03

    def __post_init__(self):
        require(isinstance(self.bins, int) and self.bins >= 2, "defense.discrete_sgd.bins",
                f"must be an integer of at least 2, got {self.bins!r}")
        one_of("defense.discrete_sgd.grid", self.grid, GRIDS)
        require(self.bound > 0, "defense.discrete_sgd.bound",
                f"must be positive, got {self.bound!r}")

    @property
    def needs(self) -> str:
        # the batch's max |g|; VFLAIR's σ comes from the top model's pullback of the batch
        return WHOLE_BATCH if self.grid == "vflair" else BATCH_CUT

    def init(self, key, data, config, hp):
        if self.grid != "vflair":
            return None
        return GridState(step=jnp.zeros((config.num_parties - 1,), jnp.float32))

    def forward(self, hp, state, hs, ctx, top_fn):
        if ctx is None or self.grid != "vflair":
            return super().forward(hp, state, hs, ctx, top_fn)
        fresh = jnp.stack([vflair_step(g, hp["bins"]) for g in true_messages(hs, ctx, top_fn)])
        steps = jnp.where(state.step > 0, state.step, fresh)
        return hs, tuple({**ctx, "step": steps[k]} for k in range(len(hs) - 1)), steps

    def update(self, hp, state, report, messages):
        return (state if self.grid != "vflair" else state.replace(step=report)), None, {}

    def cut(self, hp, g, ctx):
        if self.grid == "fu":
            return fu_grid(g, hp["bins"], hp["bound"])
        if self.grid == "vflair":
            return jnp.round(g / ctx["step"]) * ctx["step"]
        return discretize(g, hp["bins"])


@dataclasses.dataclass(frozen=True)
class SignSGD(Defense):
    """signSGD (Bernstein et al., ICML 2018) applied to the message: each entry sent as its
    sign times the batch's mean |g| (a departure: one scalar per batch, so the passive party's
    step keeps its size as training shrinks the messages). No strength knob: the signs are all
    that passes."""

    name: ClassVar[str] = "sign_sgd"
    summary: ClassVar[str] = "message entries sent as signs (Bernstein et al. 2018)"
    needs: ClassVar[str] = BATCH_CUT           # the batch's mean |g|

    def cut(self, hp, g, ctx):
        return jnp.mean(jnp.abs(g)) * jnp.sign(g)
