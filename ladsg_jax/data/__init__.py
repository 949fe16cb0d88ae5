"""Data sets for VFL: load one by name, split vertically among the parties (DESIGN §1, §7).

    data = ladsg_jax.data.load("digits", num_parties=2)
    data.train_x[0]   # party 0's (passive) left pixel columns, (N, 8, 4, 1)
"""
from __future__ import annotations

import os
from typing import Sequence

import numpy as np

from ladsg_jax.data.arrays import VFLData, check_split
from ladsg_jax.data.partition import column_counts, split_columns
from ladsg_jax.data.synthetic import make_synthetic
from ladsg_jax.errors import ConfigError, require, unknown

# name -> (kind, options accepted by `load`, description)
DATASETS = {
    "breast_cancer": ("tabular", ("source",), "Wisconsin breast cancer, 30 features, 2 classes "
                                              "(ships with scikit-learn)"),
    "digits": ("image", ("source",), "UCI digits, 8x8 images, 10 classes "
                                     "(ships with scikit-learn)"),
    "synthetic": ("tabular", ("num_classes", "num_features", "separation", "num_train",
                              "num_test", "seed"),
                  "Gaussian classes made in memory, any size"),
}


def default_data_dir() -> str:
    """Where prepared data sets live: $LADSG_DATA_DIR, else ~/.cache/ladsg_jax/datasets."""
    return os.environ.get("LADSG_DATA_DIR",
                          os.path.join(os.path.expanduser("~"), ".cache", "ladsg_jax", "datasets"))


def read_raw(name: str, data_dir: str | None = None, **options) -> dict:
    """The unsplit arrays of a data set: train/test features and labels, classes, kind."""
    if name not in DATASETS:
        raise unknown("dataset", name, DATASETS)
    kind, allowed, _ = DATASETS[name]
    for key in options:
        if key not in allowed:
            raise unknown(f"dataset option for {name}", key, allowed)
    if name == "synthetic":
        return make_synthetic(**options)
    from ladsg_jax.data.builders import read_prepared

    raw = read_prepared(name, data_dir or default_data_dir(), source=options.get("source"))
    raw["kind"] = kind
    return raw


def normalize(raw: dict, name: str) -> dict:
    """Digits pixels scaled to [0, 1]; tabular features standardized by the training split."""
    train_x, test_x = raw["train_x"], raw["test_x"]
    if name == "digits":
        train_x, test_x = train_x / 16.0, test_x / 16.0
    elif raw["kind"] == "tabular":
        mean, std = train_x.mean(axis=0), train_x.std(axis=0)
        std = np.where(std > 0, std, 1.0)
        train_x, test_x = (train_x - mean) / std, (test_x - mean) / std
    return {**raw, "train_x": train_x.astype(np.float32), "test_x": test_x.astype(np.float32)}


def from_arrays(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray,
                test_y: np.ndarray, num_classes: int, num_parties: int = 2,
                shares: Sequence[float] | None = None, kind: str = "tabular",
                name: str = "custom") -> VFLData:
    """Splits whole-sample arrays among `num_parties` parties after checking them.

    `kind="image"` takes (N, H, W, C) arrays split by pixel columns; `"tabular"` takes (N, F)
    split by feature columns. Raises `ConfigError` for NaN/infinite features, labels outside
    [0, num_classes), mismatched lengths or a split that leaves a party no column.
    """
    require(kind in ("image", "tabular"), "kind", f"unknown value {kind!r}; allowed: image, tabular")
    require(isinstance(num_classes, int) and num_classes >= 2, "num_classes",
            f"must be an integer of at least 2, got {num_classes!r}")
    train_x, test_x = np.asarray(train_x), np.asarray(test_x)
    train_y, test_y = np.asarray(train_y), np.asarray(test_y)
    ndim = 4 if kind == "image" else 2
    for field, x in (("train", train_x), ("test", test_x)):
        require(x.ndim == ndim, f"{field}.features",
                f"{kind} data needs {ndim}-d arrays, got shape {x.shape}")
    require(train_x.shape[1:] == test_x.shape[1:], "test.features",
            f"test sample shape {test_x.shape[1:]} differs from train {train_x.shape[1:]}")
    check_split("train", train_x, train_y, num_classes)
    check_split("test", test_x, test_y, num_classes)
    width = train_x.shape[2] if kind == "image" else train_x.shape[1]
    counts = column_counts(width, num_parties, shares)
    return VFLData(train_x=split_columns(train_x.astype(np.float32), counts, kind),
                   train_y=train_y.astype(np.int32),
                   test_x=split_columns(test_x.astype(np.float32), counts, kind),
                   test_y=test_y.astype(np.int32),
                   num_classes=num_classes, name=name, kind=kind)


def load(name: str, num_parties: int = 2, shares: Sequence[float] | None = None,
         data_dir: str | None = None, **options) -> VFLData:
    """Loads data set `name`, normalized, split among `num_parties` parties.

    `shares` sets each party's part of the columns (DESIGN §1); `options` are the data set's own
    (`source` for a file in the original format, the knobs of `synthetic`).
    """
    raw = normalize(read_raw(name, data_dir, **options), name)
    return from_arrays(raw["train_x"], raw["train_y"], raw["test_x"], raw["test_y"],
                       num_classes=raw["num_classes"], num_parties=num_parties, shares=shares,
                       kind=raw["kind"], name=name)


__all__ = ["DATASETS", "VFLData", "ConfigError", "load", "from_arrays", "read_raw",
           "default_data_dir"]
