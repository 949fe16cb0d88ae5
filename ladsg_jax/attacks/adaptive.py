"""Adaptive attacks that learn from the known labels what party 0's holdings look like per label.

A defense is as good as the strongest attack tried against it. The direct attacks read one
message at a time by a fixed rule; an attacker who knows the defense instead learns, from its
few known labels, how the label's entry of a sample's messages over the whole run differs from
the others:

- `message_classifier`: a scorer of each class entry of a sample's messages, shared by the
  classes (a conditional-logit ranking: logistic regression of "is this entry the label's" on
  the entry's features, the label the best-scoring entry), so 40 known labels give 40 · C
  training entries for a few dozen weights. An entry's features: per recorded epoch its value
  times the batch size, its value in the centred message (the message's mean over the classes
  removed: without a top model a true message sums to zero, so centring strips the part of a
  substitute's noise along the ones vector) and in the centred message scaled to unit norm;
  over the epochs the unit values' mean, minimum and maximum, how often the entry was the
  message's smallest and its mean rank, and the minimum and mean of the scaled values (under
  label anonymization an entry below −ε/(k−1) in any epoch can only be the label's).
- `combined_classifier`: the best, by cross-validation on the known labels, of the message
  classifier, a multinomial logistic regression of the attacker's own raw features and bottom
  embeddings, and the product of the two's probabilities.
- `raw_classifier`: a floor, not an attack on the run: a multinomial logistic regression of
  the attacker's raw features alone, learned from the known labels and scored as model
  completion is (test set; F1 for two classes), beside `raw_mc`. Without a defense (3 seeds)
  it scored above `raw_mc`'s MixMatch fine-tuning of a fresh bottom on average (digits 0.683
  against 0.558, breast_cancer F1 0.937 against 0.901; experiments/README.md), so the tables
  take the better of the two as the floor.

Every hyperparameter (the regularization C, the combination) is chosen by stratified
cross-validation on the known labels only, by the held-out log-likelihood of the known label
(a proper scoring rule; accuracy over 40 labels moves in steps of 0.025 and ties often, and
chose the most regularized C, whose near-uniform probabilities added nothing to a product:
digits under LADSG's default, combined 0.657 chosen by accuracy against about 0.90 by
log-likelihood, experiments/README.md); the scored labels are never seen (the attack's view
holds none). Logistic regression is scikit-learn's (`sklearn.linear_model`).
"""
from __future__ import annotations

import numpy as np

from ladsg_jax.attacks.clustering import embeddings, standardize
from ladsg_jax.attacks.predictions import Predictions
from ladsg_jax.data.scaling import column_scaling

REGULARIZATION = (0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 10.0, 100.0)   # C's tried
MAX_FOLDS = 4
COMBINATIONS = ("messages", "own", "product")


