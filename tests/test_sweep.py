"""Hyperparameter grids vmap like seeds: a grid over traced knobs is one compiled program whose
runs equal the separate runs, a grid over a static field compiles once per value, and a bad
grid is one line naming the field, exit 2, before anything trains."""
import json
import os

import jax
import numpy as np
import pytest

from ladsg_jax.app.cli import main
from ladsg_jax.compilation import count_compilations
from ladsg_jax.config import TrainConfig
from ladsg_jax.errors import ConfigError
from ladsg_jax.app.sweep import grid_points, parse_grid, point_config, run_sweep
from ladsg_jax.vfl.runner import Runner, seed_keys
from ladsg_jax.vfl.train import stack_hparams
from ladsg_jax.vfl.train import default_hparams

SMALL = TrainConfig(bottom_hidden=(16,), top_hidden=(8,), batch_size=32, epochs=2,
                    learning_rate=0.05, seeds="vmap")
RHOS = ["0.1", "0.3", "0.5", "0.7", "0.9"]


def grid_fit(config, data, points, seeds):
    grid = stack_hparams([default_hparams(point_config(config, p)) for p in points])
    with count_compilations() as compiles:
        result = jax.block_until_ready(Runner(config).fit(data, seed_keys(0, seeds),
                                                          hparams=grid))
    return result, compiles.count


@pytest.mark.slow
def test_a_grid_over_rho_equals_the_separate_runs_and_compiles_as_one_setting(synthetic):
    points = grid_points("ladsg", {"stages": "sg"}, {"rho": RHOS})     # ρ is substitution's
    config = SMALL.replace(defense=points[0].defense, epochs=1)
    # each counted model is new to the process (its initialization is compiled once per model
    # and shared across defenses); a third one first takes the process's one-time compilations
    grid_fit(config.replace(bottom_hidden=(15,)), synthetic, points[:1], 3)
    result, grid_compiles = grid_fit(config, synthetic, points, 3)
    _, one_compiles = grid_fit(config.replace(bottom_hidden=(17,)), synthetic, points[:1], 3)
    assert grid_compiles == one_compiles > 0
    assert result.train_loss.shape[0] == 15
    for p, point in enumerate(points):
        alone = Runner(point_config(config, point)).fit(synthetic, seed_keys(0, 3))
        rows = slice(3 * p, 3 * p + 3)
        np.testing.assert_allclose(result.train_loss[rows], alone.train_loss, atol=1e-5)
        np.testing.assert_allclose(result.test_accuracy[rows], alone.test_accuracy, atol=1e-5)
        for a, b in zip(jax.tree.leaves(result.state.params), jax.tree.leaves(alone.state.params)):
            np.testing.assert_allclose(a[rows], b, atol=1e-5)
    # the knob reached the cut: different values train differently
    assert not np.allclose(result.train_loss[0:3], result.train_loss[12:15])


@pytest.mark.parametrize("grid", ["vmap", "sequential"])
def test_every_grid_strategy_equals_the_separate_runs_with_a_learning_rate_grid(synthetic,
                                                                                grid):
    points = grid_points("laplace", {}, {"scale": ["0.001", "0.05"], "learning_rate": ["0.01",
                                                                                       "0.1"]})
    assert [p.values for p in points][1] == {"scale": 0.001, "learning_rate": 0.1}
    config = SMALL.replace(defense=points[0].defense, grid=grid)
    runs, _ = grid_fit(config, synthetic, points, 2)
    by_run, _ = grid_fit(config.replace(seeds="sequential"), synthetic, points, 2)
    np.testing.assert_allclose(runs.train_loss, by_run.train_loss, atol=1e-5)
    for p, point in enumerate(points):
        alone = Runner(point_config(config, point)).fit(synthetic, seed_keys(0, 2))
        assert float(alone.state.hparams["learning_rate"][0]) == float(np.float32(
            point.learning_rate))
        np.testing.assert_allclose(runs.train_loss[2 * p:2 * p + 2], alone.train_loss,
                                   atol=1e-5)
        if grid == "sequential":          # the same program on the same runs: bit for bit
            np.testing.assert_array_equal(runs.train_loss[2 * p:2 * p + 2], alone.train_loss)


