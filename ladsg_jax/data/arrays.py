"""The in-memory form of a vertically partitioned data set, and the checks every one passes."""
from __future__ import annotations

import numpy as np
from flax import struct

from ladsg_jax.errors import ConfigError, require

# image: (N, H, W, C) split by pixel columns; tabular: (N, F) float features; tokens: (N, T)
# int32 ids in [0, vocab_size), 0 the padding id; both split by columns.
KINDS = ("image", "tabular", "tokens")


@struct.dataclass
class VFLData:
    """Per-party feature slices and labels for a train and a test split.

    `train_x[k]` is party k's slice of every training sample (party 0 is the passive party, the
    attacker's seat; the last party is the active party and holds the labels). The arrays are
    pytree leaves, so a `VFLData` is passed to jitted functions as an argument (never closed
    over: jit would embed it as a constant).
    """

    train_x: tuple
    train_y: np.ndarray
    test_x: tuple
    test_y: np.ndarray
    num_classes: int = struct.field(pytree_node=False)
    name: str = struct.field(pytree_node=False, default="custom")
    kind: str = struct.field(pytree_node=False, default="tabular")
    vocab_size: int = struct.field(pytree_node=False, default=0)   # token ids; 0: not tokens

    @property
    def num_parties(self) -> int:
        return len(self.train_x)

    @property
    def num_train(self) -> int:
        return int(self.train_y.shape[0])


def check_split(field: str, x: np.ndarray, y: np.ndarray, num_classes: int) -> None:
    """Rejects features that are not numbers or not finite, labels that are not one integer in
    [0, num_classes) per sample, and length mismatches."""
    require(y.ndim == 1, f"{field}.labels",
            f"must hold one class index per sample, shape (N,), got shape {y.shape}"
            + (" (use y.reshape(-1))" if y.ndim == 2 and y.shape[1] == 1 else ""))
    require(np.issubdtype(x.dtype, np.number) or x.dtype == np.bool_, f"{field}.features",
            f"must be numbers, got dtype {x.dtype}")
    require(x.shape[0] == y.shape[0], field,
            f"{x.shape[0]} feature rows but {y.shape[0]} labels; they must match")
    require(x.shape[0] > 0, field, "no samples")
    require(np.issubdtype(y.dtype, np.integer), f"{field}.labels",
            f"labels must be integers, got dtype {y.dtype}")
    if y.min() < 0 or y.max() >= num_classes:
        bad = y[(y < 0) | (y >= num_classes)][0]
        raise ConfigError(f"{field}.labels",
                          f"label {int(bad)} out of range; allowed: 0..{num_classes - 1}")
    finite = np.isfinite(x)
    if not finite.all():
        row = int(np.argwhere(~finite)[0][0])
        raise ConfigError(f"{field}.features",
                          f"NaN or infinite feature in sample {row}; features must be finite")


def check_tokens(field: str, x: np.ndarray, vocab_size: int) -> None:
    """Rejects token arrays that are not integers or hold ids outside [0, vocab_size)."""
    require(np.issubdtype(x.dtype, np.integer), field,
            f"token ids must be integers, got dtype {x.dtype}")
    if x.size and (x.min() < 0 or x.max() >= vocab_size):
        bad = x[(x < 0) | (x >= vocab_size)].flat[0]
        raise ConfigError(field, f"token id {int(bad)} out of range; allowed: 0..{vocab_size - 1}")
