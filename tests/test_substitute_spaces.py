"""Substitutes that live where true messages live (issue 35, item 1): cosine substitution's
noise drawn over the classes, centred and pulled back through the top model, so no linear map
of every message (centring, without a top model) strips it."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ladsg_jax.config import TrainConfig
from ladsg_jax.defenses import LADSG
from ladsg_jax.defenses.base import BATCH_CUT, WHOLE_BATCH
from ladsg_jax.defenses.substitute import SubstituteGradients, SubstituteState
from ladsg_jax.errors import ConfigError
from ladsg_jax.vfl.runner import Runner, seed_keys

B, C, D = 64, 5, 7


def true_messages(key, top=None):
    """(softmax(z) − onehot(y))/B pulled back through `top` (a (D, C) linear top model; None:
    the sum top, messages in class space) and the cut context of that batch."""
    kz, ky = jax.random.split(key)
    z = jax.random.normal(kz, (B, C))
    y = jax.random.randint(ky, (B,), 0, C)
    dz = (jax.nn.softmax(z) - jax.nn.one_hot(y, C)) / B
    ctx = {"labels": y, "targets": jax.nn.one_hot(y, C), "key": jax.random.key(9),
           "index": jnp.arange(B)}
    return (dz if top is None else dz @ top.T), ctx


def substitute(defense, g, ctx, top_fn, hs):
    hp = defense.hparams()
    _, contexts, _ = defense.forward(hp, SubstituteState(), hs, ctx, top_fn)
    return defense.cut(hp, g, contexts[0])


def cosine(a, b):
    return jnp.sum(a * b, -1) / (jnp.linalg.norm(a, axis=-1) * jnp.linalg.norm(b, axis=-1))


def centred(a):
    return a - a.mean(-1, keepdims=True)


@pytest.mark.parametrize("rho", [0.1, 0.5, 0.9])
def test_without_a_top_model_centring_removes_nothing(rho):
    g, ctx = true_messages(jax.random.key(0))
    hs = (jnp.zeros((B, C)), jnp.zeros((B, C)))
    sum_top = lambda parts: parts[0] + parts[1]                              # noqa: E731
    s = substitute(SubstituteGradients(rho=rho, noise_space="message"), g, ctx, sum_top, hs)
    np.testing.assert_allclose(s.sum(-1), 0.0, atol=1e-7)
    np.testing.assert_allclose(cosine(centred(s), centred(g)), rho, atol=1e-5)
    np.testing.assert_allclose(jnp.linalg.norm(s, axis=-1), jnp.linalg.norm(g, axis=-1),
                               rtol=1e-5)
    free = substitute(SubstituteGradients(rho=rho), g, ctx, sum_top, hs)
    np.testing.assert_allclose(cosine(free, g), rho, atol=1e-5)
    # the free noise has a part along the ones vector, which centring strips: the centred
    # cosine is ρ/sqrt(ρ² + (1−ρ²)·|Pû|²) ≥ ρ, P the centring
    raised = cosine(centred(free), centred(g))
    assert float(raised.min()) >= rho - 1e-5 and float(raised.mean()) > rho + 0.005


def test_with_a_top_model_the_substitute_is_in_the_range_of_its_pullback():
    top = jax.random.normal(jax.random.key(1), (D, C))
    g, ctx = true_messages(jax.random.key(2), top)
    hs = (jnp.zeros((B, D)), jnp.zeros((B, D)))
    linear_top = lambda parts: (parts[0] + parts[1]) @ top                   # noqa: E731
    # where true messages live: the span of top·P, P the centring over the classes
    basis = np.linalg.svd(np.asarray(top) @ (np.eye(C) - 1 / C), full_matrices=False)[0][:, :C - 1]
    outside = lambda a: np.linalg.norm(a - (a @ basis) @ basis.T, axis=-1)   # noqa: E731
    assert outside(np.asarray(g)).max() < 1e-6
    s = substitute(SubstituteGradients(rho=0.5, noise_space="message"), g, ctx, linear_top, hs)
    assert outside(np.asarray(s)).max() < 1e-5 * float(jnp.linalg.norm(s, axis=-1).max())
    np.testing.assert_allclose(cosine(s, g), 0.5, atol=1e-5)
    free = substitute(SubstituteGradients(rho=0.5), g, ctx, linear_top, hs)
    assert outside(np.asarray(free)).mean() > 0.1 * float(jnp.linalg.norm(free, axis=-1).mean())


def test_message_space_noise_needs_the_whole_batch_and_names_bad_values():
    assert SubstituteGradients(noise_space="message").needs == WHOLE_BATCH
    assert SubstituteGradients().needs == BATCH_CUT
    assert LADSG(noise_space="message").needs == WHOLE_BATCH
    with pytest.raises(ConfigError, match="defense.ladsg.noise_space: unknown value 'class'"):
        LADSG(noise_space="class")
    with pytest.raises(ConfigError, match="defense.ladsg.noise_space: 'message' needs at least "
                                          "3 classes"):
        LADSG(noise_space="message").check_data(2)
    LADSG(noise_space="message").check_data(3)
    LADSG().check_data(2)


@pytest.mark.parametrize("top_model, noise", [("none", "per_step"), ("mlp", "per_sample")])
def test_ladsg_with_message_space_noise_trains(synthetic, top_model, noise):
    config = TrainConfig(bottom_hidden=(16,), top_hidden=(16,), top_model=top_model, epochs=4,
                         batch_size=32, learning_rate=0.1,
                         defense=LADSG(noise_space="message", noise=noise))
    result = Runner(config).fit(synthetic, seed_keys(0, 2))
    final = np.asarray(result.test_accuracy)[:, -1]
    assert np.isfinite(np.asarray(result.train_loss)).all()
    assert final.min() > 0.6, final


@pytest.mark.parametrize("space", ["free", "message"])
def test_per_sample_noise_does_not_average_out_over_the_epochs(space):
    """Issue 35, item 2: over E epochs of drifting true messages, the average substitute of a
    sample stays at cosine about ρ to its average true message with directions fixed per
    sample, while fresh per-step noise averages away (an attacker's `direct_averaged`)."""
    rho, epochs = 0.5, 40
    g0, ctx = true_messages(jax.random.key(3))
    hs = (jnp.zeros((B, C)), jnp.zeros((B, C)))
    sum_top = lambda parts: parts[0] + parts[1]                              # noqa: E731
    fixed = SubstituteState(noise_directions=jax.random.normal(jax.random.key(4), (1, B, C)))
    averages = {}
    for noise in ("per_sample", "per_step"):
        defense = SubstituteGradients(rho=rho, noise=noise, noise_space=space)
        state = fixed if noise == "per_sample" else SubstituteState()
        hp, total_s, total_g = defense.hparams(), 0.0, 0.0
        for e in range(epochs):
            drift = 0.1 * centred(jax.random.normal(jax.random.fold_in(jax.random.key(5), e),
                                                    g0.shape)) / B
            g = g0 + drift
            step = {**ctx, "key": jax.random.fold_in(jax.random.key(6), e)}
            _, contexts, _ = defense.forward(hp, state, hs, step, sum_top)
            total_s, total_g = total_s + defense.cut(hp, g, contexts[0]), total_g + g
        averages[noise] = cosine(total_s, total_g)
    assert float(averages["per_sample"].max()) < rho + 0.1
    assert float(averages["per_sample"].mean()) < rho + 0.05
    assert float(averages["per_step"].mean()) > 0.85          # fresh noise averaged away


def test_a_neighbour_substitute_is_the_mean_of_its_nearest_others_true_messages():
    """Issue 35, item 4: with norm "own" the substitute is exactly the mean of the true
    messages of the `neighbours` samples whose embeddings are closest in cosine, never the
    sample's own; with "keep" a positive multiple of it at the true norm."""
    g, ctx = true_messages(jax.random.key(7))
    h = jax.random.normal(jax.random.key(8), (B, D))
    hs = (h, jnp.zeros((B, D)))
    top = lambda parts: parts[0][:, :C] + parts[1][:, :C]                    # noqa: E731
    s = substitute(SubstituteGradients(mode="neighbour", neighbours=3, norm="own"), g, ctx,
                   top, hs)
    unit = np.asarray(h) / np.linalg.norm(np.asarray(h), axis=-1, keepdims=True)
    similarity = unit @ unit.T
    np.fill_diagonal(similarity, -np.inf)
    nearest = np.argsort(-similarity, axis=1)[:, :3]
    expected = np.asarray(g)[nearest].mean(axis=1)
    np.testing.assert_allclose(s, expected, rtol=1e-5, atol=1e-9)
    assert not (nearest == np.arange(B)[:, None]).any()
    kept = substitute(SubstituteGradients(mode="neighbour", neighbours=3), g, ctx, top, hs)
    np.testing.assert_allclose(cosine(kept, expected), 1.0, atol=1e-5)
    np.testing.assert_allclose(jnp.linalg.norm(kept, axis=-1), jnp.linalg.norm(g, axis=-1),
                               rtol=1e-5)
    assert SubstituteGradients(mode="neighbour").needs == WHOLE_BATCH
    with pytest.raises(ConfigError, match="defense.sg.neighbours: 64 neighbours need a batch"):
        substitute(SubstituteGradients(mode="neighbour", neighbours=B), g, ctx, top, hs)
    with pytest.raises(ConfigError, match="defense.ladsg.neighbours: must be a positive"):
        LADSG(mode="neighbour", neighbours=0)


def test_ladsg_with_neighbour_substitution_trains(synthetic):
    config = TrainConfig(bottom_hidden=(16,), top_hidden=(16,), epochs=4, batch_size=32,
                         learning_rate=0.1, defense=LADSG(mode="neighbour"))
    result = Runner(config).fit(synthetic, seed_keys(0, 2))
    assert np.asarray(result.test_accuracy)[:, -1].min() > 0.6
