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
- `mode="cosine"`: s_i = r_i·(ρ·ĝ_i + sqrt(1−ρ²)·û_i), û_i a fresh Gaussian direction
  orthogonal to ĝ_i.
- `mode="flsg"`: `flsg_samples` Gaussian draws, the first whose cosine to g_i is at least
  `threshold`, else the closest (the rule of Fan et al. 2024's FLSG, vectorized).
`norm`: "keep" rescales each substitute to ‖g_i‖, "own" leaves it as the mode made it (for
cosine r_i = ‖g_i‖; a decoy message is then exactly the decoy gradient), "batch_mean" uses the
batch's mean ‖g‖. Then s_i ← (1−α)·g_i + α·s_i (`mix` α) for each sample with probability π
(`prob`), else s_i = g_i.

Stage `nd` (norm detection) is not built yet: asking for it is an error.
"""
from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax
import jax.numpy as jnp

from ladsg_jax.defenses.base import Defense
from ladsg_jax.defenses.teacher import train_teacher
from ladsg_jax.errors import ConfigError, one_of, require

STAGES = ("la", "sg", "nd")
BUILT_STAGES = ("la", "sg")
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

    stages: tuple = ("la", "sg")
    k: int | None = None
    epsilon: float = 0.3
    weighting: str = "uniform"
    teacher_epochs: int = 10
    mode: str = "cosine"
    decoy: str = "per_step"
    candidates: str = "teacher"
    rho: float = 0.5
    norm: str = "keep"
    mix: float = 1.0
    prob: float = 1.0
    flsg_samples: int = 16
    threshold: float = 0.5
    warmup: int = 20
    kappa: float = 3.0
    ratio: float = 5.0

    def __post_init__(self):
        stages = (self.stages,) if isinstance(self.stages, str) else tuple(self.stages)
        object.__setattr__(self, "stages", stages)
        for stage in stages:
            _one_of("stages", stage, STAGES)
        if "nd" in stages:
            raise ConfigError("defense.ladsg.stages", "stage 'nd' (norm detection) is not built "
                                                      "yet; allowed now: la, sg")
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
        teacher_key, random_key, decoy_key = jax.random.split(key, 3)
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
            s = g_norm * cosine_substitute(mode_key, g, self.rho)
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


def cosine_substitute(key, g, rho: float):
    """Unit vectors at cosine ρ to each row of g: ρ·ĝ + sqrt(1−ρ²)·û, û ⟂ ĝ Gaussian."""
    g_hat = g / (jnp.linalg.norm(g, axis=-1, keepdims=True) + 1e-12)
    u = jax.random.normal(key, g.shape)
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