def entry_features(wire, num_samples: int, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Each class entry's features (num_samples, d, F) over the recorded epochs (see the module
    docstring), and which samples were seen at all. An epoch that did not see a sample (the
    last partial batch dropped) counts as its mean over the epochs that did."""
    per_epoch, seen_in = [], []
    for epoch in range(wire.indices.shape[0]):
        messages, seen = wire.per_sample(num_samples, epoch)
        per_epoch.append(np.asarray(messages, np.float64))
        seen_in.append(np.asarray(seen))
    scaled = np.stack(per_epoch, 1) * batch_size                       # (N, E, d)
    seen = np.stack(seen_in, 1)                                         # (N, E)
    ever = seen.any(1)
    fill = scaled.sum(1, keepdims=True) / np.maximum(seen.sum(1), 1)[:, None, None]
    scaled = np.where(seen[..., None], scaled, fill)
    centred = scaled - scaled.mean(-1, keepdims=True)
    unit = centred / (np.linalg.norm(centred, axis=-1, keepdims=True) + 1e-12)
    smallest = (scaled == scaled.min(-1, keepdims=True)).mean(1)
    rank = scaled.argsort(-1).argsort(-1).mean(1) / max(scaled.shape[-1] - 1, 1)
    per_entry = [np.moveaxis(a, 1, 2) for a in (scaled, centred, unit)]   # (N, d, E) each
    summaries = [unit.mean(1), unit.min(1), unit.max(1), smallest, rank, scaled.min(1),
                 scaled.mean(1)]
    features = np.concatenate(per_entry + [s[..., None] for s in summaries], -1)
    return features.astype(np.float32), ever


def log_softmax(scores: np.ndarray) -> np.ndarray:
    """Normalized log-probabilities; −inf (a class never seen) stays a very large negative."""
    scores = np.maximum(scores, -1e30)
    shifted = scores - scores.max(-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))


def known_log_likelihood(log_probs: np.ndarray, labels: np.ndarray) -> float:
    """Mean log-probability of the known label (the log-probabilities normalized first)."""
    return float(np.mean(log_softmax(log_probs)[np.arange(len(labels)), labels]))


class EntryScorer:
    """Logistic regression of "this entry is the label's" on an entry's features (N, C, F),
    standardized by the known entries; log-probabilities are the softmax of the entries'
    scores."""

    def fit(self, features: np.ndarray, labels: np.ndarray, c: float):
        from sklearn.linear_model import LogisticRegression

        x = features.reshape(-1, features.shape[-1])
        y = (np.arange(features.shape[1])[None] == labels[:, None]).reshape(-1)
        mean, std = column_scaling(x)
        return mean, std, LogisticRegression(C=c, max_iter=3000).fit((x - mean) / std, y)

    def log_probs(self, model, features: np.ndarray) -> np.ndarray:
        mean, std, regression = model
        flat = (features.reshape(-1, features.shape[-1]) - mean) / std
        return log_softmax(regression.decision_function(flat).reshape(features.shape[:2]))


class LabelClassifier:
    """Multinomial logistic regression of the label on a sample's features (N, F); classes it
    never saw get probability 0."""

    def __init__(self, num_classes: int):
        self.num_classes = num_classes

    def fit(self, features: np.ndarray, labels: np.ndarray, c: float):
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(C=c, max_iter=3000).fit(features, labels)

    def log_probs(self, model, features: np.ndarray) -> np.ndarray:
        out = np.full((len(features), self.num_classes), -np.inf)
        out[:, model.classes_] = model.predict_log_proba(features)
        return out


def folds(known_y: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified folds of the known labels (as many as the rarest class allows, at most
    `MAX_FOLDS`); none when a class has a single known label."""
    from sklearn.model_selection import StratifiedKFold

    smallest = np.bincount(known_y)[np.unique(known_y)].min()
    if smallest < 2:
        return []
    splitter = StratifiedKFold(min(MAX_FOLDS, smallest), shuffle=True, random_state=0)
    return list(splitter.split(np.zeros(len(known_y)), known_y))


def learned(model, features, known_idx, known_y, splits) -> dict:
    """`model` (an `EntryScorer` or `LabelClassifier`) with the C of the best held-out
    log-likelihood of the known labels: {"log_probs" of every sample, normalized,
    "log_likelihood" and "accuracy" (cross-validated; NaN without folds, when C is 1),
    "out_of_fold" log-probabilities of the known samples, "c"}."""
    known_features = features[known_idx]
    best = {"c": 1.0, "log_likelihood": float("nan"), "accuracy": float("nan"),
            "out_of_fold": None}
    for c in REGULARIZATION if splits else ():
        out_of_fold = np.zeros((len(known_y), features.shape[1] if features.ndim == 3
                                else model.num_classes))
        for train, held in splits:
            fitted = model.fit(known_features[train], known_y[train], c)
            out_of_fold[held] = model.log_probs(fitted, known_features[held])
        out_of_fold = log_softmax(out_of_fold)
        likelihood = known_log_likelihood(out_of_fold, known_y)
        if np.isnan(best["log_likelihood"]) or likelihood > best["log_likelihood"]:
            best = {"c": c, "log_likelihood": likelihood, "out_of_fold": out_of_fold,
                    "accuracy": float(np.mean(out_of_fold.argmax(1) == known_y))}
    fitted = model.fit(known_features, known_y, best["c"])
    return {**best, "log_probs": log_softmax(model.log_probs(fitted, features))}


