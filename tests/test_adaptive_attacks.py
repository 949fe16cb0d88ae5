"""The adaptive attacks' parts (issue 34) on hand-built cases: the entry features of a message
record, the choice by cross-validation on the known labels, and the entry scorer on true
no-top-model messages."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from ladsg_jax.attacks.adaptive import (COMBINATIONS, EntryScorer, LabelClassifier, combine,
                                        entry_features, folds, known_log_likelihood, learned)
from ladsg_jax.vfl.train import WireRecord


def record(messages, indices):
    """A one-party wire: messages (E, batches, B, d), indices (E, batches, B)."""
    return WireRecord(jnp.asarray(indices), (jnp.asarray(messages, jnp.float32),))


def test_entry_features_by_hand():
    """Two samples, two epochs, three classes, batch size 2 (the scale the features use)."""
    m = np.array([[[[-0.3, 0.1, 0.2], [0.1, 0.1, -0.2]]],
                  [[[0.1, -0.2, 0.1], [0.0, 0.3, -0.3]]]])            # (E=2, 1 batch, B=2, 3)
    features, seen = entry_features(record(m, [[[0, 1]], [[1, 0]]]), 2, batch_size=2)
    assert features.shape == (2, 3, 3 * 2 + 7) and seen.tolist() == [True, True]
    sample0 = 2 * np.array([[-0.3, 0.1, 0.2], [0.0, 0.3, -0.3]])        # its epochs' messages
    np.testing.assert_allclose(features[0, :, 0:2], sample0.T, atol=1e-6)          # scaled
    centred = sample0 - sample0.mean(1, keepdims=True)
    np.testing.assert_allclose(features[0, :, 2:4], centred.T, atol=1e-6)
    unit = centred / np.linalg.norm(centred, axis=1, keepdims=True)
    np.testing.assert_allclose(features[0, :, 4:6], unit.T, atol=1e-6)
    np.testing.assert_allclose(features[0, :, 4:6].sum(0), 0.0, atol=1e-6)  # centred: sum 0
    summaries = features[0, :, 6:]
    np.testing.assert_allclose(summaries[:, 0], unit.mean(0), atol=1e-6)
    np.testing.assert_allclose(summaries[:, 1], unit.min(0), atol=1e-6)
    np.testing.assert_allclose(summaries[:, 2], unit.max(0), atol=1e-6)
    np.testing.assert_allclose(summaries[:, 3], [0.5, 0.0, 0.5])       # smallest in 1 of 2
    np.testing.assert_allclose(summaries[:, 4], [0.25, 0.75, 0.5])      # mean rank / (d − 1)
    np.testing.assert_allclose(summaries[:, 5], sample0.min(0), atol=1e-6)
    np.testing.assert_allclose(summaries[:, 6], sample0.mean(0), atol=1e-6)


def test_a_sample_an_epoch_missed_counts_as_its_mean():
    m = np.array([[[[-0.3, 0.3], [0.2, -0.2]]], [[[-0.1, 0.1], [9.0, 9.0]]]])
    features, seen = entry_features(record(m, [[[0, 1]], [[0, 2]]]), 3, batch_size=1)
    assert seen.tolist() == [True, True, True]
    np.testing.assert_allclose(features[1, :, 0:2], [[0.2, 0.2], [-0.2, -0.2]], atol=1e-6)


def test_the_entry_scorer_reads_true_messages_from_a_few_labels():
    """Messages softmax − onehot over 3 epochs of 400 samples, 10 classes: 40 known labels
    (4 a class) suffice for every sample."""
    key = jax.random.key(0)
    labels = jax.random.randint(key, (400,), 0, 10)
    messages = []
    for epoch in range(3):
        logits = jax.random.normal(jax.random.fold_in(key, epoch + 1), (400, 10))
        messages.append(jax.grad(lambda z: optax.softmax_cross_entropy_with_integer_labels(
            z, labels).mean())(logits))
    wire = record(np.stack(messages)[:, None], np.tile(np.arange(400), (3, 1, 1)))
    features, _ = entry_features(wire, 400, batch_size=400)
    labels = np.asarray(labels)
    known = np.concatenate([np.flatnonzero(labels == c)[:4] for c in range(10)])
    part = learned(EntryScorer(), features, known, labels[known], folds(labels[known]))
    assert part["accuracy"] == 1.0
    assert np.mean(part["log_probs"].argmax(1) == labels) == 1.0


def test_cross_validation_picks_c_on_the_known_labels_only():
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 30)
    x = rng.normal(size=(90, 5)) + 3 * np.eye(3, 5)[y]
    known = np.concatenate([np.flatnonzero(y == c)[:4] for c in range(3)])
    part = learned(LabelClassifier(3), x, known, y[known], folds(y[known]))
    assert part["accuracy"] >= 0.9 and part["out_of_fold"].shape == (12, 3)
    assert part["log_likelihood"] > np.log(0.5) and part["c"] in (0.003, 0.01, 0.03, 0.1, 0.3,
                                                                  1.0, 10.0, 100.0)
    assert np.mean(part["log_probs"].argmax(1) == y) > 0.9
    lonely = learned(LabelClassifier(3), x, known[[0, 4, 5, 8, 9]], y[known[[0, 4, 5, 8, 9]]],
                     folds(y[known[[0, 4, 5, 8, 9]]]))   # one known label of class 0: no folds
    assert np.isnan(lonely["log_likelihood"]) and lonely["c"] == 1.0


def oof_part(right, y, confident=True):
    """A part's out-of-fold log-probabilities for two classes: right with 0.9 on the samples
    in `right` (0.6 when not `confident`), wrong with 0.6 on the others; uniform when `right`
    is None. Its log-likelihood is computed here, as `learned` would."""
    oof = np.log(np.full((len(y), 2), 0.5))
    for i in range(len(y)) if right is not None else ():
        p = ([0.9, 0.1] if confident else [0.6, 0.4]) if i in right else [0.4, 0.6]
        oof[i] = np.log(p if y[i] == 0 else p[::-1])
    return {"log_likelihood": known_log_likelihood(oof, y), "out_of_fold": oof,
            "log_probs": oof}


@pytest.mark.parametrize("messages_right, own_right, chosen", [
    ([0, 1], [2, 3], "product"),     # each right where the other is wrong: the product wins
    (None, [0, 1, 2, 3], "own"),     # uninformative messages: own = product, own comes first
    ([0, 1, 2, 3], None, "messages"),
    (None, None, "messages")])       # equals: the first in COMBINATIONS order
def test_the_combination_is_never_below_its_better_part_on_the_known_labels(
        messages_right, own_right, chosen):
    y = np.array([0, 1, 0, 1])
    messages, own = oof_part(messages_right, y), oof_part(own_right, y)
    name, scored = combine(messages, own, y)
    assert name == chosen
    assert scored[name] >= max(messages["log_likelihood"], own["log_likelihood"]) - 1e-12
    expected = np.log(0.9 * 0.4 / (0.9 * 0.4 + 0.1 * 0.6))      # right 0.9 times wrong 0.6
    if messages_right == [0, 1]:
        assert scored["product"] == pytest.approx(expected)
    assert set(COMBINATIONS) <= set(scored)


def test_held_out_log_likelihood_prefers_calibrated_confidence():
    y = np.array([0, 1, 0, 1])
    sure, unsure = oof_part([0, 1, 2, 3], y), oof_part([0, 1, 2, 3], y, confident=False)
    assert sure["log_likelihood"] == pytest.approx(np.log(0.9))
    assert unsure["log_likelihood"] == pytest.approx(np.log(0.6))


def test_centring_undoes_a_two_class_cosine_substitute():
    """Without a top model a two-class message is g = (a, −a): the only direction orthogonal
    to it is the ones vector, so the cosine substitute ρ·ĝ + √(1−ρ²)·û centred is exactly
    ρ·ĝ, and its argmin (which centring never moves) is the label's."""
    from ladsg_jax.defenses.substitute import cosine_substitute

    key = jax.random.key(3)
    logits = jax.random.normal(key, (64, 2))
    labels = jax.random.randint(jax.random.fold_in(key, 1), (64,), 0, 2)
    g = jax.nn.softmax(logits) - jax.nn.one_hot(labels, 2)
    u = jax.random.normal(jax.random.fold_in(key, 2), (64, 2))
    for rho in (0.1, 0.5, 0.9):
        s = cosine_substitute(g, rho, u)
        centred = s - s.mean(-1, keepdims=True)
        g_hat = g / jnp.linalg.norm(g, axis=-1, keepdims=True)
        np.testing.assert_allclose(centred, rho * g_hat, atol=1e-5)
        np.testing.assert_array_equal(jnp.argmin(s, -1), labels)
