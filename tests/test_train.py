"""Training: learning happens, every strategy agrees, runs are pure, one compilation per config."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ladsg_jax.compilation import count_compilations
from ladsg_jax.config import TrainConfig
from ladsg_jax.data import load
from ladsg_jax.defenses import make_defense
from ladsg_jax.errors import ConfigError
from ladsg_jax.presets import preset_config
from ladsg_jax.vfl.model import VFLModel
from ladsg_jax.vfl.programs import shared_model_init, traced_model_init
from ladsg_jax.vfl.runner import Runner, seed_keys
from ladsg_jax.vfl.strategy import count_params, resolve_strategy
from ladsg_jax.vfl.train import make_train

SMALL = TrainConfig(bottom_hidden=(16,), top_hidden=(8,), batch_size=32, epochs=2,
                    learning_rate=0.05)


def test_presets_reach_the_demo_accuracy(breast_cancer, digits):
    """The demo's claim: ≥0.93 on breast_cancer, ≥0.90 on digits, 2 parties, mean of 3 seeds."""
    for data, bound in ((breast_cancer, 0.93), (digits, 0.90)):
        result = Runner(preset_config(data.name)).fit(data, seed_keys(0, 3))
        assert float(jnp.mean(result.final_test_accuracy)) >= bound, data.name


@pytest.mark.parametrize("top_model", ["mlp", "none"])
def test_training_learns_with_and_without_a_top_model(synthetic, top_model):
    config = SMALL.replace(top_model=top_model, epochs=6)
    result = Runner(config).fit(synthetic, seed_keys(0, 2))
    assert result.test_accuracy.shape == (2, 6)
    assert float(jnp.min(result.final_test_accuracy)) > 0.8     # chance is 1/3
    assert bool(jnp.all(result.train_loss[:, -1] < result.train_loss[:, 0]))


def test_three_parties_and_a_cnn_bottom(digits):
    data = load("digits", num_parties=3)
    config = preset_config("digits", num_parties=3, bottom="cnn", bottom_hidden=(8,), epochs=3)
    result = Runner(config).fit(data, seed_keys(0, 1))
    assert set(result.state.params) == {"party_0", "party_1", "party_2"}
    assert "top" in result.state.params["party_2"] and "top" not in result.state.params["party_0"]
    assert float(result.final_test_accuracy[0]) > 0.5            # chance is 0.1


def assert_same_history(a, b, rtol=1e-5, atol=1e-6):
    for field in ("train_loss", "train_accuracy", "test_accuracy"):
        np.testing.assert_allclose(getattr(a, field), getattr(b, field), rtol=rtol, atol=atol)


def test_every_strategy_gives_the_same_metrics(synthetic):
    keys = seed_keys(7, 3)
    results = {(loop, seeds): Runner(SMALL.replace(loop=loop, seeds=seeds)).fit(synthetic, keys)
               for loop in ("scan", "step") for seeds in ("vmap", "sequential")}
    reference = results[("scan", "sequential")]
    for strategy, result in results.items():
        assert_same_history(result, reference), strategy
    pure = jax.jit(jax.vmap(make_train(SMALL), in_axes=(0, None)))(keys, synthetic)
    assert_same_history(pure, reference)


def test_vmapped_seeds_equal_separate_runs(synthetic):
    keys = seed_keys(3, 4)
    train = make_train(SMALL)
    swept = jax.jit(jax.vmap(train, in_axes=(0, None)))(keys, synthetic)
    one = jax.jit(train)
    for i in range(4):
        single = one(keys[i], synthetic)
        assert_same_history(jax.tree.map(lambda a: a[i], swept), single)
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a[i], b, rtol=1e-4, atol=1e-5),
                     swept.state.params, single.state.params)
    # different seeds are different runs
    assert not np.allclose(swept.train_loss[0], swept.train_loss[1])