def own_features(context, view) -> np.ndarray:
    """The attacker's raw features and its bottom model's embeddings, each block standardized
    and weighted by 1/√(its width), so both count alike."""
    blocks = [standardize(b) for b in (np.asarray(view.train_x), embeddings(context, view))]
    return np.concatenate([b / np.sqrt(b.shape[1]) for b in blocks], 1)


def combine(messages: dict, own: dict, known_y: np.ndarray) -> tuple[str, dict]:
    """The combination with the best held-out log-likelihood of the known labels (the first
    of equals, in `COMBINATIONS` order; the messages' when there are no folds), and each
    combination's. The product's is that of the two's out-of-fold log-probabilities added
    and normalized."""
    product = {"log_probs": log_softmax(messages["log_probs"] + own["log_probs"]),
               "log_likelihood": float("nan")}
    if messages["out_of_fold"] is not None and own["out_of_fold"] is not None:
        product["log_likelihood"] = known_log_likelihood(
            messages["out_of_fold"] + own["out_of_fold"], known_y)
    parts = {"messages": messages, "own": own, "product": product}
    likelihood = {name: parts[name]["log_likelihood"] for name in COMBINATIONS}
    chosen = max(COMBINATIONS, key=lambda n: (np.nan_to_num(likelihood[n], nan=-np.inf),
                                              -COMBINATIONS.index(n)))
    return chosen, {**likelihood, "log_probs": parts[chosen]["log_probs"]}


def message_part(context, view):
    features, seen = entry_features(view.wire, context.num_train, context.config.batch_size)
    known, known_y = np.asarray(view.known_idx), np.asarray(view.known_y)
    splits = folds(known_y)
    return learned(EntryScorer(), features, known, known_y, splits), seen, splits


def run_message_classifier(context, view, key):
    """The message classifier's labels of the samples whose messages were seen."""
    part, seen, _ = message_part(context, view)
    rows = np.flatnonzero(seen)
    return {"score": Predictions(index=rows, labels=part["log_probs"][rows].argmax(1)),
            "choice": f"C {part['c']:g}, known-label cv log-likelihood "
                      f"{part['log_likelihood']:.3f}, accuracy {part['accuracy']:.3f}"}


def run_combined(context, view, key):
    """The best combination of the message classifier and the attacker's own classifier."""
    messages, seen, splits = message_part(context, view)
    known, known_y = np.asarray(view.known_idx), np.asarray(view.known_y)
    own = learned(LabelClassifier(context.num_classes), own_features(context, view), known,
                  known_y, splits)
    chosen, accuracy = combine(messages, own, known_y)
    rows = np.flatnonzero(seen)
    cv = ", ".join(f"{name} {accuracy[name]:.3f}" for name in COMBINATIONS)
    cv = f"log-likelihood {cv}; C {messages['c']:g} and {own['c']:g}"
    return {"score": Predictions(index=rows, labels=accuracy["log_probs"][rows].argmax(1)),
            "choice": f"{chosen} (known-label cv: {cv})"}


def run_raw_classifier(context, view, key):
    """The raw-feature floor by logistic regression: class scores for the test split (scored
    as model completion is) and the training split."""
    x_train = np.asarray(view.train_x).reshape(len(view.train_x), -1)
    x_test = np.asarray(view.test_x).reshape(len(view.test_x), -1)
    mean, std = column_scaling(x_train)
    both = np.concatenate([(x_train - mean) / std, (x_test - mean) / std])
    known, known_y = np.asarray(view.known_idx), np.asarray(view.known_y)
    part = learned(LabelClassifier(context.num_classes), both, known, known_y, folds(known_y))
    scores = part["log_probs"]
    n = len(x_train)
    return {"score": Predictions(index=np.arange(len(x_test)), scores=scores[n:], split="test"),
            "train_score": Predictions(index=np.arange(n), scores=scores[:n]),
            "choice": f"C {part['c']:g}, known-label cv log-likelihood "
                      f"{part['log_likelihood']:.3f}, accuracy {part['accuracy']:.3f}"}
