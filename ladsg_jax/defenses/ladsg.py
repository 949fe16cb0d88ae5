"""LADSG: label anonymization with semantically aligned substitute gradients
(arXiv 2506.06742), as DESIGN §3 fixes its equations.

Stage `la` (label anonymization): a teacher trained on the active party's own slice ranks the
classes; S_i are the k−1 classes it ranks highest other than y_i, and the training target is
t_i = (1−ε)·onehot(y_i) + ε·Σ_{j∈S_i} w_ij·onehot(j), with w_ij = 1/(k−1) (`weighting=
"uniform"`) or the teacher's probabilities renormalized over S_i (`"teacher"`). ε < (k−1)/k
keeps y_i the argmax.

Stage `sg` (substitute gradients): the passive party receives s_i instead of its true message
g_i = ∂L/∂h_i.
- `mode="decoy"`: the exact gradient it would have received had the target been a decoy
  t̃_i, the LA-shaped target centred on c_i drawn uniformly from C_i = {y_i} ∪ S_i (fresh each
  step, or once per sample). For softmax cross-entropy s_i = g_i + J_iᵀ(t_i − t̃_i)/B, J_i the
  top model's Jacobian of the logits: one VJP of the top model with its parameters held fixed.
- `mode="cosine"`: s_i = r_i·(ρ·ĝ_i + sqrt(1−ρ²)·û_i), û_i a Gaussian direction made
  orthogonal to ĝ_i: fresh each step (`noise="per_step"`, DESIGN §3) or drawn once per sample
  and party (`noise="per_sample"`, our addition: an attacker who averages a sample's messages
  over the epochs cancels fresh noise but not a fixed one).
- `mode="flsg"`: `flsg_samples` Gaussian draws, the first whose cosine to g_i is at least
  `threshold`, else the closest (the rule of Fan et al. 2024's FLSG, vectorized).
`norm`: "keep" rescales each substitute to ‖g_i‖, "own" leaves it as the mode made it (for
cosine r_i = ‖g_i‖; a decoy message is then exactly the decoy gradient), "batch_mean" uses the
batch's mean ‖g‖. Then s_i ← (1−α)·g_i + α·s_i (`mix` α) for each sample with probability π
(`prob`), else s_i = g_i.

Stage `nd` (norm detection): the active party keeps, per passive party, running means and
variances of the batch-mean embedding norm mean_i ‖h_{k,i}‖ and of the batch-mean norm of the
message it is about to send. The running statistics are exact averages for the first `warmup`
steps and exponential moving averages (`decay`) after. From then on a batch whose embedding
statistic exceeds μ + κσ, or `ratio` times the median over the other parties (the active party
included; with the party itself in the median, two parties could never trip the rule), is
flagged: the party's embeddings are clipped to that bound in the forward pass (per sample, to
norm ≤ bound) and its message is zeroed for the step; a message statistic above its μ + κσ
zeroes the message too. A flagged statistic enters the running statistics clipped to its μ + κσ
bound (winsorized): a party cannot drag its bound up at its own pace, yet an honest party whose
norms shift for good is not shut out by the μ + κσ rule for the rest of training (with flagged
batches left out, an honest LA+SG run on digits was blocked from step 48 on). At evaluation the
embeddings pass the same screen on the final statistics, so the top model sees what it was
trained on. Flag rates are reported as `Result.defense_metrics`.

The defaults are the measured trade-off of `experiments/ladsg_sweep.py` (issue 4): stages la and
sg, k = min(3, classes), ε = 0.3, cosine substitution ρ = 0.5 with per-step noise and the true
message's norm at full rate. Norm detection is off by default: substitution honestly inflates the
passive embeddings (up to 14.6× the active party's on digits), so the ratio rule then blocks an
honest party for most steps (82% on digits with a top model); alone it flags 0.3–3.7% of an
honest run's steps and catches a party whose embeddings explode. Per-sample noise resists the
averaging attacker better but costs 5.5–10 points of main-task accuracy with a top model on
digits (ρ 0.5–0.9).
"""
from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax
import jax.numpy as jnp

