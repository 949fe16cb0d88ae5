"""A diverged run is flagged, never scored: one seed of a sweep that turns NaN is left out of
the result file's means, the table, DCS and the figures, and every place says how many."""
import dataclasses
import json
import math
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import struct

from ladsg_jax.app.attack_table import add_comparisons, defense_rows
from ladsg_jax.attacks.suite import AttackRunner, AttackSettings
from ladsg_jax.app.table_render import markdown_tables, terminal_table
from ladsg_jax.app.cli import main
from ladsg_jax.data import load
from ladsg_jax.defenses import Defense
from ladsg_jax.divergence import divergence, loss_bound
from ladsg_jax.presets import preset_config
from ladsg_jax.results import write_json_atomic
from ladsg_jax.app.sweep import GridPoint, run_sweep
from ladsg_jax.vfl.runner import Runner, seed_keys

SEEDS, BASE_SEED = 4, 0


@struct.dataclass
class Draw:
    u: jax.Array


@dataclasses.dataclass(frozen=True)
class NaNOnSomeSeeds(Defense):
    """Sends NaN messages on the runs whose init draw u falls below `threshold` (a traced knob):
    a defense that breaks on some seeds only."""

    name: ClassVar[str] = "nan_on_some_seeds"
    hyper: ClassVar[tuple] = ("threshold",)
    draws: ClassVar[frozenset] = frozenset({"init"})
    threshold: float = 0.5

    def init(self, key, data, config, hp):
        return Draw(u=jax.random.uniform(key))

    def targets(self, hp, state, targets, labels, index):
        return jnp.where(state.u < hp["threshold"], jnp.nan, targets)


def test_divergence_reads_the_loss_and_the_parameters():
    data = load("breast_cancer")
    fine = Runner(preset_config("breast_cancer", epochs=2)).fit(data, seed_keys(0, 2))
    assert divergence(fine, 2) == [None, None]
    blown = Runner(preset_config("breast_cancer", epochs=2, learning_rate=1e6)).fit(
        data, seed_keys(0, 2))
    assert divergence(blown, 2) == ["training loss not finite from epoch 1"] * 2
    # a last-epoch loss past 10·log C counts when the accuracy is at chance, not otherwise
    loss, accuracy = np.array(fine.train_loss), np.array(fine.train_accuracy)
    loss[:, 1] = 7.0
    assert loss_bound(2) == pytest.approx(10 * math.log(2))      # 6.93
    accuracy[1, 1] = 0.74
    assert accuracy[0, 1] > 0.75
    reasons = divergence(fine.replace(train_loss=loss, train_accuracy=accuracy), 2)
    assert reasons[0] is None
    assert reasons[1] == ("training loss 7 > 6.93 (10·log C) with training accuracy 0.740 "
                          "< 0.750 (1.5/C) at the last epoch")
    # a loss that blew up and came back is not divergence
    loss[:, 0] = 1e6
    loss[:, 1] = 1.0
    assert divergence(fine.replace(train_loss=loss, train_accuracy=accuracy), 2) == [None] * 2
    # and so do final parameters that hold a NaN while the loss did not show it yet
    params = jax.tree.map(lambda a: a.at[1].set(jnp.nan), fine.state.params)   # run 1 only
    broken = fine.replace(state=fine.state.replace(params=params))
    assert divergence(broken, 2) == [None, "final parameters not finite"]


@pytest.fixture(scope="module")
def mixed():
    """A sweep point where some, not all, of the seeds diverge (the init draws say which)."""
    data = load("breast_cancer")
    config = preset_config("breast_cancer", epochs=2, seeds="vmap",
                           defense=NaNOnSomeSeeds(threshold=0.5))
    result = Runner(config).fit(data, seed_keys(BASE_SEED, SEEDS))
    u = np.asarray(result.state.defense_state.u)
    bad = u < 0.5
    assert 0 < bad.sum() < SEEDS, f"pick another BASE_SEED: draws {u}"
    return data, config, bad


def test_one_diverging_seed_of_a_sweep_is_left_out_of_its_point(mixed, tmp_path):
    data, config, bad = mixed
    points = [GridPoint(values={"threshold": t}, defense=NaNOnSomeSeeds(threshold=t))
              for t in (0.0, 0.5)]
    record = run_sweep(config, data, points, SEEDS, BASE_SEED, attacks=["direct_argmin"],
                       settings=AttackSettings(known_labels=20))
    clean, broken = record["grid"]
    assert clean["diverged"] == {"honest top_none": [None] * SEEDS}
    reasons = broken["diverged"]["honest top_none"]
    assert [r is not None for r in reasons] == bad.tolist()
    attack = broken["attacks"]["direct_argmin"]
    kept = [v for v, b in zip(attack["per_seed"], bad) if not b]
    assert [v is None for v in attack["per_seed"]] == bad.tolist()
    assert attack["n"] == SEEDS - bad.sum() and attack["missing"] == bad.sum()
    assert attack["mean"] == pytest.approx(np.mean(kept))
    assert broken["main_task"]["missing"] == bad.sum()
    # the result file holds no NaN or infinity (strict JSON), the reasons are in it
    path = write_json_atomic(str(tmp_path / "sweep.json"), record)
    text = open(path).read()
    json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} in the result file"))
    assert "training loss not finite" in text


