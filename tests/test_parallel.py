"""Data-parallel steps (ladsg_jax/vfl/parallel.py): on 4 simulated CPU devices, the pmap step and
the shard_map step equal the single-device step on the global batch, step after step.

The device count is fixed when JAX starts, so the 4-device checks run once, in a child process
(tests/parallel_worker.py), which prints its measurements as JSON; the tests assert on them.
"""
import json

import jax
import numpy as np
import pytest

from ladsg_jax.defenses import (BATCH_CUT, DEFENSES, LADSG, NEEDS, PER_SAMPLE, WHOLE_BATCH,
                                make_defense)
from ladsg_jax.errors import ConfigError
from ladsg_jax.models import make_top, split_variables
from ladsg_jax.presets import preset_config
from ladsg_jax.vfl.parallel import (AXIS, STRATEGIES, GatheredCut, check_parallel_defense,
                                    cut_policy_for, make_parallel_step, synced_batch_norm)
from parallel_worker import CASES, STEPS, start

# max |parallel − single| / max |single| per compared group. Measured: ≤ 2e-6 (optimizer
# momenta and messages; params ≤ 1e-7): the devices' partial sums add up in another order.
TOLERANCE = 1e-5
EXACT = ("key", "step")         # integers: no rounding allowed
DEVICES = 4


@pytest.fixture(scope="module")
def report(digits):             # the digits fixture prepares the data set for the child
    child = start("devices", DEVICES)
    try:
        out, err = child.communicate(timeout=300)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == 0, err[-4000:]
    return json.loads(out.strip().splitlines()[-1])


@pytest.mark.slow
def test_the_child_has_four_devices(report):
    assert report["device_count"] == DEVICES


@pytest.mark.slow
@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("case", sorted(CASES))
def test_parallel_steps_equal_the_single_device_step(report, case, strategy):
    assert set(report["cases"]) == set(CASES)
    """params, batch_stats, opt_state, loss, accuracy, messages, key, step, the defense's
    state and the hyperparameters, after each of `STEPS` steps with the state carried (digits
    MLP preset with a BatchNorm top model, without a top model; two PER_SAMPLE defenses run
    as they are, label_dp and cae; four BATCH_CUT ones with their cut on the whole batch:
    LADSG's substitution with per-sample noise directions, LADSG's default, Laplace noise and
    gradient compression's top-k)."""
    steps = report["cases"][case][strategy]
    assert len(steps) == STEPS
    for number, differences in enumerate(steps, 1):
        for name, difference in differences.items():
            if name == "compilations":
                continue
            bound = 0.0 if name in EXACT else TOLERANCE
            assert difference <= bound, (case, strategy, number, name, difference)


@pytest.mark.slow
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_the_runner_trains_data_parallel_with_the_single_device_numbers(report, strategy):
    """Two epochs of the digits preset through `Runner(config.replace(parallel=...))`."""
    run = report["runner"][strategy]
    assert run["strategy"] == ["step", "sequential"]
    assert run["params"] <= 1e-4 and run["train_loss"] <= 1e-5, run
    assert run["test_accuracy_gap"] <= 2 / 360, run           # at most two of 360 test digits


@pytest.mark.slow
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_repeated_calls_compile_nothing(report, strategy):
    for case, results in report["cases"].items():
        counts = [step["compilations"] for step in results[strategy]]
        assert counts[0] >= 1 and counts[1:] == [0] * (STEPS - 1), (case, counts)


@pytest.mark.slow
def test_a_batch_that_does_not_split_over_the_devices_is_an_error(report):
    errors = report["errors"]
    for strategy in STRATEGIES:
        assert errors[f"{strategy}_batch"].startswith("batch_size:"), errors
        assert "30 samples" in errors[f"{strategy}_batch"]
        assert f"{DEVICES} devices" in errors[f"{strategy}_batch"]
    assert errors["config_batch_size"].startswith("batch_size: 30 ")
    assert f"{DEVICES} devices" in errors["config_batch_size"]
    assert errors["strategy"].startswith("strategy:") and "shard_map" in errors["strategy"]


@pytest.mark.slow
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_the_four_device_steps_refuse_a_whole_batch_defense(report, strategy):
    """dcor (WHOLE_BATCH: a loss over all pairs of the batch) is refused, naming it, by
    `make_parallel_step` and by the pmap and shard_map steps themselves, on the 4 devices."""
    for name in (f"dcor_{strategy}", f"dcor_{strategy}_step"):
        error = report["errors"][name]
        assert error is not None, name
        assert error.startswith("defense: dcor cannot run data-parallel"), (name, error)
        assert WHOLE_BATCH in error, (name, error)


