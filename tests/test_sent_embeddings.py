"""The embeddings party 0 sent at each step, recorded beside its messages (config
`record_embeddings`): what an attacker that logs its own forward passes holds."""
import jax
import numpy as np
import pytest

from ladsg_jax.attacks.view import attacker_view
from ladsg_jax.config import TrainConfig
from ladsg_jax.errors import ConfigError
from ladsg_jax.models import apply_stateful
from ladsg_jax.vfl.model import VFLModel
from ladsg_jax.vfl.runner import Runner, seed_keys
from ladsg_jax.vfl.train import make_train

CONFIG = TrainConfig(bottom_hidden=(8,), top_hidden=(8,), batch_size=64, epochs=2,
                     learning_rate=0.05, record_wire="all", record_embeddings=True)


def bottom_of_party_0(state, seed: int, xs):
    """Party 0's bottom output in training mode from one seed's parameters (by hand)."""
    model = VFLModel.from_config(CONFIG, num_classes=3)
    params = jax.tree.map(lambda a: a[seed], state.params["party_0"]["bottom"])
    stats = jax.tree.map(lambda a: a[seed],
                         state.batch_stats.get("party_0", {}).get("bottom", {}))
    return np.asarray(apply_stateful(model.bottom_module(), params, stats, xs, True)[0])


@pytest.mark.parametrize("loop", ["scan", "step"])
def test_the_first_steps_embeddings_are_the_initial_bottoms_output(synthetic, loop):
    config = CONFIG.replace(loop=loop, seeds="vmap")
    keys = seed_keys(0, 2)
    runner = Runner(config)
    start = runner.initial_states(synthetic, keys)[0]
    run = runner.fit(synthetic, keys)
    sent, messages = run.wire.embeddings[0], run.wire.messages[0]
    assert sent.shape[:-1] == messages.shape[:-1] and sent.shape[-1] == 3     # embed_dim C
    for seed in range(2):
        first = np.asarray(run.wire.indices[seed, 0, 0])
        by_hand = bottom_of_party_0(start, seed, synthetic.train_x[0][first])
        np.testing.assert_allclose(sent[seed, 0, 0], by_hand, rtol=1e-5, atol=1e-6)
    # the bottom learns: what it sent in the last step of the last epoch differs
    assert not np.allclose(sent[:, -1, -1], sent[:, 0, 0])


def test_the_pure_train_records_what_the_runner_records(synthetic):
    keys = seed_keys(0, 2)
    pure = jax.jit(jax.vmap(make_train(CONFIG), in_axes=(0, None)))(keys, synthetic)
    run = Runner(CONFIG.replace(loop="step", seeds="sequential")).fit(synthetic, keys)
    np.testing.assert_allclose(run.wire.embeddings[0], pure.wire.embeddings[0], rtol=1e-4,
                               atol=1e-6)
    off = jax.jit(jax.vmap(make_train(CONFIG.replace(record_embeddings=False)),
                           in_axes=(0, None)))(keys, synthetic)
    assert off.wire.embeddings is None
    # recording them changes nothing of the training
    np.testing.assert_array_equal(off.wire.messages[0], pure.wire.messages[0])


def test_only_an_attack_that_reads_them_sees_them(synthetic):
    run = Runner(CONFIG.replace(epochs=1)).fit(synthetic, seed_keys(0, 1))
    view = attacker_view(run, 0, synthetic, np.arange(4))
    assert view.restricted(("wire_all",)).wire.embeddings is None
    seen = view.restricted(("wire_all", "embeddings_sent")).wire.embeddings
    np.testing.assert_array_equal(seen[0], run.wire.embeddings[0][0])


def test_a_checkpointed_run_restores_them(synthetic, tmp_path):
    config = CONFIG.replace(epochs=1)
    first = Runner(config).fit(synthetic, seed_keys(0, 2), checkpoint_dir=str(tmp_path))
    again = Runner(config).fit(synthetic, seed_keys(0, 2), checkpoint_dir=str(tmp_path))
    np.testing.assert_array_equal(again.wire.embeddings[0], first.wire.embeddings[0])


@pytest.mark.parametrize("changes, message", [
    ({"record_wire": "none"}, "record_embeddings: keeps the embeddings beside a recorded wire"),
    ({"parallel": "pmap"}, "record_embeddings: is recorded by one device's step; allowed with "
                           "parallel none, got 'pmap'"),
    ({"record_embeddings": 1}, "record_embeddings: must be true or false, got 1"),
])
def test_bad_settings_name_the_field(changes, message):
    with pytest.raises(ConfigError, match=message):
        CONFIG.replace(**changes)
