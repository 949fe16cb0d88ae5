"""Readers of the data sets that ship inside scikit-learn, in their original file formats.

- `breast_cancer`: Wisconsin Diagnostic Breast Cancer (Street, Wolberg & Mangasarian 1993), the
  CSV whose header line is ``n_samples,n_features,name_0,name_1`` and whose rows are the 30
  features then the label.
- `digits`: UCI optical recognition of handwritten digits, 8×8 images with values 0..16, the
  gzipped CSV whose rows are 64 pixel values then the label.

Both ship unsplit: the readers return a stratified 80/20 split (seed 0).
"""
from __future__ import annotations

import gzip

import numpy as np

from ladsg_jax.data.splits import split_arrays
from ladsg_jax.errors import ConfigError


def read_breast_cancer_csv(path: str) -> tuple[np.ndarray, np.ndarray]:
    """Reads scikit-learn's breast_cancer.csv: a header `n,f,...` then rows of f features, label."""
    with open(path) as f:
        header = f.readline().strip().split(",")
        try:
            n, f_count = int(header[0]), int(header[1])
        except (IndexError, ValueError):
            raise ConfigError("source", f"{path}: first line must be 'n_samples,n_features,...', "
                                        f"got {','.join(header)!r}") from None
        rows = np.loadtxt(f, delimiter=",", ndmin=2)
    if rows.shape != (n, f_count + 1):
        raise ConfigError("source", f"{path}: header promises {n} rows of {f_count + 1} values, "
                                    f"file has {rows.shape[0]} rows of {rows.shape[1]}")
    return rows[:, :-1].astype(np.float32), rows[:, -1].astype(np.int64)


def read_pixel_rows(path: str, pixels: int, name: str) -> np.ndarray:
    """The rows of a headerless CSV (gzipped or not) of `pixels` values then the label each,
    as floats; a file that is not such a CSV is a `ConfigError` naming it and `name`'s shape."""
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rt") as f:
            rows = np.loadtxt(f, delimiter=",", ndmin=2)
    except (OSError, ValueError) as err:
        raise ConfigError("source", f"{path}: not a CSV of numbers ({err})") from None
    if rows.shape[1] != pixels + 1:
        raise ConfigError("source", f"{path}: {name} rows need {pixels} pixels and a label, "
                                    f"got {rows.shape[1]} values")
    return rows


def read_digits_csv(path: str) -> tuple[np.ndarray, np.ndarray]:
    """Reads scikit-learn's digits.csv.gz: rows of 64 pixel values (0..16) then the label."""
    rows = read_pixel_rows(path, 64, "digits")
    return rows[:, :-1].reshape(-1, 8, 8, 1).astype(np.float32), rows[:, -1].astype(np.int64)


def read_breast_cancer(path: str) -> dict:
    """breast_cancer.csv split 80/20; a file with other than 30 features is refused."""
    x, y = read_breast_cancer_csv(path)
    if x.shape[1] != 30:
        raise ConfigError("source", f"{path}: breast_cancer has 30 features, file has "
                                    f"{x.shape[1]}")
    return split_arrays(x, y)


def read_digits(path: str) -> dict:
    """digits.csv.gz split 80/20."""
    return split_arrays(*read_digits_csv(path))