def test_synced_batch_norm_normalizes_with_the_whole_batch():
    """Shards mapped with an axis name (vmap binds one as pmap and shard_map do) get the
    whole batch's output and running statistics inside `synced_batch_norm`, not outside."""
    top = make_top("mlp", (6,), 3)
    hs = tuple(jax.random.normal(jax.random.key(k), (16, 4)) * (k + 1) for k in range(2))
    params, stats = split_variables(top.init(jax.random.key(2), hs))

    def apply(hs):
        out, updates = top.apply({"params": params, "batch_stats": stats}, hs, train=True,
                                 mutable=["batch_stats"])
        return out, updates["batch_stats"]

    whole, whole_stats = jax.jit(apply)(hs)

    @jax.jit
    def sharded(hs):
        shards = jax.tree.map(lambda h: h.reshape(4, 4, -1), hs)
        with synced_batch_norm(AXIS):
            synced, synced_stats = jax.vmap(apply, axis_name=AXIS)(shards)
        apart = jax.vmap(apply, axis_name=AXIS)(shards)[0]
        return (synced.reshape(16, -1), jax.tree.map(lambda s: s[0], synced_stats),
                apart.reshape(16, -1))

    out, new_stats, apart = sharded(hs)
    np.testing.assert_allclose(out, whole, rtol=1e-5, atol=1e-5)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6),
                 new_stats, whole_stats)
    assert not np.allclose(apart, whole, atol=1e-3)         # per-shard statistics differ


# what each registered defense declares at its defaults
DECLARED = {PER_SAMPLE: {"none", "label_dp", "cae", "kdk"}, WHOLE_BATCH: {"dcor"}}


def test_every_registered_defense_declares_what_it_needs():
    """`needs` is one of `NEEDS` for each registered defense, on its class where it is a
    class variable and on its default value (a composite's is its members' largest)."""
    for name, cls in DEFENSES.items():
        defense = make_defense(name)
        assert defense.needs in NEEDS, (name, defense.needs)
        if isinstance(cls.needs, str):          # a class variable, not a property
            assert cls.needs == defense.needs, name
    for changes in (dict(stages=("la",)), dict(mode="decoy"), dict(stages=("la", "nd"))):
        assert LADSG(**changes).needs in NEEDS, changes


def test_every_defense_but_dcor_runs_data_parallel():
    """Defaults of every registered defense: the per-sample ones as they are, those with a
    batch-wide cut through a GatheredCut; dcor (a loss over all pairs) raises a ConfigError
    naming it."""
    seen = {need: set() for need in NEEDS}
    for name in DEFENSES:
        defense = make_defense(name)
        seen[defense.needs].add(name)
        if defense.needs == WHOLE_BATCH:
            with pytest.raises(ConfigError, match=f"defense: {name} cannot run data-parallel"):
                check_parallel_defense(defense)
            with pytest.raises(ConfigError, match=f"defense: {name} cannot run data-parallel"):
                cut_policy_for(defense)
            continue
        check_parallel_defense(defense)         # no error
        wrapped = cut_policy_for(defense)
        if defense.needs == PER_SAMPLE:
            assert wrapped is defense, name
        else:
            assert isinstance(wrapped, GatheredCut) and wrapped.inner is defense, name
    assert seen[PER_SAMPLE] == DECLARED[PER_SAMPLE], seen
    assert seen[WHOLE_BATCH] == DECLARED[WHOLE_BATCH], seen
    assert seen[BATCH_CUT] == set(DEFENSES) - seen[PER_SAMPLE] - seen[WHOLE_BATCH]
    assert {"laplace", "compression", "marvell", "dcae", "ladsg", "flsg"} <= seen[BATCH_CUT]


@pytest.mark.slow
def test_a_cut_on_each_devices_rows_alone_would_differ(report):
    """The negative control: Laplace's noise drawn per device's rows instead of for the whole
    batch gives other messages than one device (the 4-device check can fail)."""
    assert report["control"] > 1e-2


@pytest.mark.parametrize("changes, needs", [
    (dict(stages=("la",)), PER_SAMPLE),                     # soft labels alone
    # substitution draws its prob's coins in the batch's shape (prob is traced), so every
    # mode but decoy has its cut on the whole batch
    (dict(noise="per_sample"), BATCH_CUT),
    (dict(noise="per_sample", norm="own", mix=0.5), BATCH_CUT),
    (dict(), BATCH_CUT),                                    # the default draws noise per step
    (dict(noise="per_sample", prob=0.5), BATCH_CUT),
    (dict(noise="per_sample", norm="batch_mean"), BATCH_CUT),
    (dict(mode="flsg"), BATCH_CUT),
    (dict(stages=("sg",), mode="decoy"), WHOLE_BATCH),     # the top model's pullback at 1/B
    (dict(mode="decoy"), WHOLE_BATCH),
    (dict(stages=("la", "nd")), WHOLE_BATCH),               # screens on batch-mean norms
])
def test_ladsg_runs_data_parallel_unless_it_screens_or_uses_decoys(changes, needs):
    defense = LADSG(**changes)
    assert defense.needs == needs, changes
    if needs == WHOLE_BATCH:
        with pytest.raises(ConfigError, match="defense: ladsg cannot run data-parallel"):
            cut_policy_for(defense)
        return
    policy = cut_policy_for(defense)
    if needs == BATCH_CUT:
        assert isinstance(policy, GatheredCut) and policy.inner is defense, changes
    else:
        assert policy is defense, changes


def test_an_unsupported_defense_fails_before_anything_compiles(synthetic):
    config = preset_config("synthetic", defense=make_defense("dcor"))
    with pytest.raises(ConfigError, match="defense: dcor cannot run data-parallel .*"
                                          "whole_batch"):
        make_parallel_step(config, synthetic)
    config = preset_config("synthetic", defense=LADSG(stages=("la", "sg", "nd")))
    with pytest.raises(ConfigError, match="defense: ladsg cannot run data-parallel .*"
                                          "whole_batch"):
        make_parallel_step(config, synthetic)
