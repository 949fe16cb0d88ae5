"""Fixed train/test splits for the data sets that ship unsplit: 80/20, seed 0."""
from __future__ import annotations

import numpy as np

from ladsg_jax.errors import require

TEST_FRACTION = 0.2
SPLIT_SEED = 0


def stratified_split(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Train and test indices: a stratified 80/20 split with a fixed seed (for data that ship
    unsplit)."""
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(y))
    classes, counts = np.unique(y, return_counts=True)
    stratify = y if counts.min() >= 2 else None
    train, test = train_test_split(idx, test_size=TEST_FRACTION, random_state=SPLIT_SEED,
                                   stratify=stratify)
    return np.sort(train), np.sort(test)


def split_arrays(x: np.ndarray, y: np.ndarray) -> dict:
    """The stratified split of whole arrays, as the readers return them."""
    train, test = stratified_split(y)
    return {"train_x": x[train], "train_y": y[train], "test_x": x[test], "test_y": y[test]}


def group_split(groups, field: str) -> tuple[list, list]:
    """Train and test groups (e.g. patients): 80/20 of the sorted groups, shuffled with a fixed
    seed, so that no group has samples on both sides. Needs at least two groups."""
    groups = sorted(groups)
    require(len(groups) >= 2, field,
            f"{len(groups)} group(s) found; a split by group needs at least 2")
    order = np.random.default_rng(SPLIT_SEED).permutation(len(groups))
    num_test = min(max(1, int(round(TEST_FRACTION * len(groups)))), len(groups) - 1)
    test = sorted(groups[i] for i in order[:num_test])
    train = sorted(groups[i] for i in order[num_test:])
    return train, test
