"""Scores of the main task and of the attacks (DESIGN §6).

numpy / scikit-learn based: inputs may be jax or numpy arrays, results are Python floats.

- Top-1 / top-k accuracy and F1 score the label-inference attacks that predict labels; Fu et
  al. (USENIX Security 2022, "Label Inference Attacks Against Vertical Federated Learning")
  report model completion with top-1, top-5 for 100-class tasks and F1 for binary ones.
- Leak AUC scores the binary norm / direction scoring attacks (Li et al., ICLR 2022, "Label
  Leakage and Protection in Two-party Split Learning"), reported as computed.
- Reduction, excess and the defense capability score (DCS of VFLAIR, Zou et al. 2024) compare
  a defended run with an undefended one.
"""
from __future__ import annotations

import math

import numpy as np

from ladsg_jax.errors import ConfigError


def _flat(values) -> np.ndarray:
    return np.asarray(values).reshape(-1)


def top1_accuracy(predictions, labels) -> float:
    """Fraction of predicted labels equal to the true ones (any matching shapes; flattened)."""
    predictions, labels = _flat(predictions), _flat(labels)
    if predictions.shape != labels.shape:
        raise ConfigError("predictions", f"{predictions.size} predictions for {labels.size} "
                                         "labels; allowed: one prediction per label")
    if labels.size == 0:
        raise ConfigError("labels", "no labels; allowed: at least one")
    return float(np.mean(predictions == labels))


def topk_accuracy(scores, labels, k: int) -> float:
    """Fraction of samples whose label is among the k highest of its scores (N, C).

    Fu et al. (USENIX Security 2022) score model completion on 100-class tasks with k = 5.
    Ties at the k-th score count against the label only when more than k entries outrank it.
    """
    scores, labels = np.asarray(scores), _flat(labels).astype(int)
    if scores.ndim != 2 or scores.shape[0] != labels.size:
        raise ConfigError("scores", f"shape {scores.shape} for {labels.size} labels; "
                                    "allowed: (num_samples, num_classes)")
    if not 1 <= k <= scores.shape[1]:
        raise ConfigError("k", f"{k}; allowed: 1 to {scores.shape[1]} (the number of classes)")
    label_scores = np.take_along_axis(scores, labels[:, None], axis=1)
    outranking = np.sum(scores > label_scores, axis=1)
    return float(np.mean(outranking < k))


def f1(predictions, labels) -> float:
    """Binary F1 with class 1 positive (Fu et al., USENIX Security 2022, for binary tasks)."""
    predictions, labels = _flat(predictions), _flat(labels)
    from sklearn.metrics import f1_score

    return float(f1_score(labels, predictions, pos_label=1, average="binary", zero_division=0))


def _binary_labels(labels) -> np.ndarray:
    labels = np.asarray(labels)
    values = np.unique(labels)
    if not np.all(np.isin(values, (0, 1))):
        raise ConfigError("labels", f"values {values.tolist()}; allowed: 0 and 1 "
                                    "(leak AUC is for binary tasks)")
    return labels.astype(int)


def leak_auc(scores, labels) -> float:
    """ROC AUC of `scores` as a predictor of label 1 (Li et al., ICLR 2022).

    Reported as computed: no max(AUC, 1 − AUC) folding, so 0 means perfectly reversed scores
    (an attacker who knows the sign would still recover every label).
    """
    scores, labels = _flat(scores), _binary_labels(_flat(labels))
    if scores.shape != labels.shape:
        raise ConfigError("scores", f"{scores.size} scores for {labels.size} labels; "
                                    "allowed: one score per label")
    if np.unique(labels).size < 2:
        raise ConfigError("labels", "only one class present; allowed: both 0 and 1")
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(labels, scores))


