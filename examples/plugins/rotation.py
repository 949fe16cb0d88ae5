"""An example plugin: a defense `rotation` and an attack `message_lr`, registered for every
`ladsg-jax` command with `--plugin examples/plugins/rotation.py` (README: "Write your own
defense or attack").

`rotation` sends back, for each true message g (B, d), g·Q with Q a fixed random orthogonal
d×d matrix drawn from its `seed`: Q = exp(angle·K/‖K‖₂), K a random skew-symmetric matrix,
turns every invariant plane by at most `angle` radians, so for `angle` < π/2 each message
stays a descent direction (g·Qgᵀ ≥ cos(angle)·‖g‖²) and training still converges; a rotation
by a uniformly random orthogonal matrix does not (with no top model the logits diverge).
Both knobs are traced, so `ladsg-jax sweep --grid seed=0,1,2` is one compiled program.
A rotation keeps every message's norm and the angles
between messages, so an attack that learns from known labels undoes it: `message_lr` fits a
logistic regression on the received messages of the attacker's known-label samples (each
sample's message directions averaged over the epochs) and labels every other sample it saw.
"""
from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from ladsg_jax.attacks.base import Attack
from ladsg_jax.attacks.predictions import Predictions
from ladsg_jax.attacks.view import mean_messages_per_sample
from ladsg_jax.defenses import Defense


@dataclasses.dataclass(frozen=True)
class Rotation(Defense):
    """Each message rotated by one fixed random orthogonal matrix (drawn from `seed`), by at
    most `angle` radians in each of its planes."""

    name: ClassVar[str] = "rotation"
    summary: ClassVar[str] = "example plugin: each message times a fixed random rotation"
    knob: ClassVar[str] = "angle"
    hyper: ClassVar[tuple] = ("seed", "angle")   # read from hp in the hooks: traced, grids vmap

    seed: int = 0
    angle: float = 1.0

    def cut(self, hp, g, ctx):
        d = g.shape[-1]
        a = jax.random.normal(jax.random.key(hp["seed"].astype(jnp.uint32)), (d, d), g.dtype)
        skew = (a - a.T) / 2
        q = jax.scipy.linalg.expm(hp["angle"] * skew / jnp.linalg.norm(skew, 2))
        return g @ q


def run_message_lr(context, view, key):
    """The labels a logistic regression, fit on the known-label samples' averaged message
    directions, gives every training sample party 0 received messages for (the suite scores
    them with top-1)."""
    features, seen = mean_messages_per_sample(view.wire, context.num_train, unit=True)
    features, seen = np.nan_to_num(np.asarray(features)), np.asarray(seen)  # a diverged run
    features = StandardScaler().fit(features[seen]).transform(features)
    known = np.asarray(view.known_idx)
    fit = LogisticRegression(max_iter=2000).fit(features[known], np.asarray(view.known_y))
    rows = np.flatnonzero(seen)
    return {"score": Predictions(index=rows, labels=fit.predict(features[rows]))}


MESSAGE_LR = Attack(
    "message_lr", "example plugin: logistic regression on the known-label samples' messages, "
                  "averaged over the epochs", run_message_lr, "top1",
    reads=("wire_all", "known_labels"), column="msg-lr", label="message LR")

DEFENSES = [Rotation]
ATTACKS = [MESSAGE_LR]
