"""Gaussian classes with a separability knob: a data set of any size made in memory for tests."""
from __future__ import annotations

import math
import numbers

import numpy as np

from ladsg_jax.errors import is_integer, require


def make_synthetic(num_classes: int = 2, num_features: int = 8, separation: float = 2.0,
                   num_train: int = 512, num_test: int = 256, seed: int = 0) -> dict:
    """Samples x = μ_y + N(0, I), the class means μ_c at distance `separation` from the origin.

    Larger `separation` makes the classes easier; every feature carries some class signal, so
    each party's slice is informative on its own. Deterministic in `seed`.
    """
    for field, value, low in (("num_classes", num_classes, 2), ("num_features", num_features, 1),
                              ("num_train", num_train, 1), ("num_test", num_test, 1),
                              ("seed", seed, 0)):
        require(is_integer(value) and value >= low, f"synthetic.{field}",
                f"must be an integer ≥ {low}, got {value!r}")
    require(isinstance(separation, numbers.Real) and not isinstance(separation, bool)
            and math.isfinite(separation) and separation >= 0, "synthetic.separation",
            f"must be a finite number ≥ 0, got {separation!r}")
    require(num_train >= num_classes, "synthetic.num_train",
            f"need at least one training sample per class ({num_classes}), got {num_train}")
    num_classes, num_features = int(num_classes), int(num_features)
    rng = np.random.default_rng(seed)
    means = rng.normal(size=(num_classes, num_features))
    means *= separation / np.linalg.norm(means, axis=1, keepdims=True)

    def draw(n):
        y = np.arange(n) % num_classes
        rng.shuffle(y)
        x = means[y] + rng.normal(size=(n, num_features))
        return x.astype(np.float32), y.astype(np.int32)

    train_x, train_y = draw(int(num_train))
    test_x, test_y = draw(int(num_test))
    return dict(train_x=train_x, train_y=train_y, test_x=test_x, test_y=test_y,
                num_classes=int(num_classes), kind="tabular")
