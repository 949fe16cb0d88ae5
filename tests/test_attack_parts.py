"""The attacks' parts on cases with hand-derived answers."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import dataclasses

import flax.linen as nn

from ladsg_jax.attacks.completion import (linear_rampup, make_model_completion, mixmatch_loss,
                                          mixup, sharpen)
from ladsg_jax.attacks.settings import MixMatchConfig
from ladsg_jax.attacks.direct import direct_label_inference
from ladsg_jax.attacks.known import select_known_labels
from ladsg_jax.attacks.malicious import malicious_sgd
from ladsg_jax.attacks.registry import check_fits
from ladsg_jax.errors import ConfigError


def test_direct_inference_reads_the_negative_entry():
    messages = jnp.array([[0.1, -0.3, 0.2],       # label 1
                          [-0.5, 0.2, 0.3],       # label 0
                          [0.2, -0.1, -0.4],      # two negatives: first is 1, argmin is 2
                          [0.3, 0.1, 0.2]])       # none negative: falls back to argmin 1
    np.testing.assert_array_equal(direct_label_inference(messages), [1, 0, 1, 1])
    np.testing.assert_array_equal(direct_label_inference(messages, "argmin"), [1, 0, 2, 1])


def test_direct_inference_is_exact_on_softmax_cross_entropy_messages():
    key = jax.random.key(0)
    logits = jax.random.normal(key, (64, 10))
    labels = jax.random.randint(jax.random.key(1), (64,), 0, 10)
    messages = jax.grad(lambda z: optax.softmax_cross_entropy_with_integer_labels(
        z, labels).mean())(logits)
    np.testing.assert_array_equal(direct_label_inference(messages), labels)


def test_malicious_sgd_scales_steps_by_the_clamped_ratio():
    lr, mu = 0.1, 0.5
    opt = malicious_sgd(lr, momentum=mu, gamma=1.0)
    params = {"w": jnp.array([1.0, 1.0, 1.0])}
    state = opt.init(params)
    g1 = {"w": jnp.array([1.0, 1.0, 1.0])}
    u1, state = opt.update(g1, state, params)
    np.testing.assert_allclose(u1["w"], [-0.1, -0.1, -0.1])          # first step: plain SGD
    g2 = {"w": jnp.array([1.0, -3.0, 10.0])}
    u2, state = opt.update(g2, state, params)
    # b2 = 0.5·1 + g2 = [1.5, -2.5, 10.5]; ratio = 1 + b2/b1 = [2.5, -1.5 → 1, 11.5 → 5]
    b2 = np.array([1.5, -2.5, 10.5])
    np.testing.assert_allclose(u2["w"], -lr * b2 * np.array([2.5, 1.0, 5.0]), rtol=1e-5)
    honest = optax.sgd(lr, momentum=mu)
    h_state = honest.init(params)
    _, h_state = honest.update(g1, h_state)
    h2, _ = honest.update(g2, h_state)
    assert float(jnp.abs(u2["w"]).sum()) > float(jnp.abs(h2["w"]).sum())


def test_malicious_sgd_adds_weight_decay_to_the_gradient():
    opt = malicious_sgd(1.0, momentum=0.0, weight_decay=0.1)
    params = {"w": jnp.array([2.0])}
    update, _ = opt.update({"w": jnp.array([0.0])}, opt.init(params), params)
    np.testing.assert_allclose(update["w"], [-0.2])


def test_sharpen_mixup_rampup_and_loss():
    p = jnp.array([[0.6, 0.4]])
    # T = 0.5: p² renormalized = [0.36, 0.16] / 0.52
    np.testing.assert_allclose(sharpen(p, 0.5), [[0.36 / 0.52, 0.16 / 0.52]], rtol=1e-6)
    np.testing.assert_allclose(sharpen(p, 1.0), p, rtol=1e-6)
    x = jnp.arange(8.0).reshape(4, 2)
    probs = jax.nn.one_hot(jnp.arange(4) % 2, 2)
    mixed_x, mixed_p, lam = mixup(jax.random.key(3), x, probs, 0.75)
    assert float(lam) >= 0.5
    # each mixed sample is λ·itself + (1−λ)·some sample: its targets stay λ-dominated
    assert bool(jnp.all(jnp.max(mixed_p, axis=-1) >= 0.5))
    np.testing.assert_allclose(mixed_p.sum(-1), 1.0, rtol=1e-6)
    assert float(linear_rampup(jnp.array(50), 100)) == 0.5
    assert float(linear_rampup(jnp.array(300), 100)) == 1.0
    logits = jnp.zeros((1, 2))
    # CE of uniform logits is log 2; MSE of [0.5,0.5] against [1,0] is 0.25
    loss = mixmatch_loss(logits, jnp.array([[1.0, 0.0]]), logits, jnp.array([[1.0, 0.0]]), 2.0)
    np.testing.assert_allclose(loss, np.log(2) + 2.0 * 0.25, rtol=1e-6)


def test_known_labels_are_even_per_class():
    labels = np.repeat(np.arange(4), 25)
    idx = select_known_labels(labels, 10, 4, seed=0)
    counts = np.bincount(labels[idx], minlength=4)
    assert counts.sum() == 10 and counts.min() == 2 and counts.max() == 3
    assert len(set(idx.tolist())) == 10
    with pytest.raises(ConfigError, match="known_labels: 3 known labels for 4 classes"):
        select_known_labels(labels, 3, 4)
    with pytest.raises(ConfigError, match="known_labels: class 1 has 1 training samples"):
        select_known_labels(np.array([0, 0, 0, 1, 2, 2, 2]), 6, 3)


def test_attacks_that_do_not_fit_the_setting_are_named():
    with pytest.raises(ConfigError, match="top_model: the direct attack needs top_model 'none'"):
        check_fits("direct", "mlp", 10)
    with pytest.raises(ConfigError, match="norm_scoring scores messages for a binary task"):
        check_fits("norm_scoring", "mlp", 10)
    with pytest.raises(ConfigError, match="attack: unknown value 'guess'; allowed: active_mc, .*raw_mc"):
        check_fits("guess", "mlp", 10)
    check_fits("passive_mc", "mlp", 10)


def test_an_attack_sees_only_what_it_declares_it_reads():
    from ladsg_jax.attacks.view import AttackerView
    from ladsg_jax.vfl.train import WireRecord

    indices = jnp.arange(3 * 2 * 4).reshape(3, 2, 4)           # 3 epochs, 2 batches of 4
    mine, theirs = jnp.ones((3, 2, 4, 5)), jnp.zeros((3, 2, 4, 5))
    view = AttackerView(bottom_params={"w": jnp.ones(2)}, bottom_stats={},
                        train_x=jnp.ones((8, 2)), test_x=jnp.ones((4, 2)),
                        wire=WireRecord(indices, (mine * jnp.arange(3.0)[:, None, None, None],
                                                  theirs)),
                        known_idx=jnp.array([0, 1]), known_y=jnp.array([1, 0]))
    last = view.restricted(("wire_last",))
    assert last.train_x is None and last.bottom_params is None and last.known_y is None
    assert len(last.wire.messages) == 1                       # party 0's messages only
    assert last.wire.messages[0].shape == (1, 2, 4, 5) and float(last.wire.messages[0].max()) == 2
    np.testing.assert_array_equal(last.wire.indices, indices[-1:])
    every = view.restricted(("wire_all", "known_labels", "features"))
    assert every.wire.messages[0].shape == (3, 2, 4, 5) and every.bottom_params is None
    np.testing.assert_array_equal(every.known_y, [1, 0])
    assert view.restricted(("bottom",)).wire is None


class TinyBottom(nn.Module):
    @nn.compact
    def __call__(self, x, train: bool = False):
        return nn.Dense(4)(x)


def test_completion_keeps_the_restart_that_fits_the_known_labels_best():
    """Three restarts in one program: the kept run is the one with the highest top-1 on the
    known labels (the first of equals), and it is that restart's own run: the first from the
    key itself, the others from `split(fold_in(key, 1), 2)`."""
    x = jax.random.normal(jax.random.key(3), (64, 3))
    known_idx = jnp.arange(8)
    known_y = (x[:8, 0] > 0).astype(jnp.int32)
    bottom = TinyBottom().init(jax.random.key(0), x[:1])["params"]
    config = MixMatchConfig(steps=30, batch_size=8, restarts=3)
    complete, predict = make_model_completion(TinyBottom(), 2, config)
    key = jax.random.key(7)
    out = jax.jit(complete)(key, bottom, {}, x, known_idx, known_y)
    fits = np.asarray(out["known_fit"])
    assert fits.shape == (3,) and int(out["restart"]) == int(np.argmax(fits))
    once, _ = make_model_completion(TinyBottom(), 2, dataclasses.replace(config, restarts=1))
    keys = [key, *jax.random.split(jax.random.fold_in(key, 1), 2)]
    runs = [jax.jit(once)(k, bottom, {}, x, known_idx, known_y) for k in keys]
    assert [float(r["known_fit"][0]) for r in runs] == pytest.approx(list(fits), abs=1e-6)
    np.testing.assert_allclose(predict(out, x), predict(runs[int(out["restart"])], x),
                               atol=1e-4)
    with pytest.raises(ConfigError, match="mixmatch.restarts: must be a positive integer"):
        MixMatchConfig(restarts=0)
