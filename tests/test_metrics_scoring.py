"""Metrics (DESIGN §6), norm / direction scoring (Li et al. 2022) and embedding clustering
(after Sun et al. 2022), checked against hand-derived values."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ladsg_jax import metrics
from ladsg_jax.attacks.clustering import cluster_attack, map_clusters_to_classes
from ladsg_jax.attacks.scoring import direction_scores, norm_scores
from ladsg_jax.errors import ConfigError


# --- accuracy, top-k, F1 -----------------------------------------------------------------------

def test_top1_accuracy_counts_matches():
    assert metrics.top1_accuracy([0, 1, 2], [0, 1, 1]) == pytest.approx(2 / 3)
    assert isinstance(metrics.top1_accuracy(jnp.array([1, 1]), np.array([1, 0])), float)


def test_top1_accuracy_flattens_batched_inputs():
    assert metrics.top1_accuracy(np.array([[0, 1], [1, 1]]), np.array([[0, 1], [0, 0]])) == 0.5


SCORES = np.array([[0.1, 0.5, 0.4],    # label 2: second highest
                   [0.6, 0.3, 0.1],    # label 2: lowest
                   [0.2, 0.3, 0.5]])   # label 1: second highest
LABELS = np.array([2, 2, 1])


def test_topk_accuracy_by_hand():
    assert metrics.topk_accuracy(SCORES, LABELS, 1) == 0.0
    assert metrics.topk_accuracy(SCORES, LABELS, 2) == pytest.approx(2 / 3)
    assert metrics.topk_accuracy(SCORES, LABELS, 3) == 1.0
    assert metrics.topk_accuracy(jnp.asarray(SCORES), jnp.asarray(LABELS), 2) == \
        pytest.approx(2 / 3)


def test_topk_rejects_k_out_of_range():
    with pytest.raises(ConfigError, match="k"):
        metrics.topk_accuracy(SCORES, LABELS, 4)


def test_f1_by_hand():
    # TP = 2 (positions 0, 4), FP = 1 (position 1), FN = 1 (position 2): P = R = 2/3.
    assert metrics.f1([1, 1, 0, 0, 1], [1, 0, 1, 0, 1]) == pytest.approx(2 / 3)
    assert metrics.f1([0, 0], [1, 1]) == 0.0


# --- leak AUC ------------------------------------------------------------------------------------

def test_leak_auc_separating_reversed_and_ties():
    labels = [0, 0, 1, 1]
    assert metrics.leak_auc([0.1, 0.2, 0.8, 0.9], labels) == 1.0
    assert metrics.leak_auc([0.9, 0.8, 0.2, 0.1], labels) == 0.0   # not folded to 1
    assert metrics.leak_auc([0.5, 0.5, 0.5, 0.5], labels) == 0.5


def test_leak_auc_hand_counted_pairs():
    # Positive-negative pairs: 0.35 > 0.1, 0.35 < 0.4, 0.8 > 0.1, 0.8 > 0.4: 3 of 4.
    assert metrics.leak_auc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == pytest.approx(0.75)
    assert metrics.leak_auc(jnp.array([0.1, 0.4, 0.35, 0.8]), jnp.array([0, 0, 1, 1])) == \
        pytest.approx(0.75)


def test_leak_auc_rejects_non_binary_and_single_class_labels():
    with pytest.raises(ConfigError, match="labels"):
        metrics.leak_auc([0.1, 0.2, 0.3], [0, 1, 2])
    with pytest.raises(ConfigError, match="labels"):
        metrics.leak_auc([0.1, 0.2], [1, 1])


def test_batched_leak_auc_averages_batches_and_skips_one_class_batches():
    scores = np.array([[0.1, 0.2, 0.8, 0.9],     # AUC 1.0
                       [0.5, 0.5, 0.5, 0.5],     # AUC 0.5 (all tied)
                       [0.9, 0.1, 0.3, 0.2]])    # one class only: skipped
    labels = np.array([[0, 0, 1, 1], [0, 1, 0, 1], [0, 0, 0, 0]])
    assert metrics.batched_leak_auc(scores, labels) == pytest.approx(0.75)


def test_batched_leak_auc_mask_selects_counted_entries():
    scores = np.array([[0.9, 0.2, 0.8, 0.1],
                       [0.1, 0.9, 0.2, 0.8]])
    labels = np.array([[0, 0, 1, 1],
                       [0, 1, 0, 1]])
    # Batch 0 counts entries 1, 2 (scores 0.2 neg, 0.8 pos): AUC 1. Batch 1 counts entries
    # 0, 2 (both negative): skipped.
    mask = np.array([[False, True, True, False],
                     [True, False, True, False]])
    assert metrics.batched_leak_auc(scores, labels, mask=mask) == 1.0
    # Unmasked, batch 0 has pairs (0.8 vs 0.9, 0.2), (0.1 vs 0.9, 0.2): 1 of 4; batch 1: 1.
    assert metrics.batched_leak_auc(scores, labels) == pytest.approx((0.25 + 1.0) / 2)


def test_batched_leak_auc_errors():
    with pytest.raises(ConfigError, match="labels"):
        metrics.batched_leak_auc(np.zeros((2, 2)), np.array([[0, 0], [1, 1]]))
    with pytest.raises(ConfigError, match="labels"):
        metrics.batched_leak_auc(np.zeros((1, 3)), np.array([[0, 1, 2]]))


# --- reduction, excess, DCS, main score ------------------------------------------------------

def test_reduction_and_excess():
    assert metrics.reduction(0.8, 0.4) == pytest.approx(0.5)
    assert metrics.reduction(0.8, 0.8) == 0.0
    assert metrics.excess(0.72, 0.65) == pytest.approx(0.07)


def test_dcs_is_one_when_defense_is_ideal():
    assert metrics.dcs(ap=0.5, mp=0.9, ap_star=0.5, mp_star=0.9) == 1.0
    assert metrics.dcs(ap=0.3, mp=0.95, ap_star=0.5, mp_star=0.9) == 1.0   # one-sided


def test_dcs_by_hand():
    # d_AP = 0.2, d_MP = 0.1: sqrt(0.5 * 0.04 + 0.5 * 0.01) = sqrt(0.025).
    assert metrics.dcs(0.7, 0.8, 0.5, 0.9) == pytest.approx(1 / (1 + math.sqrt(0.025)))
    # d_AP = 0.4, d_MP = 0 (MP above MP*): sqrt(0.5 * 0.16).
    assert metrics.dcs(0.9, 1.0, 0.5, 0.9) == pytest.approx(1 / (1 + math.sqrt(0.08)))
    # beta = 1 counts only the main task: d_MP = 0.1.
    assert metrics.dcs(0.9, 0.8, 0.5, 0.9, beta=1.0) == pytest.approx(1 / 1.1)


def test_main_score_names_the_metric_per_class_count():
    name, value = metrics.main_score([1, 1, 0, 0, 1], [1, 0, 1, 0, 1], 2)
    assert (name, value) == ("f1", pytest.approx(2 / 3))
    name, value = metrics.main_score(SCORES, LABELS, 3)
    assert (name, value) == ("top1", 0.0)
    scores = np.tile(np.arange(100.0), (2, 1))              # classes 99..95 are the top 5
    name, value = metrics.main_score(scores, [97, 3], 100)
    assert (name, value) == ("top5", 0.5)
    with pytest.raises(ConfigError):
        metrics.main_score([1, 2], [1, 2], 100)


# --- norm and direction scoring ----------------------------------------------------------------

def test_norm_scores():
    np.testing.assert_allclose(norm_scores(jnp.array([[3.0, 4.0]])), [5.0])
    assert norm_scores(jnp.ones((2, 5, 3))).shape == (2, 5)


MESSAGES = jnp.array([[[0.0, 1.0], [3.0, 0.0], [-1.0, 0.0], [2.0, 0.0]],
                      [[0.0, 0.0], [1.0, 1.0], [1.0, 0.0], [0.0, 1.0]]])
REFERENCE_MASK = jnp.array([[False, True, False, True],      # reference: entry 1, [3, 0]
                            [False, False, False, False]])   # no known positive


@pytest.mark.parametrize("jit", [False, True])
def test_direction_scores_by_hand(jit):
    score = jax.jit(direction_scores) if jit else direction_scores
    scores, valid = score(MESSAGES, REFERENCE_MASK)
    np.testing.assert_allclose(scores[0], [0.0, 1.0, -1.0, 1.0], atol=1e-6)
    np.testing.assert_array_equal(valid[0], [True, False, True, True])
    np.testing.assert_array_equal(valid[1], [False] * 4)
    assert np.all(np.isfinite(np.asarray(scores)))          # zero message: no NaN


def test_direction_scores_feed_batched_leak_auc():
    scores, valid = direction_scores(MESSAGES, REFERENCE_MASK)
    labels = np.array([[0, 1, 0, 1], [0, 1, 0, 1]])
    # Counted: batch 0 entries 0 (neg, 0), 2 (neg, -1), 3 (pos, 1): AUC 1; batch 1 skipped.
    assert metrics.batched_leak_auc(np.asarray(scores), labels, mask=np.asarray(valid)) == 1.0


# --- clustering ----------------------------------------------------------------------------------

def test_cluster_attack_on_separated_blobs():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 5)) * 10
    labels = np.repeat(np.arange(3), 100)
    features = centres[labels] + rng.normal(size=(300, 5))
    known = np.concatenate([np.flatnonzero(labels == c)[:2] for c in range(3)])
    predicted = cluster_attack(features, known, labels[known], num_classes=3)
    assert predicted.shape == (300,)
    assert metrics.top1_accuracy(predicted, labels) >= 0.95


def test_cluster_without_known_label_takes_nearest_known_class_mean():
    rng = np.random.default_rng(1)
    centres = np.array([[0.0, 0.0], [10.0, 10.0], [20.0, 20.0]])
    labels = np.repeat(np.arange(3), 100)
    features = centres[labels] + 0.5 * rng.normal(size=(300, 2))
    # The only known class-2 sample is an outlier at (13, 13): it falls in class 1's cluster
    # (outvoted there), so class 2's cluster holds no known sample; class 2's known mean (13, 13)
    # is still the nearest to that cluster's centre (20, 20).
    features = np.vstack([features, [[13.0, 13.0]]])
    labels = np.append(labels, 2)
    known = np.array([0, 1, 100, 101, 300])
    predicted = cluster_attack(features, known, labels[known], num_classes=3)
    np.testing.assert_array_equal(predicted[:300], labels[:300])


def test_map_clusters_to_classes_by_hand():
    features = np.array([[0.0], [1.0], [10.0], [11.0], [20.0]])
    cluster_ids = np.array([0, 0, 1, 1, 2])
    centres = np.array([[0.5], [10.5], [20.0]])
    # Known: sample 0 (class 2) and 1 (class 2) in cluster 0, sample 2 (class 0) in cluster 1;
    # cluster 2 has none: class means are 0.5 (class 2) and 10 (class 0), nearest to 20 is 10.
    classes = map_clusters_to_classes(cluster_ids, centres, features, np.array([0, 1, 2]),
                                      np.array([2, 2, 0]), num_classes=3)
    np.testing.assert_array_equal(classes, [2, 0, 0])


def test_cluster_attack_rejects_bad_known_labels():
    features = np.arange(12.0).reshape(6, 2)
    with pytest.raises(ConfigError, match="known_labels"):
        cluster_attack(features, [], [], num_classes=2)
    with pytest.raises(ConfigError, match="known_labels"):
        cluster_attack(features, [0, 1], [0], num_classes=2)
