"""`ladsg-jax table` over real `attack` and `sweep` results, the sweep's default attacks and
its plot: rows per run, point and setting, the strongest attack beside the raw floor, both DCS
computed by hand, diverged seeds marked, and each bad input one line, exit 2."""
from __future__ import annotations

import csv
import io
import json
import math

import pytest

from ladsg_jax.attacks.registry import attack_groups
from ladsg_jax.app.cli import main
from ladsg_jax.errors import ConfigError
from ladsg_jax.app.gather import csv_text, gather, markdown, plot

SMALL = ["--dataset", "synthetic", "--data-option", "num_train=128", "--data-option",
         "num_test=64", "--seeds", "2", "--epochs", "2", "--no-progress", "--mc-steps", "10",
         "--mc-restarts", "1", "--mc-batch-size", "8", "--known-labels", "8"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("runs")
    common = [*SMALL, "--runs-dir", str(folder)]
    assert main(["attack", "--attack", "direct_argmin", "raw_mc", "--name", "base",
                 *common]) == 0
    assert main(["sweep", "--defense", "laplace", "--grid", "scale=0.001,0.5", "--name",
                 "lap", "--plot", str(folder / "sweep.png"), *common]) == 0
    return folder


def read(folder, name):
    return json.loads((folder / name / "result.json").read_text())


def test_a_sweep_scores_the_demo_attacks_of_its_setting_by_default(runs):
    sweep = read(runs, "lap")
    expected = set(attack_groups(2)["mlp"])          # synthetic's preset has the top model
    assert {"passive_mc", "raw_mc", "norm_scoring"} <= expected
    for point in sweep["grid"]:
        assert set(point["attacks"]) == expected
        assert {a["setting"] for a in point["attacks"].values()} == {"top_mlp"}
    assert (runs / "sweep.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_attack_none_skips_and_runs_alone(tmp_path, capsys):
    assert main(["sweep", "--defense", "laplace", "--grid", "scale=0.1", "--attack", "none",
                 "--runs-dir", str(tmp_path), "--name", "s", *SMALL]) == 0
    assert read(tmp_path, "s")["grid"][0]["attacks"] == {}
    assert main(["sweep", "--defense", "laplace", "--grid", "scale=0.1", "--attack", "none",
                 "direct", "--runs-dir", str(tmp_path), *SMALL]) == 2
    assert "attack: none runs alone" in capsys.readouterr().err


def test_rows_rank_by_the_strongest_attack_with_both_dcs(runs):
    rows = gather([str(runs)])
    key = {(r["run"], r["setting"], r["defense"]): r for r in rows}
    assert set(key) == {("base", "top_none", "none"), ("base", "top_mlp", "none"),
                        ("lap", "top_mlp", "laplace scale=0.001"),
                        ("lap", "top_mlp", "laplace scale=0.5")}
    base = read(runs, "base")
    direct = key["base", "top_none", "none"]
    # the only VFL attack of the sum-top run; the raw floor is never a candidate
    assert direct["strongest"]["from"].startswith("direct_argmin")
    assert direct["strongest"]["mean"] >= base["attacks"]["direct_argmin"]["mean"]
    # the raw floor trains no VFL run: the run's one number stands in both of its settings
    raw = base["attacks"]["raw_mc"]["recovery"]
    assert direct["floor"] == {**raw, "metric": "recovery", "from": "raw_mc"}
    assert "raw_mc" not in direct["attacks"]
    assert key["base", "top_mlp", "none"]["strongest"] is None
    ap, mp = direct["strongest"]["mean"], direct["mp"]["mean"]
    assert direct["dcs"] == pytest.approx(1 / (1 + math.sqrt(0.5 * ap ** 2)))  # MP* = its own
    chance = base["chance"]["top1"]
    assert direct["dcs_chance"] == pytest.approx(1 / (1 + math.sqrt(0.5 * max(ap - chance, 0)
                                                                    ** 2)))
    assert mp == base["main_task_by_setting"]["top_none"]["mean"]
    for scale in ("0.001", "0.5"):
        row = key["lap", "top_mlp", f"laplace scale={scale}"]
        floors = {n: row["attacks"][n]["recovery"]["mean"] for n in ("raw_mc",
                                                                     "raw_classifier")}
        assert row["floor"]["mean"] == max(floors.values())          # the better baseline
        assert row["floor"]["from"] == max(floors, key=floors.get)
        # training-label recovery of every attack that reads the run (no leak AUC has one)
        ranked = {n: a["recovery"]["mean"] for n, a in row["attacks"].items()
                  if n not in floors and a["metric"] != "auc"}
        assert all("recovery" not in a for a in row["attacks"].values() if a["metric"] == "auc")
        assert row["strongest"]["mean"] == max(ranked.values())
        d_mp = max(key["base", "top_mlp", "none"]["mp"]["mean"] - row["mp"]["mean"], 0)
        expected = 1 / (1 + math.sqrt(0.5 * row["strongest"]["mean"] ** 2 + 0.5 * d_mp ** 2))
        assert row["dcs"] == pytest.approx(expected)


def test_markdown_csv_and_diverged_seeds(runs, tmp_path):
    sweep = read(runs, "lap")
    sweep["grid"][1]["diverged"]["honest top_mlp"] = [None, "loss not finite"]
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "result.json").write_text(json.dumps(sweep))
    rows = gather([str(runs / "base" / "result.json"), str(tmp_path)])
    lines = markdown(rows).splitlines()
    assert len(lines) == 2 + len(rows) and lines[0].startswith("| run | dataset | defense |")
    assert sum("(1 diverged)" in line for line in lines) == 1
    table = list(csv.DictReader(io.StringIO(csv_text(rows))))
    assert [r["diverged"] for r in table].count("1") == 1
    for parsed, row in zip(table, rows):
        assert float(parsed["mp_mean"]) == row["mp"]["mean"]
        assert parsed["strongest"] == (row["strongest"] or {}).get("from", "")


def test_table_command_writes_and_plots(runs, tmp_path, capsys):
    out = tmp_path / "t"
    assert main(["table", str(runs), "--csv", f"{out}.csv", "--markdown", f"{out}.md",
                 "--plot", f"{out}.png"]) == 0
    printed = capsys.readouterr().out
    assert open(f"{out}.md").read() in printed
    assert open(f"{out}.png", "rb").read()[:4] == b"\x89PNG"
    assert len(open(f"{out}.csv").read().splitlines()) == 5


def test_plot_needs_a_scored_row(runs, tmp_path):
    rows = [r for r in gather([str(runs)]) if r["strongest"] is None]
    with pytest.raises(ConfigError, match="plot: no row has both"):
        plot(rows, str(tmp_path / "p.png"))


@pytest.mark.parametrize("content, message", [
    (None, "table: "),                                           # no such path
    ({"schema": 1, "grid": []}, "records of schema 1"),
    ({"schema": 2, "what": "else"}, "not a result of train, attack or sweep"),
    ("[1]", "not a result file: expected a JSON object"),
])
def test_bad_inputs_are_one_line(tmp_path, capsys, content, message):
    path = tmp_path / "r.json"
    if content is not None:
        path.write_text(content if isinstance(content, str) else json.dumps(content))
    assert main(["table", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["table", str(empty)]) == 2
    assert "no result.json below this folder" in capsys.readouterr().err


def test_the_floor_is_the_better_baseline_that_reads_no_vfl_run():
    from ladsg_jax.app.ranking import floor

    recovered = lambda mean: {"mean": mean, "std": 0.0, "n": 3}
    # completion scores F1 on the test split; the floor compares training-label recovery
    attacks = {"raw_mc": {"metric": "f1", "mean": 0.9, "recovery": recovered(0.56)},
               "raw_classifier": {"metric": "f1", "mean": 0.6, "recovery": recovered(0.71)},
               "combined_classifier": {"metric": "top1", "mean": 0.9, "std": 0.0},
               "mine": {"metric": "top1", "mean": 0.99}}
    assert floor(attacks) == {"mean": 0.71, "std": 0.0, "n": 3, "metric": "recovery",
                              "from": "raw_classifier"}
    attacks["raw_classifier"]["recovery"] = recovered(None)
    assert floor(attacks)["from"] == "raw_mc"
    assert floor({"combined_classifier": {"metric": "top1", "mean": 0.9}}) is None


def test_the_strongest_compares_label_recovery_not_each_attacks_own_metric():
    from ladsg_jax.app.ranking import excess, floor, strongest

    recovered = lambda mean: {"mean": mean, "std": 0.01, "n": 3}
    attacks = {"passive_mc": {"metric": "f1", "mean": 0.97, "recovery": recovered(0.80)},
               "combined_classifier": {"metric": "top1", "mean": 0.90, "std": 0.0,
                                       "recovery": recovered(0.90)},
               "norm_scoring": {"metric": "auc", "mean": 0.99},
               "direct": {"metric": "top1", "mean": 0.3, "reading": "first/miss",
                          "readings": {"first/miss": recovered(0.3),
                                       "min/argmin": recovered(0.95)}},
               "direct_strongest": {"metric": "top1", "mean": 0.95, "from": "direct:min/argmin"},
               "raw_classifier": {"metric": "f1", "mean": 0.99, "recovery": recovered(0.85)}}
    best = strongest(attacks)
    assert best["from"] == "direct:min/argmin" and best["mean"] == 0.95
    del attacks["direct"]
    best = strongest(attacks)       # F1 0.97 and AUC 0.99 are not recovery; the floor is no rival
    assert best["from"] == "combined_classifier" and best["mean"] == 0.90
    assert excess(best, floor(attacks)) == pytest.approx(0.05)
    assert excess(None, floor(attacks)) is None
