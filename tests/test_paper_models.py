"""The paper's bottoms (CIFAR ResNets, the hashed-feature MLP, the text encoder), BatchNorm in
the bottoms, and the step-decay learning rate."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ladsg_jax.config import TrainConfig, check_against_data
from ladsg_jax.data import from_arrays
from ladsg_jax.errors import ConfigError
from ladsg_jax.models import make_bottom
from ladsg_jax.models.resnet import option_a_shortcut
from ladsg_jax.vfl.optim import learning_rate
from ladsg_jax.vfl.train import make_trainer


def parameter_count(module, shape):
    variables = jax.eval_shape(module.init, jax.random.key(0), jnp.zeros(shape))
    return sum(math.prod(leaf.shape) for leaf in jax.tree.leaves(variables["params"]))


def test_resnet20_and_56_have_the_published_parameter_counts():
    # He et al. 2016, Table 6: ResNet-20 0.27M, ResNet-56 0.85M (full-width CIFAR, 10 classes).
    # By hand: convolutions 267,696 + BatchNorm scales/offsets 1,376 + linear 650 = 269,722.
    assert parameter_count(make_bottom("resnet20", (), 10), (1, 32, 32, 3)) == 269_722
    assert round(parameter_count(make_bottom("resnet56", (), 10), (1, 32, 32, 3)) / 1e6, 2) == 0.85
    # Global pooling: a party's 32x16 half has the same parameters.
    assert parameter_count(make_bottom("resnet20", (), 10), (1, 32, 16, 3)) == 269_722


def test_option_a_shortcut_subsamples_and_pads_channels_with_zeros():
    x = jnp.arange(32, dtype=jnp.float32).reshape(1, 4, 4, 2)
    out = option_a_shortcut(x, width=4, stride=2)
    assert out.shape == (1, 2, 2, 4)
    np.testing.assert_array_equal(out[..., 1:3], x[:, ::2, ::2, :])
    np.testing.assert_array_equal(out[..., 0], 0.0)
    np.testing.assert_array_equal(out[..., 3], 0.0)
    assert option_a_shortcut(x, width=2, stride=1) is x


def test_resnet_weights_start_kaiming_normal():
    variables = jax.jit(make_bottom("resnet20", (), 10).init)(jax.random.key(0),
                                                              jnp.zeros((1, 32, 16, 3)))
    last_stage = variables["params"]["BasicBlock_8"]["Conv_1"]["kernel"]     # 3x3, 64 -> 64
    assert last_stage.shape == (3, 3, 64, 64)
    np.testing.assert_allclose(float(jnp.std(last_stage)), math.sqrt(2 / (9 * 64)), rtol=0.03)
    assert set(variables["batch_stats"]) and "BatchNorm_0" in variables["batch_stats"]


def cifar_shaped(num_train=8, num_classes=10):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(num_train, 32, 32, 3)).astype(np.float32)
    y = np.arange(num_train) % num_classes
    return from_arrays(x, y, x[:4], y[:4], num_classes=num_classes, kind="image")


def test_a_resnet20_vfl_step_runs_jitted_and_updates_every_bottoms_statistics():
    data = cifar_shaped()
    assert data.train_x[0].shape == (8, 32, 16, 3)
    config = TrainConfig(bottom="resnet20", top_hidden=(20,), batch_size=4, epochs=1,
                         learning_rate=0.1, momentum=0.9, weight_decay=5e-4,
                         lr_decay_epochs=(50, 85))
    trainer = make_trainer(config)
    state = jax.jit(trainer.init)(jax.random.key(0), data)
    for party in ("party_0", "party_1"):
        assert "bottom" in state.batch_stats[party]
    assert "top" in state.batch_stats["party_1"]
    step = jax.jit(trainer.step_on_indices)
    new, metrics, messages = step(state, data, jnp.arange(4))
    assert np.isfinite(float(metrics["loss"])) and messages[0].shape == (4, 10)
    for party in ("party_0", "party_1"):
        before = state.batch_stats[party]["bottom"]["BatchNorm_0"]["mean"]
        after = new.batch_stats[party]["bottom"]["BatchNorm_0"]["mean"]
        assert float(jnp.abs(after - before).max()) > 0          # running statistics moved
        moved = jax.tree.map(lambda a, b: float(jnp.abs(a - b).max()),
                             state.params[party]["bottom"], new.params[party]["bottom"])
        assert max(jax.tree.leaves(moved)) > 0
    accuracy = jax.jit(trainer.evaluate)(new, data.test_x, data.test_y, data)
    assert 0.0 <= float(accuracy) <= 1.0


def test_the_hashed_feature_bottom_is_an_mlp_on_the_multi_hot_vector():
    vocab, key = 50, jax.random.key(1)
    tokens = jax.random.randint(key, (6, 7), 1, vocab)
    module = make_bottom("hashed_mlp", (8, 4), 3, vocab_size=vocab)
    params = module.init(key, tokens)["params"]
    multi_hot = jax.nn.one_hot(tokens, vocab).sum(axis=1)            # (6, vocab) counts
    h = jax.nn.relu(multi_hot @ params["Embed_0"]["embedding"] + params["bias"])
    h = jax.nn.relu(h @ params["Dense_0"]["kernel"] + params["Dense_0"]["bias"])
    expected = h @ params["Dense_1"]["kernel"] + params["Dense_1"]["bias"]
    np.testing.assert_allclose(module.apply({"params": params}, tokens), expected, rtol=1e-5,
                               atol=1e-5)


def test_the_text_encoder_averages_the_words_and_ignores_padding():
    module = make_bottom("text", (4,), 2, vocab_size=10)
    tokens = jnp.array([[3, 5, 0, 0], [3, 5, 5, 0]])
    params = module.init(jax.random.key(0), tokens)["params"]
    table = params["Embed_0"]["embedding"]
    means = jnp.stack([(table[3] + table[5]) / 2, (table[3] + 2 * table[5]) / 3])
    dense = params["Dense_0"]
    expected = jax.nn.relu(means + params["bias"]) @ dense["kernel"] + dense["bias"]
    np.testing.assert_allclose(module.apply({"params": params}, tokens), expected, rtol=1e-5,
                               atol=1e-6)
    padded = jnp.array([[3, 5, 0, 0, 0, 0]])                       # more padding, same text
    np.testing.assert_allclose(module.apply({"params": params}, padded), expected[:1],
                               rtol=1e-5, atol=1e-6)


def test_step_decay_multiplies_the_rate_at_the_named_epochs():
    config = TrainConfig(learning_rate=0.1, lr_decay_epochs=(50, 85))
    schedule = learning_rate(config, steps_per_epoch=10)
    assert [float(schedule(s)) for s in (0, 499, 500, 849, 850)] == pytest.approx(
        [0.1, 0.1, 0.01, 0.01, 0.001])
    assert learning_rate(TrainConfig(learning_rate=0.05)) == 0.05


def test_bad_model_settings_name_the_field():
    with pytest.raises(ConfigError, match="vocab_size"):
        TrainConfig(bottom="text")
    with pytest.raises(ConfigError, match="lr_decay_epochs"):
        TrainConfig(lr_decay_epochs=(85, 50))
    with pytest.raises(ConfigError, match="lr_decay"):
        TrainConfig(lr_decay=1.5)
    with pytest.raises(ConfigError, match="depth"):
        make_bottom("resnet20", (), 2).__class__(depth=21, out_dim=2).init(
            jax.random.key(0), jnp.zeros((1, 8, 8, 3)))
    with pytest.raises(ConfigError, match="bottom: the data are token ids"):
        check_against_data(TrainConfig(), 2, 10, 100, vocab_size=30)
    with pytest.raises(ConfigError, match="vocab_size: 20 is smaller"):
        check_against_data(TrainConfig(bottom="text", vocab_size=20), 2, 10, 100, vocab_size=30)
    with pytest.raises(ConfigError, match="takes token ids but the data are features"):
        check_against_data(TrainConfig(bottom="text", vocab_size=20), 2, 10, 100)
