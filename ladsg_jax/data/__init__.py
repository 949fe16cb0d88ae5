"""Data sets for VFL: load one by name, split vertically among the parties (DESIGN §1, §7).

    data = ladsg_jax.data.load("digits", num_parties=2)
    data.train_x[0]   # party 0's (passive) left pixel columns, (N, 8, 4, 1)
    ladsg_jax.data.prepare("cifar10", manual_dir="~/downloads")   # once: array_record files
    ladsg_jax.data.load("criteo", max_rows=20000).train_x[1]      # party 1's 19 hashed fields

The paper's data sets are read from their original distribution files (`catalog.py` names each
file and where to get it); the public ones are downloaded when missing from `manual_dir`.
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Sequence

import numpy as np

from ladsg_jax.data.catalog import SPECS
from ladsg_jax.data.partition import column_counts, split_columns
from ladsg_jax.data.scaling import normalize
from ladsg_jax.data.synthetic import make_synthetic
from ladsg_jax.errors import ConfigError, is_integer, one_of, require, unknown
from ladsg_jax.lazy import lazy_exports

if TYPE_CHECKING:
    from ladsg_jax.data.arrays import VFLData

# `VFLData` is a flax.struct dataclass: loaded on first use, so that the names load without JAX
__getattr__, __dir__ = lazy_exports(__name__, {"arrays": ("KINDS", "VFLData")})

# name -> (kind, options accepted by `load`, description)
DATASETS = {
    **{name: (spec.kind, spec.option_names, spec.description) for name, spec in SPECS.items()},
    "synthetic": ("tabular", ("num_classes", "num_features", "separation", "num_train",
                              "num_test", "seed"),
                  "Gaussian classes made in memory, any size"),
}


def default_data_dir() -> str:
    """Where prepared data sets live: $LADSG_DATA_DIR, else ~/.cache/ladsg_jax/datasets."""
    return os.environ.get("LADSG_DATA_DIR",
                          os.path.join(os.path.expanduser("~"), ".cache", "ladsg_jax", "datasets"))


def _check_options(name: str, options: dict) -> None:
    if name not in DATASETS:
        raise unknown("dataset", name, DATASETS)
    allowed = DATASETS[name][1]
    for key in options:
        if key not in allowed:
            raise unknown(f"dataset option for {name}", key, allowed)


def read_raw(name: str, data_dir: str | None = None, **options) -> dict:
    """The unnormalized arrays of a data set: train/test features (as stored: uint8 images,
    int32 token ids, float32 otherwise) and labels, num_classes, vocab_size, kind."""
    _check_options(name, options)
    if name == "synthetic":
        return {**make_synthetic(**options), "vocab_size": 0}
    from ladsg_jax.data.builders import read_prepared

    raw = read_prepared(name, data_dir or default_data_dir(), **options)
    raw["kind"] = DATASETS[name][0]
    return raw


def prepare(name: str, data_dir: str | None = None, manual_dir: str | None = None,
            **options) -> dict:
    """Prepares data set `name` under `data_dir` once, from its original file in `manual_dir`
    (or downloaded, for the public ones); returns the info dict written next to it
    (`ladsg_info.json`: name, source, digest, num_train, num_test, num_classes, vocab_size,
    options, path). Content options (e.g. criteo's `max_rows`) give a copy of their own."""
    if manual_dir is not None:
        options["manual_dir"] = manual_dir
    _check_options(name, options)
    if name == "synthetic":
        raise ConfigError("dataset", "synthetic is made in memory; nothing to prepare")
    from ladsg_jax.data.builders import prepare_copy

    return prepare_copy(name, data_dir or default_data_dir(), **options)


def prepared(data_dir: str | None = None) -> list[dict]:
    """The info dicts of every data set prepared under `data_dir`, by name."""
    from ladsg_jax.data.builders import prepared_copies

    return prepared_copies(data_dir or default_data_dir())


def from_arrays(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray,
                test_y: np.ndarray, num_classes: int, num_parties: int = 2,
                shares: Sequence[float] | None = None, kind: str = "tabular",
                name: str = "custom", vocab_size: int = 0) -> VFLData:
    """Splits whole-sample arrays among `num_parties` parties after checking them.

    `kind="image"` takes (N, H, W, C) arrays split by pixel columns; `"tabular"` takes (N, F)
    split by feature columns; `"tokens"` takes (N, T) integer ids in [0, vocab_size), kept as
    int32 and split by columns like tabular data. Raises `ConfigError` for NaN/infinite
    features, ids out of range, labels outside [0, num_classes), mismatched lengths or a split
    that leaves a party no column.
    """
    from ladsg_jax.data.arrays import KINDS, VFLData, check_split, check_tokens

    one_of("kind", kind, KINDS)
    require(is_integer(num_classes) and num_classes >= 2, "num_classes",
            f"must be an integer of at least 2, got {num_classes!r}")
    num_classes, vocab_size = int(num_classes), (int(vocab_size) if is_integer(vocab_size)
                                                 else vocab_size)
    if kind == "tokens":
        require(is_integer(vocab_size) and vocab_size >= 2, "vocab_size",
                f"token data need the number of ids (at least 2), got {vocab_size!r}")
    else:
        require(vocab_size == 0, "vocab_size", f"only token data have one; {kind} data: 0")
    train_x, test_x = np.asarray(train_x), np.asarray(test_x)
    train_y, test_y = np.asarray(train_y), np.asarray(test_y)
    ndim = 4 if kind == "image" else 2
    for field, x in (("train", train_x), ("test", test_x)):
        require(x.ndim == ndim, f"{field}.features",
                f"{kind} data needs {ndim}-d arrays, got shape {x.shape}")
        if kind == "tokens":
            check_tokens(f"{field}.features", x, vocab_size)
    require(train_x.shape[1:] == test_x.shape[1:], "test.features",
            f"test sample shape {test_x.shape[1:]} differs from train {train_x.shape[1:]}")
    check_split("train", train_x, train_y, num_classes)
    check_split("test", test_x, test_y, num_classes)
    width = train_x.shape[2] if kind == "image" else train_x.shape[1]
    counts = column_counts(width, num_parties, shares)
    dtype = np.int32 if kind == "tokens" else np.float32
    return VFLData(train_x=split_columns(train_x.astype(dtype, copy=False), counts, kind),
                   train_y=train_y.astype(np.int32),
                   test_x=split_columns(test_x.astype(dtype, copy=False), counts, kind),
                   test_y=test_y.astype(np.int32),
                   num_classes=num_classes, name=name, kind=kind, vocab_size=vocab_size)


def load(name: str, num_parties: int = 2, shares: Sequence[float] | None = None,
         data_dir: str | None = None, **options) -> VFLData:
    """Loads data set `name`, normalized, split among `num_parties` parties.

    `shares` sets each party's part of the columns (DESIGN §1); `options` are the data set's own
    (`DATASETS[name][1]`: `source` for scikit-learn's files, `manual_dir` for the folder holding
    an original file, `max_rows`/`max_train`/`max_test` for a subset, the knobs of `synthetic`).
    """
    raw = normalize(read_raw(name, data_dir, **options), name)
    return from_arrays(raw["train_x"], raw["train_y"], raw["test_x"], raw["test_y"],
                       num_classes=raw["num_classes"], num_parties=num_parties, shares=shares,
                       kind=raw["kind"], name=name, vocab_size=raw["vocab_size"])


__all__ = ["DATASETS", "VFLData", "ConfigError", "load", "from_arrays", "read_raw",
           "normalize", "prepare", "prepared", "default_data_dir"]
