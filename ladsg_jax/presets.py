"""Per-data-set training settings: the starting point the CLI and the demo override.

breast_cancer follows Fu et al. (USENIX Security 2022): bottom MLP 20-20, SGD lr 1e-2, batch
16, 30 epochs. digits uses the setting DESIGN §3 measured: MLP bottoms, SGD lr 0.05 with
momentum 0.9, batch 32, 30 epochs.
"""
from __future__ import annotations

from ladsg_jax.config import TrainConfig

PRESETS = {
    "breast_cancer": dict(bottom="mlp", bottom_hidden=(20, 20), learning_rate=0.01,
                          momentum=0.9, batch_size=16, epochs=30),
    "digits": dict(bottom="mlp", bottom_hidden=(64,), learning_rate=0.05, momentum=0.9,
                   batch_size=32, epochs=30),
    "synthetic": dict(bottom="mlp", bottom_hidden=(32,), learning_rate=0.05, momentum=0.9,
                      batch_size=32, epochs=10),
}


# The attacker's known labels (DESIGN §7: 20 for breast_cancer, 40 for ten classes).
KNOWN_LABELS = {"breast_cancer": 20, "digits": 40}


def known_labels_for(dataset: str, num_classes: int) -> int:
    """DESIGN §7's known labels for `dataset`; 4 per class for data sets it does not list."""
    return KNOWN_LABELS.get(dataset, 4 * num_classes)


def preset_config(dataset: str, **overrides) -> TrainConfig:
    """The preset of `dataset` (DESIGN defaults where it has none) with `overrides` applied."""
    return TrainConfig(**{**PRESETS.get(dataset, {}), **overrides})
