"""What an attack returns, and the one place it is scored against the true labels.

An attack predicts; it never sees the labels it is scored on (DESIGN §4). Its run function
returns `Predictions`: which samples of which split it guessed (`index`) and its guesses, as
labels (`labels`, with `MISS` for a sample it declines to label) or as scores (`scores`: one per
sample for the binary leak AUC of Li et al. (ICLR 2022), or (…, C) class scores for model
completion, Fu et al. (USENIX Security 2022)). `AttackRunner.run` calls `score`, which looks the
true labels up by `index`.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from ladsg_jax.errors import ConfigError, one_of

SPLITS = ("train", "test")
MISS = -1          # a sample the attack declines to label: counted as wrong


@dataclasses.dataclass(frozen=True)
class Predictions:
    """An attack's guesses about some samples of one split.

    Attributes:
        index: positions of the guessed samples in the split, any shape (e.g. (n,) or
            (num_batches, B) for per-batch scores).
        labels: predicted class per index entry (`MISS` for none), for the top-1 metric.
        scores: a score per index entry (metric auc, higher: label 1), or class scores with a
            trailing class axis (metric completion).
        mask: which index entries count (default all), e.g. the known reference samples left
            out of the direction score.
        split: "train" or "test".
    """

    index: Any
    labels: Any = None
    scores: Any = None
    mask: Any = None
    split: str = "train"

    def __post_init__(self):
        one_of("predictions.split", self.split, SPLITS)
        if (self.labels is None) == (self.scores is None):
            raise ConfigError("predictions", "give labels or scores (exactly one)")


def score(predictions: Predictions, metric: str, labels_of: dict, num_classes: int,
          source: str = "attack"):
    """(metric name, value) of `predictions` under the attack's `metric` ("top1", "auc" or
    "completion": top-1, F1 for two classes or top-5 for 100 and more), with `labels_of[split]`
    the split's true labels; anything but `Predictions` is a `ConfigError` naming `source`."""
    from ladsg_jax import metrics

    if not isinstance(predictions, Predictions):
        raise ConfigError(source, f"its run returned a {type(predictions).__name__} where "
                                  "Predictions belong: since ladsg_jax 0.2.0 an attack "
                                  "predicts and the suite scores (CHANGELOG.md)")
    index = np.asarray(predictions.index)
    truth = np.asarray(labels_of[predictions.split])[index]
    mask = (np.ones(index.shape, bool) if predictions.mask is None
            else np.asarray(predictions.mask, bool))
    if metric == "top1":
        guesses = np.asarray(predictions.labels) if predictions.labels is not None else \
            np.asarray(predictions.scores).argmax(-1)
        return "top1", metrics.top1_accuracy(guesses[mask], truth[mask])
    if metric == "auc":
        scores = np.asarray(predictions.scores)
        if index.ndim == 2:                     # per batch, as Li et al. report it
            return "auc", metrics.batched_leak_auc(scores, truth, mask=mask)
        return "auc", metrics.leak_auc(scores[mask], truth[mask])
    values = predictions.scores if predictions.scores is not None else predictions.labels
    return metrics.main_score(np.asarray(values)[mask], truth[mask], num_classes)