def test_a_grid_over_a_static_field_compiles_once_per_value(synthetic):
    points = grid_points("flsg", {}, {"flsg_samples": ["4", "8"]})
    # model sizes no other test uses: a test file run before this one in the same process
    # (test_chain's SMALL is this file's) would have compiled the shared model programs
    config = SMALL.replace(epochs=1, bottom_hidden=(19,))
    run_sweep(config.replace(bottom_hidden=(23,)), synthetic, points[:1], 2)   # one-time ones
    with count_compilations() as both:                  # a model new to the process
        record = run_sweep(config, synthetic, points, 2)
    other = config.replace(bottom_hidden=(21,))
    with count_compilations() as one:                   # another new model, one value
        run_sweep(other, synthetic, points[:1], 2)
    with count_compilations() as per_value:             # that model again: the value's own
        run_sweep(other, synthetic, points[1:], 2)
    assert record["timing"]["static_groups"] == 2
    assert per_value.count > 0
    assert both.count == one.count + per_value.count


@pytest.mark.parametrize("defense, grid, message", [
    ("ladsg", ["rhox=0.1"], "grid field of defense ladsg: unknown value 'rhox'"),
    ("ladsg", ["rho=0.1,2"], "defense.ladsg.rho: must be in [-1, 1]"),
    ("ladsg", ["rho=0.1,"], "grid: expected FIELD=V1,V2,..."),
    ("ladsg", ["rho"], "grid: expected FIELD=V1,V2,..."),
    ("laplace", ["scale=abc"], "defense.laplace.scale: expected a number"),
    ("laplace", ["learning_rate=-1"], "grid.learning_rate: must be a positive number"),
    ("ladsg", ["epsilon=0.3,0.9", "k=3"], "defense.ladsg.epsilon: must be in [0, (k-1)/k)"),
])
def test_bad_grids_are_one_line_exit_2_and_write_nothing(tmp_path, capsys, defense, grid,
                                                         message):
    argv = ["sweep", "--dataset", "digits", "--defense", defense, "--seeds", "1",
            "--runs-dir", str(tmp_path), "--no-progress"]
    for item in grid:
        argv += ["--grid", item]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err
    assert os.listdir(tmp_path) == []


def test_parse_grid_rejects_a_field_given_twice():
    with pytest.raises(ConfigError, match="given twice"):
        parse_grid(["rho=0.1", "rho=0.2"])


def test_the_sweep_command_writes_every_point_and_seed_with_attacks(tmp_path, capsys, digits):
    code = main(["sweep", "--dataset", "digits", "--defense", "ladsg", "--grid", "rho=0.2,0.8",
                 "--seeds", "2", "--epochs", "2", "--attack", "direct_argmin",
                 "--runs-dir", str(tmp_path), "--name", "s", "--no-progress"])
    assert code == 0
    with open(tmp_path / "s" / "result.json") as f:
        record = json.load(f)
    assert [p["values"] for p in record["grid"]] == [{"rho": 0.2}, {"rho": 0.8}]
    assert record["timing"]["programs"] > 0
    assert record["provenance"]["seed"] == 0 and "sweep" in record["provenance"]["command"]
    for point in record["grid"]:
        assert len(point["main_task"]["per_seed"]) == 2
        assert len(point["attacks"]["direct_argmin"]["per_seed"]) == 2
    # the argmin attack reads the sum-top setting's messages: a weaker substitute leaks more
    low, high = (p["attacks"]["direct_argmin"]["mean"] for p in record["grid"])
    assert high > low
    assert "2 points × 2 seeds" in capsys.readouterr().out
