"""Vertical partitioning: which columns of each sample each party holds (DESIGN §1).

Images (N, H, W, C) are split by pixel columns, party 0 taking the leftmost; tabular data
(N, F) by feature columns in order.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ladsg_jax.errors import ConfigError, require


def column_counts(width: int, num_parties: int, shares: Sequence[float] | None) -> list[int]:
    """How many columns each party gets.

    `shares=None` splits as evenly as possible. Integers that add up to `width` are taken as the
    column counts themselves; otherwise shares are proportions, rounded by largest remainder.
    Every party must get at least one column.
    """
    require(isinstance(num_parties, int) and num_parties >= 1, "num_parties",
            f"must be a positive integer, got {num_parties!r}")
    require(num_parties <= width, "num_parties",
            f"{num_parties} parties but only {width} columns to split; allowed: 1..{width}")
    if shares is None:
        shares = [1.0] * num_parties
    shares = list(shares)
    require(len(shares) == num_parties, "shares",
            f"{len(shares)} shares for {num_parties} parties; give one per party")
    require(all(np.isfinite(s) and s > 0 for s in shares), "shares",
            f"every share must be positive, got {shares}")
    if all(float(s).is_integer() for s in shares) and sum(shares) == width:
        return [int(s) for s in shares]
    exact = np.asarray(shares, dtype=np.float64) / sum(shares) * width
    counts = np.floor(exact).astype(int)
    order = np.argsort(-(exact - counts), kind="stable")
    counts[order[: width - counts.sum()]] += 1
    if (counts == 0).any():
        raise ConfigError("shares", f"shares {shares} leave a party no column of {width}; "
                                    "each party needs at least one")
    return counts.tolist()


def split_columns(x: np.ndarray, counts: Sequence[int], kind: str) -> tuple[np.ndarray, ...]:
    """Cuts `x` into consecutive column blocks of the given sizes (axis 2 for images, else 1)."""
    axis = 2 if kind == "image" else 1
    edges = np.cumsum(counts)[:-1]
    return tuple(np.ascontiguousarray(part) for part in np.split(x, edges, axis=axis))
