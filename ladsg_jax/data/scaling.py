"""Scaling features before training, with statistics of the training split only."""
from __future__ import annotations

import numpy as np

CHUNK = 8192
PIXEL_MAX = {"digits": 16.0, "mnist5k": 255.0}   # small grey images scaled to [0, 1] only


def channel_stats(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and standard deviation of uint8 images scaled to [0, 1], exact, from a
    histogram of each channel's 256 values (no float copy of a 100k-image set)."""
    channels = images.shape[-1]
    hist = np.zeros((channels, 256), dtype=np.int64)
    for start in range(0, len(images), CHUNK):
        block = images[start:start + CHUNK].reshape(-1, channels)
        for c in range(channels):
            hist[c] += np.bincount(block[:, c], minlength=256)
    values = np.arange(256) / 255.0
    count = hist.sum(axis=1)
    mean = hist @ values / count
    std = np.sqrt(np.maximum(hist @ values ** 2 / count - mean ** 2, 0.0))
    return mean.astype(np.float32), np.where(std > 0, std, 1.0).astype(np.float32)


def column_scaling(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each column's mean and standard deviation over the rows of x (a constant column's
    deviation taken as 1, so scaling by it only centres)."""
    mean, std = x.mean(axis=0), x.std(axis=0)
    return mean, np.where(std > 0, std, 1.0)


def standardize_images(images: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """(images / 255 − mean) / std per channel, as float32: a lookup of each uint8 value."""
    table = (np.arange(256, dtype=np.float32)[:, None] / np.float32(255.0) - mean) / std
    out = np.empty(images.shape, dtype=np.float32)
    channels = np.arange(images.shape[-1])
    for start in range(0, len(images), CHUNK):
        out[start:start + CHUNK] = table[images[start:start + CHUNK], channels]
    return out


def normalize(raw: dict, name: str) -> dict:
    """Scales a raw data set for training.

    Digits pixels are divided by 16 and mnist5k's by 255 (to [0, 1]); the other images are
    divided by 255, then standardized per channel with the training split's mean and std;
    tabular features are standardized per column by the training split; token ids stay int32
    as they are.
    """
    train_x, test_x = raw["train_x"], raw["test_x"]
    if raw["kind"] == "tokens":
        return {**raw, "train_x": train_x.astype(np.int32, copy=False),
                "test_x": test_x.astype(np.int32, copy=False)}
    if name in PIXEL_MAX:
        train_x, test_x = train_x / PIXEL_MAX[name], test_x / PIXEL_MAX[name]
    elif raw["kind"] == "image":
        mean, std = channel_stats(train_x)
        train_x, test_x = (standardize_images(train_x, mean, std),
                           standardize_images(test_x, mean, std))
    elif raw["kind"] == "tabular":
        mean, std = column_scaling(train_x)
        train_x, test_x = (train_x - mean) / std, (test_x - mean) / std
    return {**raw, "train_x": train_x.astype(np.float32, copy=False),
            "test_x": test_x.astype(np.float32, copy=False)}
