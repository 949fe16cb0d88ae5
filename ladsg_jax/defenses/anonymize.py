"""LADSG's stage 1, label anonymization (arXiv 2506.06742; DESIGN §3), and KDk (Arazzi et al.
2024), which is the same mechanism with the teacher's weighting."""
from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax
import jax.numpy as jnp
from flax import struct

from ladsg_jax.defenses.base import Defense
from ladsg_jax.defenses.teacher import train_teacher
from ladsg_jax.errors import one_of, positive_int, require


@struct.dataclass
class TeacherCandidates:
    """Per training sample: the k−1 classes the teacher ranks highest other than the label
    (`others`, (n, k−1), in the teacher's order) and its probabilities renormalized over them."""

    others: jax.Array
    weights: jax.Array


def check_epsilon(field: str, epsilon: float, k: int) -> None:
    """ε < (k−1)/k, so that the true label stays the argmax of the anonymized target."""
    bound = (k - 1) / k
    require(0 <= epsilon < bound, field,
            f"must be in [0, (k-1)/k) = [0, {bound:.4g}) for k={k} so the label stays the "
            f"argmax; got {epsilon!r}")


def check_candidates(prefix: str, k: int | None, epsilon: float) -> None:
    """The checks of k and ε that need no data (`candidate_count` does the rest)."""
    if k is not None:
        require(isinstance(k, int) and k >= 2, f"{prefix}.k",
                f"must be an integer of at least 2, got {k!r}")
        check_epsilon(f"{prefix}.epsilon", epsilon, k)
    else:       # k = min(3, classes) is known with the data, where ε is checked against it
        require(0 <= epsilon < 1, f"{prefix}.epsilon",
                f"must be in [0, (k-1)/k); got {epsilon!r}")


def candidate_count(prefix: str, k: int | None, epsilon: float, num_classes: int) -> int:
    """k, the candidate set's size: the field, or min(3, num_classes) when it is None."""
    k = k if k is not None else min(3, num_classes)
    require(k <= num_classes, f"{prefix}.k",
            f"{k} candidates but the data set has {num_classes} classes; allowed: "
            f"2..{num_classes}")
    check_epsilon(f"{prefix}.epsilon", epsilon, k)
    return k


def teacher_candidates(key, data, config, k: int, teacher_epochs: int) -> TeacherCandidates:
    """The teacher (trained on the active party's slice, from `key`) ranks the classes; its top
    k−1 other than each label."""
    y, num_classes = data.train_y, data.num_classes
    logits = train_teacher(key, data.train_x[-1], y, num_classes, config, teacher_epochs)
    masked = jnp.where(jax.nn.one_hot(y, num_classes, dtype=bool), -jnp.inf, logits)
    top_logits, others = jax.lax.top_k(masked, k - 1)
    return TeacherCandidates(others=others, weights=jax.nn.softmax(top_logits, axis=-1))


@dataclasses.dataclass(frozen=True)
class LabelAnonymization(Defense):
    """Label anonymization: a teacher trained on the active party's own slice ranks the
    classes; S_i are the k−1 it ranks highest other than y_i, and the training target is
    t_i = (1−ε)·t⁰_i + ε·Σ_{j∈S_i} w_ij·onehot(j), t⁰ the incoming (one-hot) target and
    w_ij = 1/(k−1) (`weighting="uniform"`) or the teacher's probabilities renormalized over S_i
    (`"teacher"`).

    Attributes:
        k: size of the candidate set: the label and the k−1 classes S_i the teacher ranks
            highest. None takes min(3, classes): 3 as DESIGN §3's default, 2 for binary tasks.
            Allowed: integer >= 2, or None; also at most the number of classes.
        epsilon: share ε of the target moved from the label to S_i; larger, stronger.
            Below (k−1)/k the label stays the target's argmax. Allowed: [0, 1); also below
            (k-1)/k.
        weighting: how ε is split over S_i: uniform (1/(k−1) each) or teacher (see above).
            Allowed: one of uniform, teacher.
        teacher_epochs: training epochs of the teacher, on the active party's own slice.
            Allowed: integer >= 1.
    """

    name: ClassVar[str] = "la"
    summary: ClassVar[str] = "label anonymization: soft targets over the teacher's top classes"
    knob: ClassVar[str] = "epsilon"
    hyper: ClassVar[tuple] = ("epsilon",)
    draws: ClassVar[frozenset] = frozenset({"init"})

    k: int | None = None
    epsilon: float = 0.3
    weighting: str = "uniform"
    teacher_epochs: int = 10

    def __post_init__(self):
        prefix = f"defense.{self.name}"
        check_candidates(prefix, self.k, self.epsilon)
        one_of(f"{prefix}.weighting", self.weighting, ("uniform", "teacher"))
        positive_int(f"{prefix}.teacher_epochs", self.teacher_epochs)

    def check_data(self, num_classes: int) -> None:
        candidate_count(f"defense.{self.name}", self.k, self.epsilon, num_classes)

    def init(self, key, data, config, hp):
        k = candidate_count(f"defense.{self.name}", self.k, self.epsilon, data.num_classes)
        return teacher_candidates(key, data, config, k, self.teacher_epochs)

    def targets(self, hp, state, targets, labels, index):
        others = state.others[index]
        if self.weighting == "teacher":
            weights = state.weights[index]
        else:
            weights = jnp.full(others.shape, 1.0 / others.shape[-1])
        spread = jnp.einsum("bj,bjc->bc", weights, jax.nn.one_hot(others, targets.shape[-1]))
        return (1 - hp["epsilon"]) * targets + hp["epsilon"] * spread


@dataclasses.dataclass(frozen=True)
class KDk(LabelAnonymization):
    """KDk (Arazzi et al., 2024): soft labels distilled from a teacher and spread over the k
    classes it ranks highest, with no change to the messages: label anonymization with the
    teacher's weighting, t = (1−ε)·onehot(y) + ε·(teacher's probabilities over its top k−1
    other classes). Departure: Arazzi et al. flatten the teacher's top-k probabilities; we keep
    the argmax on the true label (ε < (k−1)/k) so that the soft labels stay a training target.
    Larger `epsilon`, stronger.

    Attributes:
        weighting: how ε is split over S_i: teacher, KDk's distillation, or uniform (1/(k−1)
            each). Allowed: one of uniform, teacher.
    """

    name: ClassVar[str] = "kdk"
    summary: ClassVar[str] = "soft labels from a teacher, no message change (Arazzi et al. 2024)"
    weighting: str = "teacher"
