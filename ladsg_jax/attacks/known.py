"""The few labels an attacker knows (Fu et al. 2022: evenly per class)."""
from __future__ import annotations

import numpy as np

from ladsg_jax.errors import ConfigError


def select_known_labels(labels, num_known: int, num_classes: int, seed: int = 0) -> np.ndarray:
    """Indices of `num_known` training samples, spread as evenly as possible over the classes.

    Raises `ConfigError` when there are fewer known labels than classes, or a class has fewer
    samples than its share.
    """
    labels = np.asarray(labels)
    if not isinstance(num_known, (int, np.integer)) or num_known < num_classes:
        raise ConfigError("known_labels", f"{num_known} known labels for {num_classes} classes; "
                                          f"need at least one per class (>= {num_classes})")
    rng = np.random.default_rng(seed)
    per_class = np.full(num_classes, num_known // num_classes)
    per_class[rng.permutation(num_classes)[: num_known % num_classes]] += 1
    chosen = []
    for c in range(num_classes):
        members = np.flatnonzero(labels == c)
        if members.size < per_class[c]:
            raise ConfigError("known_labels", f"class {c} has {members.size} training samples, "
                                              f"fewer than the {per_class[c]} known labels "
                                              "asked of it")
        chosen.append(rng.choice(members, per_class[c], replace=False))
    return np.sort(np.concatenate(chosen))