from ladsg_jax.defenses.base import Defense, clip_scale
from ladsg_jax.defenses.teacher import train_teacher
from ladsg_jax.errors import one_of, require

STAGES = ("la", "sg", "nd")
MODES = ("decoy", "cosine", "flsg")
NORMS = ("keep", "own", "batch_mean")


def _one_of(field: str, value, allowed) -> None:
    one_of(f"defense.ladsg.{field}", value, allowed)


@dataclasses.dataclass(frozen=True)
class LADSG(Defense):
    """LADSG with every constant a field; `stages` switches each stage on alone (the ablation).

    `k=None` takes min(3, num_classes): 3 as DESIGN §3's default, 2 for binary tasks.
    """

    name: ClassVar[str] = "ladsg"
    summary: ClassVar[str] = ("label anonymization, substitute gradients, norm detection "
                              "(arXiv 2506.06742)")
    knob: ClassVar[str] = "rho"

    stages: tuple = ("la", "sg")
    k: int | None = None
    epsilon: float = 0.3
    weighting: str = "uniform"
    teacher_epochs: int = 10
    mode: str = "cosine"
    decoy: str = "per_step"
    candidates: str = "teacher"
    rho: float = 0.5
    noise: str = "per_step"
    norm: str = "keep"
    mix: float = 1.0
    prob: float = 1.0
    flsg_samples: int = 16
    threshold: float = 0.5
    warmup: int = 20
    kappa: float = 3.0
    ratio: float = 5.0
    decay: float = 0.99

    def __post_init__(self):
        stages = (self.stages,) if isinstance(self.stages, str) else tuple(self.stages)
        object.__setattr__(self, "stages", stages)
        for stage in stages:
            _one_of("stages", stage, STAGES)
        if self.k is not None:
            require(isinstance(self.k, int) and self.k >= 2, "defense.ladsg.k",
                    f"must be an integer of at least 2, got {self.k!r}")
            check_epsilon(self.epsilon, self.k)
        else:       # k = min(3, classes) is known at setup, where ε is checked against it
            require(0 <= self.epsilon < 1, "defense.ladsg.epsilon",
                    f"must be in [0, (k-1)/k); got {self.epsilon!r}")
        _one_of("weighting", self.weighting, ("uniform", "teacher"))
        _one_of("mode", self.mode, MODES)
        _one_of("decoy", self.decoy, ("per_step", "per_sample"))
        _one_of("candidates", self.candidates, ("teacher", "random"))
        _one_of("norm", self.norm, NORMS)
        _one_of("noise", self.noise, ("per_step", "per_sample"))
        require(isinstance(self.teacher_epochs, int) and self.teacher_epochs > 0,
                "defense.ladsg.teacher_epochs", f"must be a positive integer, got "
                                                f"{self.teacher_epochs!r}")
        require(-1 <= self.rho <= 1, "defense.ladsg.rho", f"must be in [-1, 1], got {self.rho!r}")
        require(0 <= self.mix <= 1, "defense.ladsg.mix", f"must be in [0, 1], got {self.mix!r}")
        require(0 <= self.prob <= 1, "defense.ladsg.prob", f"must be in [0, 1], got {self.prob!r}")
        require(isinstance(self.flsg_samples, int) and self.flsg_samples >= 1,
                "defense.ladsg.flsg_samples", f"must be a positive integer, got "
                                              f"{self.flsg_samples!r}")
        require(-1 <= self.threshold <= 1, "defense.ladsg.threshold",
                f"must be in [-1, 1], got {self.threshold!r}")
        require(isinstance(self.warmup, int) and self.warmup >= 1, "defense.ladsg.warmup",
                f"must be a positive integer (steps), got {self.warmup!r}")
        require(self.kappa > 0, "defense.ladsg.kappa", f"must be positive, got {self.kappa!r}")
        require(self.ratio > 1, "defense.ladsg.ratio",
                f"must be greater than 1 (a multiple of the median norm), got {self.ratio!r}")
        require(0 < self.decay < 1, "defense.ladsg.decay",
                f"must be in (0, 1), got {self.decay!r}")

    # -- setup: the teacher and the candidate sets -------------------------------------------

    @property
    def needs_teacher(self) -> bool:
        return "la" in self.stages or ("sg" in self.stages and self.mode == "decoy"
                                       and self.candidates == "teacher")

    def candidates_for(self, num_classes: int) -> int:
        """k, the candidate set's size: the field, or min(3, num_classes) when it is None."""
        k = self.k if self.k is not None else min(3, num_classes)
        require(k <= num_classes, "defense.ladsg.k",
                f"{k} candidates but the data set has {num_classes} classes; allowed: "
                f"2..{num_classes}")
        check_epsilon(self.epsilon, k)
        return k

    def setup(self, key, data, config) -> dict:
        num_classes = data.num_classes
        k = self.candidates_for(num_classes)
        y = data.train_y
        n = y.shape[0]
        teacher_key, random_key, decoy_key, noise_key = jax.random.split(key, 4)
        state = {}
        if self.needs_teacher:
            logits = train_teacher(teacher_key, data.train_x[-1], y, num_classes, config,
                                   self.teacher_epochs)
            masked = jnp.where(jax.nn.one_hot(y, num_classes, dtype=bool), -jnp.inf, logits)
            top_logits, others = jax.lax.top_k(masked, k - 1)
            state["teacher_candidates"] = others
            state["teacher_weights"] = jax.nn.softmax(top_logits, axis=-1)
        if "sg" in self.stages and self.mode == "decoy":
            if self.candidates == "teacher":
                state["decoy_candidates"] = state["teacher_candidates"]
            else:
                state["decoy_candidates"] = random_other_classes(random_key, y, num_classes,
                                                                 k - 1)
            if self.decoy == "per_sample":
                state["decoy_choice"] = jax.random.randint(decoy_key, (n,), 0, k)
        if "sg" in self.stages and self.mode == "cosine" and self.noise == "per_sample":
            embed_dim = config.embed_dim or num_classes
            state["noise_directions"] = jax.random.normal(
                noise_key, (data.num_parties - 1, n, embed_dim))
        if "nd" in self.stages:
            state["nd"] = norm_statistics_init(data.num_parties - 1)
        return state

    # -- stage la ----------------------------------------------------------------------------

    def targets(self, labels, num_classes, state, index):
        onehot = jax.nn.one_hot(labels, num_classes, dtype=jnp.float32)
        if "la" not in self.stages:
            return onehot
        others = state["teacher_candidates"][index]
        if self.weighting == "teacher":
            weights = state["teacher_weights"][index]
        else:
            weights = jnp.full(others.shape, 1.0 / others.shape[-1])
        spread = jnp.einsum("bj,bjc->bc", weights, jax.nn.one_hot(others, num_classes))
        return (1 - self.epsilon) * onehot + self.epsilon * spread

    # -- stage sg ----------------------------------------------------------------------------

    def decoy_targets(self, labels, num_classes, state, index, key):
        """t̃: the LA-shaped target centred on a class drawn uniformly from C_i = {y_i} ∪ S_i."""
        candidates = jnp.concatenate([labels[:, None], state["decoy_candidates"][index]], axis=1)
        k = candidates.shape[1]
        if self.decoy == "per_sample":
            choice = state["decoy_choice"][index]
        else:
            choice = jax.random.randint(key, labels.shape, 0, k)
        centre = jnp.take_along_axis(candidates, choice[:, None], axis=1)[:, 0]
        members = jax.nn.one_hot(candidates, num_classes).sum(axis=1)     # indicator of C_i
        onehot = jax.nn.one_hot(centre, num_classes)
        return (1 - self.epsilon) * onehot + self.epsilon / (k - 1) * (members - onehot)

    def cut_context(self, ctx, top_fn, hs, k):
        ctx = {**ctx, "key": jax.random.fold_in(ctx["key"], k)}
        if "noise_directions" in ctx["state"]:
            ctx["noise"] = ctx["state"]["noise_directions"][k][ctx["index"]]
        if "sg" not in self.stages or self.mode != "decoy":
            return ctx
        decoy_key, ctx["key"] = jax.random.split(ctx["key"])
        targets = ctx["targets"]
        decoy = self.decoy_targets(ctx["labels"], targets.shape[-1], ctx["state"], ctx["index"],
                                   decoy_key)
        _, pullback = jax.vjp(lambda h: top_fn(hs[:k] + (h,) + hs[k + 1:]), hs[k])
        (delta,) = pullback((targets - decoy) / targets.shape[0])
        return {**ctx, "decoy_targets": decoy, "delta": jax.lax.stop_gradient(delta)}

    def cut(self, g, ctx):
        if "sg" not in self.stages:
            return g
        mode_key, prob_key = jax.random.split(ctx["key"])
        g_norm = jnp.linalg.norm(g, axis=-1, keepdims=True)
        if self.mode == "decoy":
            s = g + ctx["delta"]
        elif self.mode == "cosine":
            noise = ctx["noise"] if "noise" in ctx else jax.random.normal(mode_key, g.shape)
            s = g_norm * cosine_substitute(g, self.rho, noise)
        else:
            s = flsg_substitute(mode_key, g, self.flsg_samples, self.threshold)
        s_norm = jnp.linalg.norm(s, axis=-1, keepdims=True) + 1e-12
        if self.norm == "keep":
            s = s / s_norm * g_norm
        elif self.norm == "batch_mean":
            s = s / s_norm * jnp.mean(g_norm)
        s = (1 - self.mix) * g + self.mix * s
        substitute = jax.random.bernoulli(prob_key, self.prob, (g.shape[0], 1))
        return jnp.where(substitute, s, g)


    # -- stage nd ----------------------------------------------------------------------------

    def spike_bound(self, stats: dict, name: str):
        """μ + κσ of the running statistic `name` ("embed" or "message") per passive party;
        infinite during the warm-up."""
        bound = stats[f"{name}_mean"] + self.kappa * jnp.sqrt(stats[f"{name}_var"])
        return jnp.where(stats["count"] >= self.warmup, bound, jnp.inf)

    def screen(self, hs, ctx):
        if "nd" not in self.stages:
            return hs, {}
        stats = ctx["state"]["nd"]
        norms = jax.lax.stop_gradient(jnp.stack([jnp.linalg.norm(h, axis=-1).mean()
                                                 for h in hs]))
        passive = len(hs) - 1
        others = jnp.stack([jnp.median(jnp.delete(norms, k)) for k in range(passive)])
        ema_bound = self.spike_bound(stats, "embed")
        ratio_bound = jnp.where(stats["count"] >= self.warmup, self.ratio * others, jnp.inf)
        bound = jnp.minimum(ema_bound, ratio_bound)
        flagged = norms[:passive] > bound
        screened = list(hs)
        for k in range(passive):
            scale = jax.lax.stop_gradient(clip_scale(hs[k], bound[k]))
            screened[k] = jnp.where(flagged[k], hs[k] * scale, hs[k])
        return tuple(screened), {"embed_norm": norms[:passive], "embed_flag": flagged,
                                 "embed_bound": ema_bound}

    def filter(self, state, report, messages):
        if "nd" not in self.stages:
            return state, None, {}
        stats = state["nd"]
        message_norm = jnp.stack([jnp.linalg.norm(m, axis=-1).mean() for m in messages])
        message_bound = self.spike_bound(stats, "message")
        message_flag = message_norm > message_bound
        blocked = report["embed_flag"] | message_flag
        stats = norm_statistics_update(stats, jnp.minimum(report["embed_norm"],
                                                          report["embed_bound"]),
                                       jnp.minimum(message_norm, message_bound), self.decay)
        metrics = {"nd_flag_rate": blocked.astype(jnp.float32),
                   "nd_embed_flag_rate": report["embed_flag"].astype(jnp.float32),
                   "nd_message_flag_rate": message_flag.astype(jnp.float32),
                   "nd_embed_norm": report["embed_norm"], "nd_message_norm": message_norm}
        return {**state, "nd": stats}, blocked, metrics


