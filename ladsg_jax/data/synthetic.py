"""Gaussian classes with a separability knob: a data set of any size made in memory for tests."""
from __future__ import annotations

import numpy as np

from ladsg_jax.errors import require


def make_synthetic(num_classes: int = 2, num_features: int = 8, separation: float = 2.0,
                   num_train: int = 512, num_test: int = 256, seed: int = 0) -> dict:
    """Samples x = μ_y + N(0, I), the class means μ_c at distance `separation` from the origin.

    Larger `separation` makes the classes easier; every feature carries some class signal, so
    each party's slice is informative on its own. Deterministic in `seed`.
    """
    require(int(num_classes) >= 2, "num_classes", f"must be at least 2, got {num_classes}")
    require(int(num_features) >= 1, "num_features", f"must be positive, got {num_features}")
    require(separation >= 0, "separation", f"must be non-negative, got {separation}")
    require(int(num_train) >= num_classes and int(num_test) >= 1, "num_train",
            f"need at least one training sample per class, got {num_train}")
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
