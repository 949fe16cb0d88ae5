"""Batch label reconstruction by gradient inversion (Liu et al. 2021; DESIGN §4).

Bounds below were measured with this file's seeds and, for robustness, on 40 seeds (0–39) of
the same settings; each is set with a margin below the worst value seen.
"""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from scipy.optimize import linear_sum_assignment

from ladsg_jax.attacks.inversion import (dummy_gradient, invert_batch_labels, invert_labels,
                                         observed_gradient, reconstruct_batch)
from ladsg_jax.errors import ConfigError
from ladsg_jax.models import make_bottom

C, B, F = 4, 8, 6
BOTTOM = make_bottom("mlp", (16,), C)


def direct_batch(seed):
    """Sum top: logits h + o (o the other party's logits), message (softmax(h + o) − e_y) / B."""
    kx, kp, ky, ko = jax.random.split(jax.random.key(seed), 4)
    x = jax.random.normal(kx, (B, F))
    params = BOTTOM.init(kp, x)["params"]
    y = jax.random.randint(ky, (B,), 0, C)
    other = jax.random.normal(ko, (B, C))
    h = BOTTOM.apply({"params": params}, x)
    return params, x, y, (jax.nn.softmax(h + other) - jax.nn.one_hot(y, C)) / B


class Top(nn.Module):
    """concat [h, o] → Dense → ReLU → Dense(C): a top model the attacker does not know."""

    @nn.compact
    def __call__(self, h, other):
        return nn.Dense(C)(nn.relu(nn.Dense(16)(jnp.concatenate([h, other], axis=-1))))


def top_loss(top_params, h, other, y):
    return optax.softmax_cross_entropy_with_integer_labels(
        Top().apply(top_params, h, other), y).mean()


def direct_accuracies(seeds, **options):
    accuracies = []
    for seed in seeds:
        params, x, y, message = direct_batch(seed)
        predicted = invert_batch_labels(BOTTOM, params, x, message, C,
                                        jax.random.key(1000 + seed), **options)
        accuracies.append(float(jnp.mean(predicted == y)))
    return np.asarray(accuracies)


def test_without_a_top_model_the_labels_are_reconstructed():
    seeds = range(10)
    # Measured on seeds 0–39: head=False mean 0.997, worst batch 0.875; head=True mean 0.994,
    # worst 0.875 (chance 0.25).
    no_head = direct_accuracies(seeds, head=False)
    assert no_head.mean() >= 0.9 and no_head.min() >= 0.75
    with_head = direct_accuracies(seeds, head=True)
    assert with_head.mean() >= 0.9 and with_head.min() >= 0.75
    # Without the dummy offsets (z = h exactly) the other party's logits are unexplained:
    # measured mean 0.88 (0.91 on these seeds), worst batch 0.375; the offsets must not hurt.
    literal = direct_accuracies(seeds, head=False, offsets=False)
    assert literal.mean() >= 0.75
    assert no_head.mean() >= literal.mean()


def permutation_matched_accuracy(predicted, labels):
    """Accuracy under the best one-to-one renaming of predicted classes (Hungarian)."""
    counts = np.zeros((C, C))
    np.add.at(counts, (np.asarray(predicted), np.asarray(labels)), 1)
    rows, cols = linear_sum_assignment(-counts)
    return counts[rows, cols].sum() / len(labels)


