"""Quantized messages: DiscreteSGD and signSGD, as Fu et al. (USENIX Security 2022) evaluate them
against label inference."""
from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax
import jax.numpy as jnp

from ladsg_jax.defenses.base import BATCH_CUT, Defense
from ladsg_jax.errors import require


def discretize(g: jax.Array, bins) -> jax.Array:
    """Each entry of g rounded to the nearest of `bins` evenly spaced values over
    [−max|g|, max|g|] (the batch's range), so the message carries log2(bins) bits an entry."""
    bound = jnp.max(jnp.abs(g)) + 1e-12
    # times the reciprocal, as XLA computes a division by a compile-time constant: the numbers
    # of a traced `bins` equal those of a constant one
    grid_step = 2 * bound * (1.0 / (bins - 1))
    return jnp.round((g + bound) / grid_step) * grid_step - bound


@dataclasses.dataclass(frozen=True)
class DiscreteSGD(Defense):
    """DiscreteSGD (Dryden et al. 2016's quantized gradients, as Fu et al. 2022 apply them to
    the message): every entry of the batch's message is rounded to one of `bins` grid values
    spanning the batch's range. Departure: the grid is symmetric around zero over the batch's
    max |g| rather than a fixed interval, so it follows the message's scale as training shrinks
    it.

    Attributes:
        bins: number of grid values each message entry is rounded to; fewer, stronger.
            Allowed: integer >= 2.
    """

    name: ClassVar[str] = "discrete_sgd"
    summary: ClassVar[str] = "message entries rounded to a grid (Dryden et al. 2016)"
    knob: ClassVar[str] = "bins"
    hyper: ClassVar[tuple] = ("bins",)
    needs: ClassVar[str] = BATCH_CUT           # the batch's max |g|
    bins: int = 3

    def __post_init__(self):
        require(isinstance(self.bins, int) and self.bins >= 2, "defense.discrete_sgd.bins",
                f"must be an integer of at least 2, got {self.bins!r}")

    def cut(self, hp, g, ctx):
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