def norm_statistics_init(num_passive: int) -> dict:
    """ND's running statistics, one entry per passive party, before any step."""
    zeros = jnp.zeros((num_passive,), jnp.float32)
    return {"count": jnp.zeros((num_passive,), jnp.int32), "embed_mean": zeros,
            "embed_var": zeros, "message_mean": zeros, "message_var": zeros}


def norm_statistics_update(stats: dict, embed_norm, message_norm, decay: float) -> dict:
    """One observation per passive party into the running means and variances.

    The weight of the new observation is 1/(n+1) while that exceeds 1−decay (an exact running
    average over the first observations), then 1−decay (an exponential moving average; the
    variance as in West 1979's weighted update).
    """
    weight = jnp.maximum(1.0 - decay, 1.0 / (stats["count"] + 1.0))

    def moments(mean, var, x):
        diff = x - mean
        return mean + weight * diff, (1.0 - weight) * (var + weight * diff ** 2)

    embed_mean, embed_var = moments(stats["embed_mean"], stats["embed_var"], embed_norm)
    message_mean, message_var = moments(stats["message_mean"], stats["message_var"],
                                        message_norm)
    return {"count": stats["count"] + 1, "embed_mean": embed_mean,
            "embed_var": embed_var, "message_mean": message_mean, "message_var": message_var}


