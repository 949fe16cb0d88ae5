"""LADSG's stage 2, substitute gradients (arXiv 2506.06742; DESIGN §3), and FLSG (Fan et al.
2024), which is the same stage in its rejection mode."""
from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax
import jax.numpy as jnp
from flax import struct

from ladsg_jax.defenses.anonymize import (TeacherCandidates, candidate_count, check_candidates,
                                          teacher_candidates)
from ladsg_jax.defenses.base import BATCH_CUT, WHOLE_BATCH, Defense
from ladsg_jax.defenses.neighbours import neighbour_substitute
from ladsg_jax.errors import one_of, positive_int, require

MODES = ("decoy", "cosine", "flsg", "neighbour")
NORMS = ("keep", "own", "batch_mean")
NOISE_SPACES = ("free", "message")


@struct.dataclass
class SubstituteState:
    """What substitution draws once per run: the decoy's candidate classes and, per sample,
    its decoy choice; the fixed noise directions of cosine's `noise="per_sample"` (one
    (n, d) array per passive party). None where the options need none."""

    candidates: TeacherCandidates | jax.Array | None = None
    decoy_choice: jax.Array | None = None
    noise_directions: jax.Array | None = None


def random_other_classes(key, labels, num_classes: int, count: int):
    """`count` distinct classes other than each label, uniformly at random."""
    scores = jax.random.uniform(key, (labels.shape[0], num_classes))
    scores = jnp.where(jax.nn.one_hot(labels, num_classes, dtype=bool), -1.0, scores)
    return jax.lax.top_k(scores, count)[1]


def cosine_substitute(g, rho, u):
    """Unit vectors at cosine ρ to each row of g: ρ·ĝ + sqrt(1−ρ²)·û, û the part of the
    direction u (one row per row of g) orthogonal to ĝ, normalized."""
    g_hat = g / (jnp.linalg.norm(g, axis=-1, keepdims=True) + 1e-12)
    u = u - jnp.sum(u * g_hat, axis=-1, keepdims=True) * g_hat
    u_hat = u / (jnp.linalg.norm(u, axis=-1, keepdims=True) + 1e-12)
    return rho * g_hat + jnp.sqrt(1 - rho ** 2) * u_hat


def message_space_noise(top_fn, hs, party: int, noise):
    """Directions where a true message lives (issue 35): each row of `noise` (batch, classes)
    centred over the classes (a difference of softmax and a target sums to zero), then pulled
    back through the top model at the embeddings `hs` to party `party`'s embedding. Without a
    top model the pullback is the identity: a Gaussian orthogonal to the ones vector."""
    centred = noise - noise.mean(-1, keepdims=True)
    _, pullback = jax.vjp(lambda h: top_fn(hs[:party] + (h,) + hs[party + 1:]), hs[party])
    return jax.lax.stop_gradient(pullback(centred)[0])


def flsg_substitute(key, g, samples: int, threshold):
    """FLSG's rule (Fan et al. 2024), vectorized: of `samples` Gaussian draws per row, the
    first whose cosine to g is at least `threshold`, else the one closest in cosine."""
    draws = jax.random.normal(key, (samples,) + g.shape)
    g_hat = g / (jnp.linalg.norm(g, axis=-1, keepdims=True) + 1e-12)
    cos = jnp.sum(draws * g_hat, axis=-1) / (jnp.linalg.norm(draws, axis=-1) + 1e-12)
    passing = cos >= threshold
    pick = jnp.where(passing.any(axis=0), jnp.argmax(passing, axis=0), jnp.argmax(cos, axis=0))
    return jnp.take_along_axis(draws, pick[None, :, None], axis=0)[0]


