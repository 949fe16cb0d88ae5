"""An example plugin: a defense that draws fresh randomness every step, registered for every
`ladsg-jax` command with `--plugin examples/plugins/message_dropout.py` (README: "Write your
own defense or attack"; docs/DESIGN.md §2.3–§2.6 for the contract).

`message_dropout` sends back, for each true message g (B, d), g·M/(1−rate) with M a fresh
random 0/1 mask keeping each entry with probability 1−rate (dropout, Srivastava et al., JMLR
2014, applied to the message). The expected message is g, so training still converges; the
label signal of any one message is blurred. What it shows of the contract:

- `draws = {"cut"}`: it consumes the step's key `ctx["key"]`. Declared, so in a chain with
  another member that draws (`laplace`, `sg`, ...) each gets a key of its own; undeclared, it
  would read the chain's key, the very key such a member gets when it is the only one
  declaring, and the two draws would come from one key.
- `forward` gives each passive party a key of its own (`fold_in` by the party's position): the
  default `forward` hands every passive party the same context, key included, so with three
  or more parties every passive party would get the same mask.
- `needs = BATCH_CUT`: the mask is drawn in the batch's shape, so under `--parallel` the cut runs
  on the gathered batch (each device drawing for its own shard with the replicated key would
  repeat the same mask on every shard).
- `rate` is in `hyper`, read from `hp`: `ladsg-jax sweep --grid rate=0.1,0.3,0.5` is one
  compiled program.

The mask is unbiased, so an attacker that averages a sample's messages over the epochs
(`direct_averaged`, `message_lr` of `rotation.py`) undoes much of it: a weak defense on its own,
meant as a pattern.
"""
from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax
import jax.numpy as jnp

from ladsg_jax.defenses import Defense
from ladsg_jax.defenses.base import BATCH_CUT
from ladsg_jax.errors import require


@dataclasses.dataclass(frozen=True)
class MessageDropout(Defense):
    """Each message entry dropped with probability `rate` each step, the kept ones scaled by
    1/(1−rate). Larger `rate`, stronger.

    Attributes:
        rate: probability that a message entry is zeroed in a step; in [0, 1).
    """

    name: ClassVar[str] = "message_dropout"
    summary: ClassVar[str] = "example plugin: message entries dropped at random each step"
    knob: ClassVar[str] = "rate"
    hyper: ClassVar[tuple] = ("rate",)              # read from hp in the hooks: traced
    needs: ClassVar[str] = BATCH_CUT                # the mask is drawn in the batch's shape
    draws: ClassVar[frozenset] = frozenset({"cut"})  # the cut consumes ctx["key"]

    rate: float = 0.5

    def __post_init__(self):
        require(0 <= self.rate < 1, "defense.message_dropout.rate",
                f"must be in [0, 1), got {self.rate!r}")

    def forward(self, hp, state, hs, ctx, top_fn):
        if ctx is None:                             # evaluation: nothing to send
            return hs, None, None
        contexts = tuple({**ctx, "key": jax.random.fold_in(ctx["key"], k)}
                         for k in range(len(hs) - 1))
        return hs, contexts, None

    def cut(self, hp, g, ctx):
        keep = jax.random.bernoulli(ctx["key"], 1.0 - hp["rate"], g.shape)
        return jnp.where(keep, g / (1.0 - hp["rate"]), 0.0).astype(g.dtype)


DEFENSES = [MessageDropout]