def test_with_an_unknown_top_model_the_head_groups_the_batch_but_cannot_name_classes():
    # Class names are not identifiable here: renaming the classes together with the rows of
    # the top model's output layer leaves every message unchanged, so over random tops no
    # attacker beats chance (0.25) on names; measured name accuracy over 40 seeds: mean 0.24,
    # per-seed 0.08–0.44. What the reconstruction can recover is which samples share a class,
    # scored under the best renaming: measured 0.589 on average against 0.462 for random
    # guesses (worst seed 0.500; seeds 0–2 here: 0.599).
    batches, size = 12, 16
    matched, chance, objectives = [], [], []
    rng = np.random.default_rng(0)
    for seed in range(3):
        k = jax.random.split(jax.random.key(seed), 6)
        xs = jax.random.normal(k[0], (batches, size, F))
        params = BOTTOM.init(k[1], xs[0])["params"]
        ys = jax.random.randint(k[2], (batches, size), 0, C)
        others = jax.random.normal(k[3], (batches, size, C))
        top_params = Top().init(k[4], jnp.zeros((1, C)), jnp.zeros((1, C)))

        def message(x, y, other):
            h = BOTTOM.apply({"params": params}, x)
            return jax.grad(top_loss, argnums=1)(top_params, h, other, y)

        messages = jax.vmap(message)(xs, ys, others)
        predicted = np.asarray(invert_labels(BOTTOM, params, xs, messages, C, k[5], head=True))
        labels = np.asarray(ys)
        matched += [permutation_matched_accuracy(p, y) for p, y in zip(predicted, labels)]
        chance += [permutation_matched_accuracy(rng.integers(0, C, size), y)
                   for y in labels for _ in range(100)]
        objectives.append(jax.vmap(lambda x, m, key: reconstruct_batch(
            BOTTOM, params, x, m, C, key).objective)(xs, messages,
                                                     jax.random.split(k[5], batches)))
    # The dummy gradient does match the observed one (measured 1 − cos ≤ 0.04 in every batch):
    # what is missing is identifiability, not optimization.
    assert float(jnp.max(jnp.stack(objectives))) < 0.1
    assert np.mean(matched) >= np.mean(chance) + 0.07


def test_observed_gradient_is_the_parameter_gradient_of_the_true_loss():
    kx, kp, ky, ko, kt = jax.random.split(jax.random.key(7), 5)
    x = jax.random.normal(kx, (B, F))
    params = BOTTOM.init(kp, x)["params"]
    y = jax.random.randint(ky, (B,), 0, C)
    other = jax.random.normal(ko, (B, C))
    top_params = Top().init(kt, jnp.zeros((1, C)), jnp.zeros((1, C)))
    h = BOTTOM.apply({"params": params}, x)
    message = jax.grad(top_loss, argnums=1)(top_params, h, other, y)
    expected = jax.grad(lambda p: top_loss(top_params, BOTTOM.apply({"params": p}, x),
                                           other, y))(params)
    observed = observed_gradient(BOTTOM, params, x, message)
    for got, want in zip(jax.tree.leaves(observed), jax.tree.leaves(expected)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
    # The dummy gradient by hand: ∂L̂/∂h = (softmax(z) − softmax(ŷ)) Wᵀ / B, pulled back.
    kl, kw, kb, ks = jax.random.split(kt, 4)
    dummies = {"labels": jax.random.normal(kl, (B, C)), "kernel": jax.random.normal(kw, (C, C)),
               "bias": jax.random.normal(kb, (C,)), "offsets": jax.random.normal(ks, (B, C))}
    z = h @ dummies["kernel"] + dummies["bias"] + dummies["offsets"]
    by_hand = (jax.nn.softmax(z) - jax.nn.softmax(dummies["labels"])) @ dummies["kernel"].T / B
    for got, want in zip(jax.tree.leaves(dummy_gradient(BOTTOM, params, x, dummies)),
                         jax.tree.leaves(observed_gradient(BOTTOM, params, x, by_hand))):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)


def test_no_head_needs_an_embedding_of_num_classes_entries():
    wide = make_bottom("mlp", (16,), C + 2)
    x = jnp.ones((B, F))
    params = wide.init(jax.random.key(0), x)["params"]
    with pytest.raises(ConfigError, match="head") as error:
        invert_batch_labels(wide, params, x, jnp.zeros((B, C + 2)), C, jax.random.key(1),
                            head=False)
    assert error.value.field == "head"


def test_invert_labels_is_the_batch_attack_vmapped_with_split_keys():
    batches = [direct_batch(seed) for seed in range(3)]
    params = batches[0][0]
    xs = jnp.stack([x for _, x, _, _ in batches])
    h = jax.vmap(lambda x: BOTTOM.apply({"params": params}, x))(xs)
    messages = jax.nn.softmax(h) - jax.nn.one_hot(jnp.stack([y for *_, y, _ in batches]), C)
    key = jax.random.key(5)
    together = invert_labels(BOTTOM, params, xs, messages / B, C, key, head=True, steps=100)
    alone = [invert_batch_labels(BOTTOM, params, xs[i], messages[i] / B, C, batch_key,
                                 head=True, steps=100)
             for i, batch_key in enumerate(jax.random.split(key, 3))]
    assert together.shape == (3, B)
    np.testing.assert_array_equal(together, jnp.stack(alone))