def check_epsilon(epsilon: float, k: int) -> None:
    """ε < (k−1)/k, so that the true label stays the argmax of the anonymized target."""
    bound = (k - 1) / k
    require(0 <= epsilon < bound, "defense.ladsg.epsilon",
            f"must be in [0, (k-1)/k) = [0, {bound:.4g}) for k={k} so the label stays the "
            f"argmax; got {epsilon!r}")


def random_other_classes(key, labels, num_classes: int, count: int):
    """`count` distinct classes other than each label, uniformly at random."""
    scores = jax.random.uniform(key, (labels.shape[0], num_classes))
    scores = jnp.where(jax.nn.one_hot(labels, num_classes, dtype=bool), -1.0, scores)
    return jax.lax.top_k(scores, count)[1]


def cosine_substitute(g, rho: float, u):
    """Unit vectors at cosine ρ to each row of g: ρ·ĝ + sqrt(1−ρ²)·û, û the part of the
    direction u (one row per row of g) orthogonal to ĝ, normalized."""
    g_hat = g / (jnp.linalg.norm(g, axis=-1, keepdims=True) + 1e-12)
    u = u - jnp.sum(u * g_hat, axis=-1, keepdims=True) * g_hat
    u_hat = u / (jnp.linalg.norm(u, axis=-1, keepdims=True) + 1e-12)
    return rho * g_hat + jnp.sqrt(1 - rho ** 2) * u_hat


def flsg_substitute(key, g, samples: int, threshold: float):
    """FLSG's rule (Fan et al. 2024), vectorized: of `samples` Gaussian draws per row, the
    first whose cosine to g is at least `threshold`, else the one closest in cosine."""
    draws = jax.random.normal(key, (samples,) + g.shape)
    g_hat = g / (jnp.linalg.norm(g, axis=-1, keepdims=True) + 1e-12)
    cos = jnp.sum(draws * g_hat, axis=-1) / (jnp.linalg.norm(draws, axis=-1) + 1e-12)
    passing = cos >= threshold
    pick = jnp.where(passing.any(axis=0), jnp.argmax(passing, axis=0), jnp.argmax(cos, axis=0))
    return jnp.take_along_axis(draws, pick[None, :, None], axis=0)[0]
