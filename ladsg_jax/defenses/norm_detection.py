"""LADSG's stage 3, norm detection (arXiv 2506.06742's gradient-norm anomaly filtering; DESIGN §3).

The active party keeps, per passive party, running means and variances of the batch-mean
embedding norm mean_i ‖h_{k,i}‖ and of the batch-mean norm of the message it is about to send.
The running statistics are exact averages for the first `warmup` steps and exponential moving
averages (`decay`) after. From then on a batch whose embedding statistic exceeds μ + κσ, or
`ratio` times the median over the other parties (the active party included; with the party
itself in the median, two parties could never trip the rule), is flagged: the party's
embeddings are clipped to that bound in the forward pass (per sample, to norm ≤ bound) and its
message is zeroed for the step; a message statistic above its μ + κσ zeroes the message too. A
flagged statistic enters the running statistics clipped to its μ + κσ bound (winsorized): a
party cannot drag its bound up at its own pace, yet an honest party whose norms shift for good
is not shut out for the rest of training (with flagged batches left out, an honest LA+SG run on
digits was blocked from step 48 on). At evaluation the embeddings pass the same screen on the
final statistics, so the top model sees what it was trained on. Flag rates are metrics.
"""
from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax
import jax.numpy as jnp
from flax import struct

from ladsg_jax.defenses.base import WHOLE_BATCH, Defense, clip_scale
from ladsg_jax.errors import require


@struct.dataclass
class NormStatistics:
    """ND's running statistics, one entry per passive party."""

    count: jax.Array
    embed_mean: jax.Array
    embed_var: jax.Array
    message_mean: jax.Array
    message_var: jax.Array


def norm_statistics_init(num_passive: int) -> NormStatistics:
    """The running statistics before any step."""
    zeros = jnp.zeros((num_passive,), jnp.float32)
    return NormStatistics(count=jnp.zeros((num_passive,), jnp.int32), embed_mean=zeros,
                          embed_var=zeros, message_mean=zeros, message_var=zeros)


def norm_statistics_update(stats: NormStatistics, embed_norm, message_norm,
                           decay) -> NormStatistics:
    """One observation per passive party into the running means and variances.

    The weight of the new observation is 1/(n+1) while that exceeds 1−decay (an exact running
    average over the first observations), then 1−decay (an exponential moving average; the
    variance as in West 1979's weighted update).
    """
    weight = jnp.maximum(1.0 - decay, 1.0 / (stats.count + 1.0))

    def moments(mean, var, x):
        diff = x - mean
        return mean + weight * diff, (1.0 - weight) * (var + weight * diff ** 2)

    embed_mean, embed_var = moments(stats.embed_mean, stats.embed_var, embed_norm)
    message_mean, message_var = moments(stats.message_mean, stats.message_var, message_norm)
    return NormStatistics(count=stats.count + 1, embed_mean=embed_mean, embed_var=embed_var,
                          message_mean=message_mean, message_var=message_var)


@dataclasses.dataclass(frozen=True)
class NormDetection(Defense):
    """Norm detection (see the module docstring): clips and blocks a passive party whose
    embedding or message norms spike.

    Attributes:
        warmup: steps before any batch can be flagged (the bounds are infinite until then).
            Allowed: integer >= 1.
        kappa: κ of the spike bound μ + κσ on the running statistics; smaller, stronger.
            Allowed: > 0.
        ratio: cap on a party's embedding statistic as a multiple of the others' median;
            smaller, stronger. Allowed: > 1.
        decay: decay of the running statistics' exponential moving averages. A step's
            observation weighs max(1 − decay, 1/(n+1)), n the steps before it: an exact
            average over the first 1/(1 − decay) steps. Allowed: (0, 1).
    """

    name: ClassVar[str] = "nd"
    summary: ClassVar[str] = "norm detection: clip and block a party whose norms spike"
    knob: ClassVar[str] = "kappa"
    hyper: ClassVar[tuple] = ("warmup", "kappa", "ratio", "decay")
    needs: ClassVar[str] = WHOLE_BATCH       # batch-mean norms and running statistics

    warmup: int = 20
    kappa: float = 3.0
    ratio: float = 5.0
    decay: float = 0.99

    def __post_init__(self):
        prefix = f"defense.{self.name}"
        require(isinstance(self.warmup, int) and self.warmup >= 1, f"{prefix}.warmup",
                f"must be a positive integer (steps), got {self.warmup!r}")
        require(self.kappa > 0, f"{prefix}.kappa", f"must be positive, got {self.kappa!r}")
        require(self.ratio > 1, f"{prefix}.ratio",
                f"must be greater than 1 (a multiple of the median norm), got {self.ratio!r}")
        require(0 < self.decay < 1, f"{prefix}.decay",
                f"must be in (0, 1), got {self.decay!r}")

    def init(self, key, data, config, hp):
        return norm_statistics_init(data.num_parties - 1)

    def spike_bound(self, hp, stats: NormStatistics, name: str):
        """μ + κσ of the running statistic `name` ("embed" or "message") per passive party;
        infinite during the warm-up."""
        mean, var = getattr(stats, f"{name}_mean"), getattr(stats, f"{name}_var")
        bound = mean + hp["kappa"] * jnp.sqrt(var)
        return jnp.where(stats.count >= hp["warmup"], bound, jnp.inf)

    def forward(self, hp, state, hs, ctx, top_fn):
        norms = jax.lax.stop_gradient(jnp.stack([jnp.linalg.norm(h, axis=-1).mean()
                                                 for h in hs]))
        passive = len(hs) - 1
        others = jnp.stack([jnp.median(jnp.delete(norms, k)) for k in range(passive)])
        ema_bound = self.spike_bound(hp, state, "embed")
        ratio_bound = jnp.where(state.count >= hp["warmup"], hp["ratio"] * others, jnp.inf)
        bound = jnp.minimum(ema_bound, ratio_bound)
        flagged = norms[:passive] > bound
        screened = list(hs)
        for k in range(passive):
            scale = jax.lax.stop_gradient(clip_scale(hs[k], bound[k]))
            screened[k] = jnp.where(flagged[k], hs[k] * scale, hs[k])
        contexts = None if ctx is None else tuple(ctx for _ in range(passive))
        report = {"embed_norm": norms[:passive], "embed_flag": flagged, "embed_bound": ema_bound}
        return tuple(screened), contexts, report

    def update(self, hp, state, report, messages):
        message_norm = jnp.stack([jnp.linalg.norm(m, axis=-1).mean() for m in messages])
        message_bound = self.spike_bound(hp, state, "message")
        message_flag = message_norm > message_bound
        blocked = report["embed_flag"] | message_flag
        state = norm_statistics_update(state, jnp.minimum(report["embed_norm"],
                                                          report["embed_bound"]),
                                       jnp.minimum(message_norm, message_bound), hp["decay"])
        metrics = {"nd_flag_rate": blocked.astype(jnp.float32),
                   "nd_embed_flag_rate": report["embed_flag"].astype(jnp.float32),
                   "nd_message_flag_rate": message_flag.astype(jnp.float32),
                   "nd_embed_norm": report["embed_norm"], "nd_message_norm": message_norm}
        return state, blocked, metrics
