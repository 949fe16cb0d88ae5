"""Defenses that act on the labels alone: randomized response and KDk's soft labels."""
from __future__ import annotations

import dataclasses
import math
from typing import ClassVar

import jax
import jax.numpy as jnp

from ladsg_jax.defenses.base import Defense
from ladsg_jax.defenses.ladsg import LADSG
from ladsg_jax.errors import require


def keep_probability(epsilon: float, num_classes: int) -> float:
    """Randomized response's chance of reporting the true label: e^ε / (e^ε + C − 1)."""
    return math.exp(epsilon) / (math.exp(epsilon) + num_classes - 1)


@dataclasses.dataclass(frozen=True)
class LabelDP(Defense):
    """Label DP by randomized response (Warner 1965; the RR baseline of Ghazi et al., NeurIPS
    2021): each training label is replaced once, before training, by a uniformly drawn other
    class with probability 1 − e^ε/(e^ε + C − 1), which makes the labels ε-label-DP; the model
    trains on the noisy labels (one-hot). Smaller `epsilon`, stronger."""

    name: ClassVar[str] = "label_dp"
    summary: ClassVar[str] = "labels by randomized response, ε-label-DP (Ghazi et al. 2021)"
    knob: ClassVar[str] = "epsilon"
    epsilon: float = 2.0

    def __post_init__(self):
        require(self.epsilon >= 0, "defense.label_dp.epsilon",
                f"must be non-negative, got {self.epsilon!r}")

    def setup(self, key, data, config):
        y, classes = data.train_y, data.num_classes
        flip_key, other_key = jax.random.split(key)
        flip = ~jax.random.bernoulli(flip_key, keep_probability(self.epsilon, classes), y.shape)
        shift = jax.random.randint(other_key, y.shape, 1, classes)      # another class
        return {"noisy_labels": jnp.where(flip, (y + shift) % classes, y)}

    def targets(self, labels, num_classes, state, index):
        return jax.nn.one_hot(state["noisy_labels"][index], num_classes, dtype=jnp.float32)


@dataclasses.dataclass(frozen=True)
class KDk(LADSG):
    """KDk (Arazzi et al., 2024): the active party trains on soft labels distilled from a
    teacher and spread over the k classes the teacher ranks highest, with no change to the
    messages. Here that is LADSG's label anonymization with the teacher's weighting, alone:
    t = (1−ε)·onehot(y) + ε·(teacher's probabilities over its top k−1 other classes).
    Departure: Arazzi et al. flatten the teacher's top-k probabilities; we keep the argmax on
    the true label (ε < (k−1)/k) so that the soft labels stay a training target. Larger
    `epsilon`, stronger."""

    name: ClassVar[str] = "kdk"
    summary: ClassVar[str] = "soft labels from a teacher, no message change (Arazzi et al. 2024)"
    knob: ClassVar[str] = "epsilon"
    stages: tuple = ("la",)
    weighting: str = "teacher"

    def __post_init__(self):
        super().__post_init__()
        require(self.stages == ("la",), "defense.kdk.stages",
                f"KDk is soft labels alone; allowed: la, got {','.join(self.stages)}")


@dataclasses.dataclass(frozen=True)
class FLSG(LADSG):
    """FLSG (Fan et al., 2024): substitute gradients alone, by the rejection rule: of
    `flsg_samples` Gaussian draws the first whose cosine to the true message is at least
    `threshold`, else the closest, rescaled to the true message's norm; no label change.
    Lower `threshold`, stronger."""

    name: ClassVar[str] = "flsg"
    summary: ClassVar[str] = "substitute gradients by the rejection rule, alone (Fan et al. 2024)"
    knob: ClassVar[str] = "threshold"
    stages: tuple = ("sg",)
    mode: str = "flsg"

    def __post_init__(self):
        super().__post_init__()
        require(self.stages == ("sg",) and self.mode == "flsg", "defense.flsg.stages",
                "FLSG is substitution alone with the rejection rule; allowed: stages sg, "
                "mode flsg")
