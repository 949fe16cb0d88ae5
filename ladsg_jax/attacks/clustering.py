"""Embedding clustering (after Sun et al. 2022).

The attacker clusters what it holds per sample — the embeddings it computes with its own
trained bottom model, or the gradient messages it received — and names the clusters with a
few known labels. After Sun et al. 2022 ("Label leakage from gradients in common federated
learning"; "Defending against reconstruction attack in vertical federated learning"), who
observe that both embeddings and gradients cluster by label.
"""
from __future__ import annotations

import jax
import numpy as np

from ladsg_jax.attacks.predictions import Predictions
from ladsg_jax.attacks.view import mean_messages_per_sample
from ladsg_jax.chunks import map_in_chunks
from ladsg_jax.data.scaling import column_scaling
from ladsg_jax.errors import ConfigError
from ladsg_jax.models import apply_stateful


def standardize(features) -> np.ndarray:
    """Features (N, ...) flattened to (N, F), each column centred and scaled to unit variance
    (constant columns are only centred)."""
    features = np.asarray(features, np.float64).reshape(len(features), -1)
    mean, std = column_scaling(features)
    return (features - mean) / std


def known_class_means(features, known_indices, known_labels, num_classes: int):
    """Mean feature of the known samples of each class: (means (C, F), present (C,) bool)."""
    known_features = features[known_indices]
    means = np.zeros((num_classes, features.shape[1]))
    present = np.zeros(num_classes, bool)
    for label in np.unique(known_labels):
        means[label] = known_features[known_labels == label].mean(axis=0)
        present[label] = True
    return means, present


def map_clusters_to_classes(cluster_ids, centres, features, known_indices, known_labels,
                            num_classes: int) -> np.ndarray:
    """Class of each cluster: the majority known label of the cluster (ties to the smaller
    label), or, for a cluster without known samples, the class whose known-sample mean lies
    nearest to the cluster centre."""
    means, present = known_class_means(features, known_indices, known_labels, num_classes)
    candidates = np.flatnonzero(present)
    known_clusters = cluster_ids[known_indices]
    classes = np.empty(len(centres), int)
    for cluster, centre in enumerate(centres):
        labels_here = known_labels[known_clusters == cluster]
        if labels_here.size:
            classes[cluster] = np.bincount(labels_here, minlength=num_classes).argmax()
        else:
            distances = np.linalg.norm(means[candidates] - centre, axis=1)
            classes[cluster] = candidates[distances.argmin()]
    return classes


def cluster_attack(features, known_indices, known_labels, num_classes: int,
                   seed: int = 0) -> np.ndarray:
    """Predicted labels (N,) of every sample from clustering its features (after Sun et al.
    2022).

    features: (N, ...) what the attacker holds per sample — embeddings from its own bottom
    model or received messages. known_indices / known_labels: the few samples whose labels it
    knows. Standardizes the features, runs k-means with `num_classes` clusters (n_init=10,
    random_state=seed), and names each cluster with `map_clusters_to_classes`.
    """
    known_indices = np.asarray(known_indices, int).reshape(-1)
    known_labels = np.asarray(known_labels, int).reshape(-1)
    if known_labels.size == 0:
        raise ConfigError("known_labels", "empty; allowed: at least one known label")
    if known_indices.size != known_labels.size:
        raise ConfigError("known_labels", f"{known_labels.size} labels for "
                                          f"{known_indices.size} indices; allowed: one per index")
    if known_labels.min() < 0 or known_labels.max() >= num_classes:
        raise ConfigError("known_labels", f"values outside 0..{num_classes - 1}; "
                                          f"allowed: 0 to {num_classes - 1}")
    features = standardize(features)
    if known_indices.min() < 0 or known_indices.max() >= len(features):
        raise ConfigError("known_indices", f"outside 0..{len(features) - 1}; "
                                           f"allowed: 0 to {len(features) - 1}")
    if len(features) < num_classes:
        raise ConfigError("features", f"{len(features)} samples for {num_classes} clusters; "
                                      f"allowed: at least {num_classes} samples")
    from sklearn.cluster import KMeans

    kmeans = KMeans(n_clusters=num_classes, n_init=10, random_state=seed).fit(features)
    cluster_ids = kmeans.labels_
    classes = map_clusters_to_classes(cluster_ids, kmeans.cluster_centers_, features,
                                      known_indices, known_labels, num_classes)
    return classes[cluster_ids]


def cluster_rows(context, view, features, seen) -> dict:
    """`cluster_attack`'s labels of the rows of `features` that were `seen`."""
    rows = np.flatnonzero(seen)
    position = np.full(context.num_train, -1)
    position[rows] = np.arange(rows.size)
    known = np.asarray(view.known_idx)
    keep = position[known] >= 0
    predicted = cluster_attack(features[rows], position[known[keep]],
                               np.asarray(view.known_y)[keep], context.num_classes)
    return {"score": Predictions(index=rows, labels=predicted)}


def embeddings(context, view) -> np.ndarray:
    """The attacker's bottom model's embeddings of its training features (one jitted program
    per context, in chunks of the evaluation batch)."""
    bottom, chunk = context.bottom, context.config.eval_batch_size
    embed = context.cached("embed", lambda: jax.jit(lambda p, s, x: map_in_chunks(
        lambda c: apply_stateful(bottom, p, s, c, False)[0], x, chunk)))
    return np.asarray(embed(view.bottom_params, view.bottom_stats, view.train_x))


def run_embeddings(context, view, key):
    """k-means of the attacker's own embeddings of its training features."""
    features = embeddings(context, view)
    return cluster_rows(context, view, features, np.ones(features.shape[0], bool))


def run_messages(context, view, key):
    """k-means of each sample's received message directions averaged over the epochs."""
    features, seen = mean_messages_per_sample(view.wire, context.num_train, unit=True)
    return cluster_rows(context, view, np.asarray(features), np.asarray(seen))
