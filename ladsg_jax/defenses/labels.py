"""Label DP by randomized response: a defense that acts on the labels alone."""
from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax
import jax.numpy as jnp
from flax import struct

from ladsg_jax.defenses.base import Defense
from ladsg_jax.errors import require


def keep_probability(epsilon, num_classes: int):
    """Randomized response's chance of reporting the true label: e^ε / (e^ε + C − 1). ε is
    capped at 80 (where the chance is 1 in float32), since e^ε overflows float32 near 89."""
    e = jnp.exp(jnp.minimum(epsilon, 80.0))
    return e / (e + num_classes - 1)


@struct.dataclass
class NoisyLabels:
    """The training labels after randomized response, drawn once per run."""

    labels: jax.Array


@dataclasses.dataclass(frozen=True)
class LabelDP(Defense):
    """Label DP by randomized response (Warner 1965; the RR baseline of Ghazi et al., NeurIPS
    2021): each training label is replaced once, before training, by a uniformly drawn other
    class with probability 1 − e^ε/(e^ε + C − 1), which makes the labels ε-label-DP; the model
    trains on the noisy labels (one-hot).

    Attributes:
        epsilon: the labels' label-DP ε; smaller, stronger. Allowed: >= 0.
    """

    name: ClassVar[str] = "label_dp"
    summary: ClassVar[str] = "labels by randomized response, ε-label-DP (Ghazi et al. 2021)"
    knob: ClassVar[str] = "epsilon"
    hyper: ClassVar[tuple] = ("epsilon",)
    draws: ClassVar[frozenset] = frozenset({"init"})
    epsilon: float = 2.0

    def __post_init__(self):
        require(self.epsilon >= 0, "defense.label_dp.epsilon",
                f"must be non-negative, got {self.epsilon!r}")

    def init(self, key, data, config, hp):
        y, classes = data.train_y, data.num_classes
        flip_key, other_key = jax.random.split(key)
        flip = ~jax.random.bernoulli(flip_key, keep_probability(hp["epsilon"], classes), y.shape)
        shift = jax.random.randint(other_key, y.shape, 1, classes)      # another class
        return NoisyLabels(labels=jnp.where(flip, (y + shift) % classes, y))

    def targets(self, hp, state, targets, labels, index):
        return jax.nn.one_hot(state.labels[index], targets.shape[-1], dtype=targets.dtype)