def test_the_same_key_gives_identical_metrics_twice(synthetic):
    runner = Runner(SMALL)
    a = runner.fit(synthetic, seed_keys(11, 2))
    b = runner.fit(synthetic, seed_keys(11, 2))
    for field in ("train_loss", "train_accuracy", "test_accuracy"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))


@pytest.mark.parametrize("seeds", ["vmap", "sequential"])
def test_the_step_loop_updates_in_place_but_leaves_the_callers_state(synthetic, seeds):
    runner = Runner(SMALL.replace(loop="step", seeds=seeds))
    state = runner.initial_states(synthetic, seed_keys(0, 2))[0]
    after_one = runner.epoch(state, synthetic)[0]
    again = runner.epoch(state, synthetic)[0]          # the same state, still readable
    assert not any(leaf.is_deleted() for leaf in jax.tree.leaves(state))
    jax.tree.map(np.testing.assert_array_equal, after_one.params, again.params)
    assert int(np.max(again.step)) == synthetic.num_train // SMALL.batch_size


@pytest.mark.parametrize("loop, seeds", [("scan", "vmap"), ("scan", "sequential"),
                                         ("step", "vmap"), ("step", "sequential")])
def test_compiles_once_per_config(synthetic, loop, seeds):
    config = SMALL.replace(loop=loop, seeds=seeds, epochs=2)
    runner = Runner(config)
    with count_compilations() as first:
        runner.fit(synthetic, seed_keys(0, 2))
    assert 1 <= first.count <= 8     # init, epoch (or draw, step, summary) and a few small ops
    with count_compilations() as again:
        runner.fit(synthetic, seed_keys(1, 2))
    assert again.count == 0          # the same config never compiles again
    # Another config (new learning rate: new programs) run three times as long and with more
    # seeds compiles no more programs than the first: nothing compiles per epoch, step or seed.
    longer = Runner(config.replace(learning_rate=0.01, epochs=6))
    with count_compilations() as other:
        longer.fit(synthetic, seed_keys(0, 3 if seeds == "sequential" else 2))
    assert 1 <= other.count <= first.count


def test_the_pure_sweep_compiles_once(synthetic):
    sweep = jax.jit(jax.vmap(make_train(SMALL), in_axes=(0, None)))
    with count_compilations() as stats:
        sweep(seed_keys(0, 2), synthetic)
        sweep(seed_keys(5, 2), synthetic)
    assert stats.count == 1


def test_auto_strategy_follows_the_backend_and_model(digits):
    mlp, cnn = TrainConfig(), TrainConfig(bottom="cnn")
    assert resolve_strategy(mlp, "cpu", num_params=5_000) == ("scan", "vmap")
    assert resolve_strategy(mlp, "cpu", num_params=2_000_000) == ("scan", "sequential")
    # convolutions: scan on the CPU with fast_conv's gradients (its default), steps with XLA's
    assert resolve_strategy(cnn, "cpu", num_params=5_000) == ("scan", "vmap")
    slow = cnn.replace(conv_gradients="xla")
    assert resolve_strategy(slow, "cpu", num_params=5_000) == ("step", "sequential")
    assert resolve_strategy(cnn, "gpu", num_params=2_000_000) == ("scan", "vmap")
    assert resolve_strategy(slow, "gpu", num_params=2_000_000) == ("scan", "vmap")
    assert resolve_strategy(TrainConfig(loop="step", seeds="vmap"), "cpu") == ("step", "vmap")
    runner = Runner(preset_config("digits", epochs=1))
    runner.fit(digits, seed_keys(0, 1))
    assert (runner.loop, runner.seeds) == ("scan", "vmap")      # the digits MLP is small
    assert count_params(runner.trainer.init, jax.random.key(0), digits) == sum(
        x.size for x in jax.tree.leaves(runner.fit(digits, seed_keys(0, 1)).state.params))


