"""The reference code bases' rules as options (issue 32): Fu et al.'s and VFLAIR's DiscreteSGD
grids, Fu et al.'s compression count and VFLAIR's Laplace rescaling, each against numbers
worked out by hand from the rule as stated."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ladsg_jax.config import TrainConfig
from ladsg_jax.defenses import make_defense
from ladsg_jax.defenses.quantize import true_messages
from ladsg_jax.vfl.runner import seed_keys
from ladsg_jax.vfl.train import make_train


def cut(defense, g, key=0):
    return np.asarray(defense.cut(defense.hparams(), jnp.asarray(g, jnp.float32),
                                  {"key": jax.random.key(key)}))


def test_fu_grid_is_a_fixed_unclipped_step():
    fu = make_defense("discrete_sgd", grid="fu", bins=6, bound=0.03)     # step 0.06 / 6 = 0.01
    out = cut(fu, [[0.0149, -0.0151, 0.047, 0.0, 0.0049]])
    np.testing.assert_allclose(out, [[0.01, -0.02, 0.05, 0.0, 0.0]], atol=1e-7)
    # entries ~N(0, 0.01²): the levels within and beyond ±bound (no clipping)
    g = np.random.default_rng(0).normal(size=(32, 10)) * 0.01
    counts = [np.unique(np.round(cut(make_defense("discrete_sgd", grid="fu", bins=b), g)
                                 / (0.06 / b))).size for b in (3, 6, 12)]
    assert counts == [5, 8, 14]
    ours = [np.unique(cut(make_defense("discrete_sgd", bins=b), g)).size for b in (3, 6, 12)]
    assert all(n <= b for n, b in zip(ours, (3, 6, 12)))


def test_compression_fu_count_keeps_those_above_the_kth():
    g = [[0.5, -0.4, 0.3, 0.2, 0.1]]
    fu = make_defense("compression", keep=0.4, count="fu")        # k = 2, |g| > 0.4 kept
    np.testing.assert_array_equal(cut(fu, g), np.float32([[0.5, 0, 0, 0, 0]]))
    ours = make_defense("compression", keep=0.4)                  # the ⌈2⌉ largest
    np.testing.assert_array_equal(cut(ours, g), np.float32([[0.5, -0.4, 0, 0, 0]]))
    tied = [[0.5, -0.5, 0.1]]                                     # k = 1: nothing above 0.5
    np.testing.assert_array_equal(cut(make_defense("compression", keep=0.34, count="fu"), tied),
                                  np.zeros((1, 3), np.float32))
    # the traced knob gives the constant's numbers
    traced = jax.jit(lambda hp, g: fu.cut(hp, g, {}))(fu.hparams(), jnp.float32(g))
    np.testing.assert_array_equal(np.asarray(traced), cut(fu, g))


def test_laplace_vflair_rescale_scales_the_largest_row_to_02():
    g = np.float32([[0.3, 0.4], [0.06, 0.08]])                    # row norms 0.5 and 0.1
    out = cut(make_defense("laplace", scale=0.0, rescale="vflair"), g)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), [0.2, 0.04], rtol=1e-5)
    small = g / 10                                                # largest row 0.05: unchanged
    np.testing.assert_allclose(cut(make_defense("laplace", scale=0.0, rescale="vflair"), small),
                               small, rtol=1e-6)
    same_key = [cut(make_defense("laplace", scale=0.1, rescale=r), small, key=3)
                for r in ("none", "vflair")]
    np.testing.assert_array_equal(*same_key)                      # the noise is the same


def test_true_messages_are_the_cross_entropys_gradient():
    hs = (jnp.float32([[0.2, -0.1, 0.4], [1.0, 0.0, -1.0]]), jnp.float32([[0.0, 0.3, 0.1],
                                                                        [0.5, 0.5, 0.5]]))
    targets = jax.nn.one_hot(jnp.array([2, 0]), 3)
    (g,) = true_messages(hs, {"targets": targets}, lambda h: h[0] + h[1])   # the sum top
    by_hand = (jax.nn.softmax(hs[0] + hs[1]) - targets) / 2
    np.testing.assert_allclose(g, by_hand, rtol=1e-6)


def test_vflair_grid_keeps_the_first_steps_sigma(synthetic):
    defense = make_defense("discrete_sgd", grid="vflair", bins=12)           # W 13, W//2 6
    assert defense.needs == "whole_batch"
    hs = (jnp.float32(np.random.default_rng(1).normal(size=(8, 3))), jnp.zeros((8, 3)))
    ctx = {"targets": jax.nn.one_hot(jnp.arange(8) % 3, 3)}
    state = defense.init(None, None, TrainConfig(), defense.hparams())
    _, contexts, steps = defense.forward(defense.hparams(), state, hs, ctx, lambda h: h[0] + h[1])
    (g,) = true_messages(hs, ctx, lambda h: h[0] + h[1])
    assert float(steps[0]) == pytest.approx(2 * float(np.std(g, ddof=1)) / 6, rel=1e-5)
    state, _, _ = defense.update(defense.hparams(), state, steps, ())
    _, later, _ = defense.forward(defense.hparams(), state, (hs[0] * 10, hs[1]), ctx,
                                  lambda h: h[0] + h[1])
    assert float(later[0]["step"]) == float(steps[0])                       # cached, not new
    # a whole run: every message sent is a multiple of the party's cached step
    config = TrainConfig(bottom_hidden=(16,), top_hidden=(8,), epochs=2, defense=defense,
                         record_wire="all")
    result = jax.jit(jax.vmap(make_train(config), in_axes=(0, None)))(seed_keys(0, 2),
                                                                       synthetic)
    step = np.asarray(result.state.defense_state.step)                     # (seeds, parties)
    assert step.shape == (2, 1) and (step > 0).all()
    ratio = np.asarray(result.wire.messages[0]) / step[:, 0, None, None, None, None]
    np.testing.assert_allclose(ratio, np.round(ratio), atol=1e-3)
    assert np.isfinite(np.asarray(result.test_accuracy)).all()


def top_half(x):
    """x with all but the half of its entries of largest |x| set to 0 (numpy, by hand)."""
    flat = np.abs(x).ravel()
    keep = np.zeros(flat.size, bool)
    keep[np.argsort(-flat, kind="stable")[: int(np.ceil(flat.size / 2))]] = True
    return np.where(keep.reshape(x.shape), x, 0.0)


def test_compression_error_feedback_carries_what_was_dropped(synthetic):
    ef = make_defense("compression", keep=0.5, error_feedback=True)
    assert ef.needs == "whole_batch"
    hp, top = ef.hparams(), (lambda h: h[0] + h[1])
    rng = np.random.default_rng(2)
    state = ef.init(None, synthetic, TrainConfig(batch_size=2), hp)
    assert state.residual.shape == (1, 2, 3)
    sent, true = [], []
    for _ in range(2):
        hs = (jnp.float32(rng.normal(size=(2, 3))), jnp.float32(rng.normal(size=(2, 3))))
        ctx = {"targets": jax.nn.one_hot(jnp.array([0, 2]), 3)}
        _, contexts, report = ef.forward(hp, state, hs, ctx, top)
        message = ef.cut(hp, report[0], contexts[0])
        expected = top_half(np.asarray(report[0]) + np.asarray(state.residual[0]))
        np.testing.assert_allclose(message, expected, rtol=1e-6)     # g + carried, compressed
        state, _, _ = ef.update(hp, state, report, (message,))
        sent.append(np.asarray(message))
        true.append(np.asarray(report[0]))
    # nothing is lost: what was sent plus what is carried is what the true messages add to
    np.testing.assert_allclose(sum(sent) + np.asarray(state.residual[0]), sum(true), atol=1e-7)
    config = TrainConfig(bottom_hidden=(16,), top_hidden=(8,), epochs=2, defense=ef)
    result = jax.jit(jax.vmap(make_train(config), in_axes=(0, None)))(seed_keys(0, 2),
                                                                       synthetic)
    assert result.state.defense_state.residual.shape == (2, 1, 32, 3)
    assert np.isfinite(np.asarray(result.test_accuracy)).all()