@dataclasses.dataclass(frozen=True)
class SubstituteGradients(Defense):
    """Substitute gradients: the passive party receives s_i instead of its true message g_i.

    - `mode="decoy"`: the exact gradient it would have received had the target been a decoy
      t̃_i, the LA-shaped target (ε, k) centred on c_i drawn uniformly from C_i = {y_i} ∪ S_i
      (fresh each step, or once per sample); S_i the teacher's top k−1 other classes
      (`candidates="teacher"`) or random ones. For softmax cross-entropy s_i = g_i +
      J_iᵀ(t_i − t̃_i)/B, J_i the top model's Jacobian of the logits: one VJP of the top model
      with its parameters held fixed (so this mode needs the whole batch in the forward pass).
    - `mode="cosine"`: s_i = r_i·(ρ·ĝ_i + sqrt(1−ρ²)·û_i), û_i a Gaussian direction made
      orthogonal to ĝ_i: fresh each step (`noise="per_step"`) or drawn once per sample and party
      (`"per_sample"`: an attacker averaging a sample's messages cancels fresh noise, not this).
      `noise_space="message"` draws û where a true message lives (`message_space_noise`): a
      Gaussian over the classes, centred and pulled back through the top model, so no linear
      map the attacker applies to every message (centring, without a top model) removes it;
      "free" (the default) draws it in the whole embedding space.
    - `mode="flsg"`: `flsg_samples` Gaussian draws, the first whose cosine to g_i is at least
      `threshold`, else the closest (Fan et al. 2024's FLSG rule, vectorized).
    - `mode="neighbour"`: the mean of the true messages of the `neighbours` other samples of the
      batch whose embeddings are closest in cosine (`defenses/neighbours.py`).

    `norm`: "keep" rescales each substitute to ‖g_i‖, "own" leaves it as the mode made it,
    "batch_mean" uses the batch's mean ‖g‖. Then s_i ← (1−α)·g_i + α·s_i (`mix` α) for each
    sample with probability π (`prob`), else s_i = g_i.

    Attributes:
        mode: how the substitute is made: decoy, cosine, flsg or neighbour (see above).
            Allowed: one of decoy, cosine, flsg, neighbour.
        decoy: when decoy mode draws the decoy's centre c_i: per_step or per_sample (see
            above). Allowed: one of per_step, per_sample.
        candidates: decoy mode's S_i: the teacher's top k−1 other classes, or random ones.
            Random ones are drawn once per sample. Allowed: one of teacher, random.
        rho: cosine mode's cosine ρ of the substitute to the true message; smaller, stronger.
            Allowed: [-1, 1].
        noise: when cosine mode draws the direction û_i: per_step or per_sample (see above).
            Allowed: one of per_step, per_sample.
        noise_space: where cosine mode draws û_i: free (the embedding space) or message (where
            a true message lives; see above). Allowed: one of free, message.
        norm: the substitute's norm: keep, own or batch_mean (see above).
            Allowed: one of keep, own, batch_mean.
        mix: weight α of the substitute in s_i ← (1−α)·g_i + α·s_i; larger, stronger.
            Allowed: [0, 1].
        prob: probability π that a sample's message is substituted; larger, stronger.
            Allowed: [0, 1].
        flsg_samples: flsg mode's number of Gaussian draws per sample. Allowed: integer >= 1.
        neighbours: neighbour mode's number of similar samples averaged.
            Allowed: integer >= 1; also below the batch size.
        threshold: flsg mode's cosine to the true message a draw must reach; lower, stronger.
            Allowed: [-1, 1].
        k: size of the candidate set C_i = {y_i} ∪ S_i of decoy mode; None takes
            min(3, classes). Allowed: integer >= 2, or None; also at most the number of
            classes, in decoy mode.
        epsilon: ε of the LA-shaped decoy target t̃_i (label anonymization's ε; used in decoy
            mode). Allowed: [0, 1); also below (k-1)/k, with k given or in decoy mode.
        teacher_epochs: training epochs of the teacher that ranks the candidate classes.
            Used in decoy mode with candidates teacher. Allowed: integer >= 1.
    """

    name: ClassVar[str] = "sg"
    summary: ClassVar[str] = "substitute gradients: decoy, cosine or FLSG's rejection rule"
    knob: ClassVar[str] = "rho"
    hyper: ClassVar[tuple] = ("rho", "mix", "prob", "threshold", "epsilon")

    mode: str = "cosine"
    decoy: str = "per_step"
    candidates: str = "teacher"
    rho: float = 0.5
    noise: str = "per_step"
    noise_space: str = "free"
    norm: str = "keep"
    mix: float = 1.0
    prob: float = 1.0
    flsg_samples: int = 16
    neighbours: int = 4
    threshold: float = 0.5
    k: int | None = None
    epsilon: float = 0.3
    teacher_epochs: int = 10

    def __post_init__(self):
        prefix = f"defense.{self.name}"
        one_of(f"{prefix}.mode", self.mode, MODES)
        one_of(f"{prefix}.decoy", self.decoy, ("per_step", "per_sample"))
        one_of(f"{prefix}.candidates", self.candidates, ("teacher", "random"))
        one_of(f"{prefix}.norm", self.norm, NORMS)
        one_of(f"{prefix}.noise", self.noise, ("per_step", "per_sample"))
        one_of(f"{prefix}.noise_space", self.noise_space, NOISE_SPACES)
        check_candidates(prefix, self.k, self.epsilon)
        require(-1 <= self.rho <= 1, f"{prefix}.rho", f"must be in [-1, 1], got {self.rho!r}")
        require(0 <= self.mix <= 1, f"{prefix}.mix", f"must be in [0, 1], got {self.mix!r}")
        require(0 <= self.prob <= 1, f"{prefix}.prob", f"must be in [0, 1], got {self.prob!r}")
        positive_int(f"{prefix}.flsg_samples", self.flsg_samples)
        positive_int(f"{prefix}.neighbours", self.neighbours)
        require(-1 <= self.threshold <= 1, f"{prefix}.threshold",
                f"must be in [-1, 1], got {self.threshold!r}")
        positive_int(f"{prefix}.teacher_epochs", self.teacher_epochs)

    @property
    def needs(self) -> str:
        # pullbacks through the top model, or other samples' embeddings; the other modes need
        # the batch's messages only (noise, FLSG's draws, the coins, the mean norm)
        whole = self.mode in ("decoy", "neighbour") or self.pulls_noise_back
        return WHOLE_BATCH if whole else BATCH_CUT

    @property
    def pulls_noise_back(self) -> bool:
        return self.mode == "cosine" and self.noise_space == "message"

    @property
    def draws(self) -> frozenset:
        once = self.mode == "decoy" or (self.mode == "cosine" and self.noise == "per_sample")
        return frozenset({"cut", "init"} if once else {"cut"})

    def check_data(self, num_classes: int) -> None:
        if self.mode == "decoy":
            candidate_count(f"defense.{self.name}", self.k, self.epsilon, num_classes)
        # with two classes a true message's space is the line of g itself: nothing there is
        # orthogonal to g, so no substitute at cosine ρ < 1 lives in it
        require(not (self.pulls_noise_back and num_classes < 3),
                f"defense.{self.name}.noise_space",
                f"'message' needs at least 3 classes (with {num_classes}, a true message's "
                f"space is the line of the message itself); allowed here: free")

    def init(self, key, data, config, hp, teacher_others=None):
        """The key splits into the teacher's, the random classes', the decoy choices' and the
        noise directions' streams. `teacher_others`: S_i from a teacher trained elsewhere
        (LADSG hands in label anonymization's, DESIGN §3), else this stage trains its own."""
        if "init" not in self.draws:
            return SubstituteState()
        teacher_key, random_key, decoy_key, noise_key = jax.random.split(key, 4)
        y, n = data.train_y, data.train_y.shape[0]
        if self.mode == "cosine":      # message-space directions are drawn over the classes
            width = (data.num_classes if self.pulls_noise_back
                     else config.embed_dim or data.num_classes)
            return SubstituteState(noise_directions=jax.random.normal(
                noise_key, (data.num_parties - 1, n, width)))
        k = candidate_count(f"defense.{self.name}", self.k, self.epsilon, data.num_classes)
        if self.candidates == "teacher" and teacher_others is not None:
            candidates = teacher_others
        elif self.candidates == "teacher":
            candidates = teacher_candidates(teacher_key, data, config, k,
                                            self.teacher_epochs).others
        else:
            candidates = random_other_classes(random_key, y, data.num_classes, k - 1)
        choice = (jax.random.randint(decoy_key, (n,), 0, k) if self.decoy == "per_sample"
                  else None)
        return SubstituteState(candidates=candidates, decoy_choice=choice)

    def decoy_targets(self, hp, state, labels, num_classes, index, key):
        """t̃: the LA-shaped target centred on a class drawn uniformly from C_i = {y_i} ∪ S_i."""
        candidates = jnp.concatenate([labels[:, None], state.candidates[index]], axis=1)
        k = candidates.shape[1]
        if self.decoy == "per_sample":
            choice = state.decoy_choice[index]
        else:
            choice = jax.random.randint(key, labels.shape, 0, k)
        centre = jnp.take_along_axis(candidates, choice[:, None], axis=1)[:, 0]
        members = jax.nn.one_hot(candidates, num_classes).sum(axis=1)     # indicator of C_i
        onehot = jax.nn.one_hot(centre, num_classes)
        epsilon = hp["epsilon"]
        return (1 - epsilon) * onehot + epsilon / (k - 1) * (members - onehot)

    def forward(self, hp, state, hs, ctx, top_fn):
        if ctx is None:
            return hs, None, None
        contexts = []
        for k in range(len(hs) - 1):
            party = {**ctx, "key": jax.random.fold_in(ctx["key"], k)}
            if state.noise_directions is not None:
                party["noise"] = state.noise_directions[k][ctx["index"]]
            if self.mode == "neighbour":
                party["embedding"] = jax.lax.stop_gradient(hs[k])
            if self.pulls_noise_back:
                if "noise" not in party:
                    noise_key, party["key"] = jax.random.split(party["key"])
                    party["noise"] = jax.random.normal(noise_key, ctx["targets"].shape)
                party["noise"] = message_space_noise(top_fn, hs, k, party["noise"])
            if self.mode == "decoy":
                decoy_key, party["key"] = jax.random.split(party["key"])
                targets = ctx["targets"]
                decoy = self.decoy_targets(hp, state, ctx["labels"], targets.shape[-1],
                                           ctx["index"], decoy_key)
                _, pullback = jax.vjp(lambda h: top_fn(hs[:k] + (h,) + hs[k + 1:]), hs[k])
                (delta,) = pullback((targets - decoy) / targets.shape[0])
                party["delta"] = jax.lax.stop_gradient(delta)
            contexts.append(party)
        return hs, tuple(contexts), None

    def cut(self, hp, g, ctx):
        mode_key, prob_key = jax.random.split(ctx["key"])
        g_norm = jnp.linalg.norm(g, axis=-1, keepdims=True)
        if self.mode == "decoy":
            s = g + ctx["delta"]
        elif self.mode == "cosine":
            noise = ctx["noise"] if "noise" in ctx else jax.random.normal(mode_key, g.shape)
            s = g_norm * cosine_substitute(g, hp["rho"], noise)
        elif self.mode == "neighbour":
            s = neighbour_substitute(g, ctx["embedding"], self.neighbours,
                                     f"defense.{self.name}.neighbours")
        else:
            s = flsg_substitute(mode_key, g, self.flsg_samples, hp["threshold"])
        s_norm = jnp.linalg.norm(s, axis=-1, keepdims=True) + 1e-12
        if self.norm == "keep":
            s = s / s_norm * g_norm
        elif self.norm == "batch_mean":
            s = s / s_norm * jnp.mean(g_norm)
        mix = hp["mix"]
        s = (1 - mix) * g + mix * s
        substitute = jax.random.bernoulli(prob_key, hp["prob"], (g.shape[0], 1))
        return jnp.where(substitute, s, g)


@dataclasses.dataclass(frozen=True)
class FLSG(SubstituteGradients):
    """FLSG (Fan et al., 2024): substitute gradients alone, by the rejection rule: of
    `flsg_samples` Gaussian draws the first whose cosine to the true message is at least
    `threshold`, else the closest, rescaled to the true message's norm; no label change.
    Lower `threshold`, stronger.

    Attributes:
        mode: how the substitute is made: flsg (FLSG's rule), decoy or cosine (see
            SubstituteGradients). Allowed: one of decoy, cosine, flsg.
    """

    name: ClassVar[str] = "flsg"
    summary: ClassVar[str] = "substitute gradients by the rejection rule, alone (Fan et al. 2024)"
    knob: ClassVar[str] = "threshold"
    mode: str = "flsg"