def test_a_runner_traces_its_model_initialization_once(breast_cancer, monkeypatch):
    """Counting the parameters (to choose the strategy) and compiling the initialization share
    one trace of the models' `init`: a start-up cost a second run pays even with every program
    in the compile cache."""
    traced = []
    original = VFLModel.init
    monkeypatch.setattr(VFLModel, "init", lambda self, *args: traced.append(1) or original(
        self, *args))
    traced_model_init.cache_clear()            # nothing traced by earlier tests is reused
    shared_model_init.cache_clear()
    Runner(SMALL).fit(breast_cancer, seed_keys(0, 2))
    assert len(traced) == 1


@pytest.mark.parametrize("field, value, message", [
    ("epochs", 0, "epochs: must be a positive integer, got 0"),
    ("batch_size", -4, "batch_size: must be a positive integer"),
    ("learning_rate", 0.0, "learning_rate: must be a finite number > 0, got 0.0"),
    ("learning_rate", float("nan"), "learning_rate: must be a finite number > 0, got nan"),
    ("momentum", "0.9", r"momentum: must be a finite number in \[0, 1\), got '0.9'"),
    ("weight_decay", None, "weight_decay: must be a finite number ≥ 0, got None"),
    ("weight_decay", float("inf"), "weight_decay: must be a finite number ≥ 0, got inf"),
    ("lr_decay", 0, r"lr_decay: must be a finite number in \(0, 1\], got 0"),
    ("optimizer", "rmsprop", "optimizer: unknown value 'rmsprop'; allowed: adam, sgd"),
    ("bottom", "resnet", "bottom: unknown value 'resnet'; allowed: cnn, hashed_mlp, mlp, resnet20"),
    ("loop", "fast", "loop: unknown value 'fast'; allowed: auto, scan, step"),
    ("seeds", "pmap", "seeds: unknown value 'pmap'; allowed: auto, sequential, vmap"),
    ("num_parties", 1, "num_parties: VFL needs at least 2 parties"),
    ("momentum", 1.0, r"momentum: must be a finite number in \[0, 1\)"),
])
def test_bad_config_values_are_named(field, value, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig(**{field: value})


def test_numpy_scalars_are_taken_as_the_python_numbers():
    config = TrainConfig(epochs=np.int64(3), learning_rate=np.float32(0.25), num_parties=np.int32(2))
    assert (config.epochs, config.learning_rate, config.num_parties) == (3, 0.25, 2)
    assert type(config.epochs) is int and type(config.learning_rate) is float
    assert config == TrainConfig(epochs=3, learning_rate=0.25)       # one compilation for both


def test_config_that_does_not_fit_the_data_is_named(synthetic):
    with pytest.raises(ConfigError, match="num_parties: config has 3 parties but the data is "
                                          "split for 2"):
        Runner(SMALL.replace(num_parties=3)).fit(synthetic, seed_keys(0, 1))
    with pytest.raises(ConfigError, match="embed_dim: top_model 'none' .* must be num_classes"):
        Runner(SMALL.replace(top_model="none", embed_dim=5)).fit(synthetic, seed_keys(0, 1))
    with pytest.raises(ConfigError, match="batch_size: 1000 is larger than the 256 training"):
        Runner(SMALL.replace(batch_size=1000)).fit(synthetic, seed_keys(0, 1))


@pytest.mark.parametrize("loop, seeds", [("scan", "vmap"), ("step", "sequential")])
def test_the_wire_record_is_the_same_in_every_strategy(synthetic, loop, seeds):
    keys = seed_keys(2, 2)
    config = SMALL.replace(record_wire="all", epochs=2)
    pure = jax.jit(jax.vmap(make_train(config), in_axes=(0, None)))(keys, synthetic)
    num_batches = synthetic.num_train // config.batch_size
    assert pure.wire.indices.shape == (2, 2, num_batches, 32)
    assert pure.wire.messages[0].shape == (2, 2, num_batches, 32, 3)
    # every sample appears once per epoch
    epoch0 = np.sort(np.asarray(pure.wire.indices[0, 0]).ravel())
    np.testing.assert_array_equal(epoch0, np.arange(num_batches * 32) if num_batches * 32 ==
                                  synthetic.num_train else epoch0)
    assert len(set(epoch0.tolist())) == epoch0.size
    run = Runner(config.replace(loop=loop, seeds=seeds)).fit(synthetic, keys)
    np.testing.assert_array_equal(run.wire.indices, pure.wire.indices)
    np.testing.assert_allclose(run.wire.messages[0], pure.wire.messages[0], rtol=1e-4, atol=1e-7)
    last = jax.jit(jax.vmap(make_train(config.replace(record_wire="last")),
                            in_axes=(0, None)))(keys, synthetic)
    np.testing.assert_array_equal(last.wire.indices[:, 0], pure.wire.indices[:, -1])
    np.testing.assert_allclose(last.wire.messages[0][:, 0], pure.wire.messages[0][:, -1],
                               rtol=1e-5, atol=1e-7)
    messages, seen = jax.tree.map(lambda a: a[0], last.wire).per_sample(synthetic.num_train)
    assert messages.shape == (synthetic.num_train, 3) and bool(seen.all())


def test_train_runs_without_jit_on_host_arrays(synthetic):
    """`train(key, data)` called directly (no jax.jit) on a data set of NumPy arrays gives what
    the jitted call gives."""
    config = TrainConfig(bottom_hidden=(8,), epochs=1)
    train = make_train(config)
    eager = train(jax.random.key(0), synthetic)
    jitted = jax.jit(train)(jax.random.key(0), synthetic)
    np.testing.assert_allclose(eager.test_accuracy, jitted.test_accuracy, atol=1e-6)


def test_the_progress_bar_says_compiling_and_its_eta_starts_after(synthetic, capsys):
    config = TrainConfig(epochs=3, batch_size=64, bottom_hidden=(8,), top_hidden=(8,))
    runner = Runner(config)
    runner.fit(synthetic, seed_keys(0, 2), progress="bar test")
    first = capsys.readouterr().err
    assert "bar test (compiling)" in first and "bar test: 100%" in first
    runner.fit(synthetic, seed_keys(1, 2), progress="bar test")
    assert "compiling" not in capsys.readouterr().err          # compiled already


def test_restart_clock_counts_what_came_before_as_done():
    from tqdm import tqdm

    from ladsg_jax.vfl.runner import restart_clock

    bar = tqdm(total=10, desc="x (compiling)", disable=False)
    bar.update(1)
    restart_clock(bar, "x", 2)
    assert (bar.n, bar.initial, bar.total, bar.desc) == (2, 2, 10, "x")
    assert bar.format_dict["elapsed"] < 1.0
    bar.close()


def test_the_message_norm_is_the_mean_norm_of_the_messages_sent(synthetic):
    keys = seed_keys(3, 2)
    config = SMALL.replace(record_wire="all", epochs=2)
    result = jax.jit(jax.vmap(make_train(config), in_axes=(0, None)))(keys, synthetic)
    assert result.message_norm.shape == (2, 2)                       # (seeds, epochs)
    # every step's batch has the same size: an epoch's mean of step means is the mean over all
    by_hand = np.linalg.norm(np.asarray(result.wire.messages[0]), axis=-1).mean(axis=(2, 3))
    np.testing.assert_allclose(result.message_norm, by_hand, rtol=1e-5)
    # under Laplace noise of scale 1, far above the true messages' norms, the norm is the
    # noise's: E|x| of x with d Laplace(1) entries (by sampling, d the message width)
    assert float(result.message_norm.max()) < 0.2
    noisy = config.replace(record_wire="none", defense=make_defense("laplace", scale=1.0))
    loud = jax.jit(jax.vmap(make_train(noisy), in_axes=(0, None)))(keys, synthetic)
    width = result.wire.messages[0].shape[-1]
    sampled = np.linalg.norm(np.random.default_rng(0).laplace(size=(200_000, width)), axis=-1)
    # (1,024 sent messages in all: their mean norm is within about 1.5% of E|x|)
    assert float(np.mean(loud.message_norm)) == pytest.approx(sampled.mean(), rel=0.05)