def test_the_table_dcs_and_figures_leave_the_diverged_seeds_out(mixed):
    from experiments.figures import attack_markdown, attack_panels

    data, _, bad = mixed
    settings = AttackSettings(known_labels=20)
    config = preset_config("breast_cancer", epochs=2)
    runner = AttackRunner(config, data, settings)
    attacks = ("direct_argmin", "cluster_embeddings")
    rows = defense_rows(data, Defense(), ["none"], SEEDS, runner, settings, BASE_SEED,
                        attacks, epochs=2)
    rows += defense_rows(data, NaNOnSomeSeeds(threshold=0.5), ["broken"], SEEDS, runner,
                         settings, BASE_SEED, attacks, epochs=2)
    rows += defense_rows(data, NaNOnSomeSeeds(threshold=1.0), ["all broken"], SEEDS, runner,
                         settings, BASE_SEED, attacks, epochs=2)
    add_comparisons(rows)
    none, broken, dead = rows
    for group in ("none/honest", "mlp/honest"):
        assert [r is not None for r in broken["diverged"][group]] == bad.tolist()
        assert all(r is not None for r in dead["diverged"][group])
    # DCS from the kept seeds' means only, by hand
    mp = broken["main_task"]["top_mlp"]
    kept_mp = [a for a, b in zip(mp["per_seed"], bad) if not b]
    assert mp["mean"] == pytest.approx(np.mean(kept_mp))
    # (VFLAIR's with ideal 0 and ours with chance as the ideal; the direct attacks count once,
    # by their strongest reading)
    ranked = {"dcs": [], "dcs_chance": []}
    for name in (*attacks, "direct_strongest"):
        a = broken["attacks"][name]
        ap = np.mean([v for v, b in zip(a["per_seed"], bad) if not b])
        assert a["mean"] == pytest.approx(ap)
        d_mp = max(none["main_task"]["top_mlp"]["mean"] - np.mean(kept_mp), 0)
        for kind, ideal in (("dcs", 0.0), ("dcs_chance", broken["chance"][a["metric"]])):
            d_ap = max(ap - ideal, 0)
            expected = 1 / (1 + math.sqrt(0.5 * d_ap ** 2 + 0.5 * d_mp ** 2))
            assert a[kind] == pytest.approx(expected)
            if name != "direct_argmin":
                ranked[kind].append(expected)
    assert broken["dcs_mean"] == pytest.approx(np.mean(ranked["dcs"]))
    assert broken["dcs_mean_chance"] == pytest.approx(np.mean(ranked["dcs_chance"]))
    # the strongest attack, by the kept seeds' label recovery, ranks the row
    best = broken["strongest"]
    recovered = {n: np.mean([v for v, b in zip(a["per_seed"], bad) if not b])
                 for n, a in broken["attacks"].items() if n in attacks}
    assert best["mean"] >= max(recovered.values()) - 1e-9
    assert 0 < broken["dcs"] <= 1
    # a row whose every seed diverged is scored nowhere
    assert dead["dcs"] is None and dead["strongest"] is None
    assert all(a["mean"] is None and a["dcs"] is None for a in dead["attacks"].values())
    # the tables say how many seeds diverged
    n_bad = int(bad.sum())
    md = markdown_tables(rows, ["none", "broken", "all broken"])
    assert f"| broken ({n_bad}/{SEEDS} seeds diverged) |" in md
    assert f"| all broken ({SEEDS}/{SEEDS} seeds diverged) | diverged | diverged |" in md
    assert "nan" not in md.lower()
    assert f"broken ({n_bad}/{SEEDS} seeds diverged)" in terminal_table(rows)
    assert "| all broken (4/4 seeds diverged) |" in attack_markdown(rows, list(attacks))
    # the figure draws the kept seeds' means and nothing for the dead row
    panels = attack_panels(rows, list(attacks))["breast_cancer"]
    assert panels["main task"]["broken"][0] == pytest.approx(np.mean(kept_mp))
    assert "all broken" not in panels["main task"]


def test_the_command_line_warns_and_writes_no_nan(tmp_path, capsys):
    code = main(["train", "--dataset", "breast_cancer", "--epochs", "2", "--seeds", "2",
                 "--lr", "1e6", "--no-progress", "--runs-dir", str(tmp_path), "--name", "x"])
    out, err = capsys.readouterr()
    assert code == 0
    assert err.strip().splitlines() == [
        "ladsg-jax: warning: train breast_cancer: 2 of 2 runs diverged (seed 0: training loss "
        "not finite from epoch 1, seed 1: training loss not finite from epoch 1); they are "
        "left out of every mean and score"]
    assert "test accuracy diverged over 0 seeds (2 diverged, left out)" in out
    text = (tmp_path / "x" / "result.json").read_text()
    record = json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} in the result file"))
    assert record["diverged"] == 2 and record["test_accuracy"]["mean"] is None
    assert record["per_seed"]["train_loss"][0] == [None, None]
    assert record["per_seed"]["final_test_accuracy"] == [None, None]