def batched_leak_auc(scores, labels, mask=None) -> float:
    """Leak AUC per batch, averaged over the batches (Li et al., ICLR 2022, report it per batch).

    scores, labels, mask: (num_batches, batch_size); `mask` (boolean) marks the entries that
    count (e.g. excluding the direction attack's known reference). Batches whose counted
    entries hold only one class are skipped.
    """
    scores, labels = np.asarray(scores), np.asarray(labels)
    mask = np.ones(labels.shape, bool) if mask is None else np.asarray(mask, bool)
    if scores.ndim != 2 or scores.shape != labels.shape or mask.shape != labels.shape:
        raise ConfigError("scores", f"scores {scores.shape}, labels {labels.shape}, mask "
                                    f"{mask.shape}; allowed: equal (num_batches, batch_size)")
    labels = _binary_labels(labels[mask]) if mask.any() else labels[mask]
    boundaries = np.cumsum(mask.sum(axis=1))[:-1]
    batch_scores, batch_labels = np.split(scores[mask], boundaries), np.split(labels, boundaries)
    from sklearn.metrics import roc_auc_score

    aucs = [roc_auc_score(y, s) for s, y in zip(batch_scores, batch_labels)
            if np.unique(y).size == 2]
    if not aucs:
        raise ConfigError("labels", "no batch holds both classes among its counted entries; "
                                    "allowed: at least one batch with labels 0 and 1")
    return float(np.mean(aucs))


def chance_levels(labels) -> dict:
    """An attack's chance level per metric (DCS's ideal AP in `dcs_chance`): guessing the
    majority class for top-1 (and its F1 for a binary task), 0.5 for a leak AUC."""
    y = np.asarray(labels)
    majority = float(np.bincount(y).max() / y.size)
    positive = float(np.mean(y == 1))
    return {"top1": majority, "auc": 0.5, "f1": 2 * positive / (1 + positive)}


def reduction(ap_none: float, ap_defended: float) -> float:
    """Relative drop of an attack's performance: (AP_none − AP_def) / AP_none (DESIGN §6)."""
    if ap_none == 0:
        raise ConfigError("ap_none", "0; allowed: a non-zero undefended attack performance")
    return float((ap_none - ap_defended) / ap_none)


def excess(ap: float, ap_raw: float) -> float:
    """Attack performance beyond what the attacker gets from its raw features: AP − AP_raw."""
    return float(ap - ap_raw)


def dcs(ap: float, mp: float, ap_star: float, mp_star: float, beta: float = 0.5) -> float:
    """Defense capability score of VFLAIR (Zou et al., 2024).

    DCS = 1 / (1 + sqrt((1 − β)·d_AP² + β·d_MP²)) with one-sided distances
    d_AP = max(AP − AP*, 0) and d_MP = max(MP* − MP, 0), where AP* is the ideal attack
    performance (e.g. chance) and MP* the main-task accuracy without defense. 1 is ideal.
    """
    if not 0.0 <= beta <= 1.0:
        raise ConfigError("beta", f"{beta}; allowed: 0 to 1")
    d_ap, d_mp = max(ap - ap_star, 0.0), max(mp_star - mp, 0.0)
    return float(1.0 / (1.0 + math.sqrt((1.0 - beta) * d_ap ** 2 + beta * d_mp ** 2)))


def main_score(predictions_or_scores, labels, num_classes: int) -> tuple[str, float]:
    """The score a model-completion result is reported with (DESIGN §4, after Fu et al.,
    USENIX Security 2022): ("f1", ·) for 2 classes, ("top5", ·) for 100 or more classes
    (needs scores (N, C)), else ("top1", ·). Scores (N, C) are turned into predictions by
    argmax where predictions are needed."""
    values = np.asarray(predictions_or_scores)
    is_scores = values.ndim == 2

    def predictions():
        return values.argmax(-1) if is_scores else values

    if num_classes < 2:
        raise ConfigError("num_classes", f"{num_classes}; allowed: 2 or more")
    if num_classes == 2:
        return "f1", f1(predictions(), labels)
    if num_classes >= 100:
        if not is_scores:
            raise ConfigError("predictions_or_scores", f"shape {values.shape} for "
                              f"{num_classes} classes; allowed: scores (num_samples, "
                              "num_classes) for top-5")
        return "top5", topk_accuracy(values, labels, 5)
    return "top1", top1_accuracy(predictions(), labels)
