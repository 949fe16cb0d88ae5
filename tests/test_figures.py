"""`experiments/figures.py`: every experiment at a tiny size writes complete JSON, CSV, a
Markdown table and a PNG, and a rerun resumes instead of repeating finished records."""
import csv
import importlib.util
import json
import os

import pytest
from PIL import Image

from ladsg_jax.errors import ConfigError

PATH = os.path.join(os.path.dirname(__file__), "..", "experiments", "figures.py")
TINY = {"datasets": ["breast_cancer"], "seeds": 2, "epochs": 1, "repeats": 1, "samples": 60,
        "attacks": ["direct_argmin"],
        "settings": {"none": ["none", {}], "ladsg": ["ladsg", {}]},
        "knobs": {"laplace": [0.001, 0.01], "sign_sgd": [None], "marvell": [4.0]},
        "defenses": ["none", "laplace"], "stage_sets": [[], ["sg"]]}


@pytest.fixture(scope="module")
def figures():
    spec = importlib.util.spec_from_file_location("figures", PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def outputs(out, name):
    with open(os.path.join(out, "results.json")) as f:
        records = json.load(f)["records"]
    with open(os.path.join(out, "results.csv")) as f:
        rows = list(csv.DictReader(f))
    with Image.open(os.path.join(out, f"{name}.png")) as image:
        size = image.size
    return records, rows, size


@pytest.mark.parametrize("name, count", [("effectiveness", 2), ("tradeoff", 5), ("cost", 2),
                                         ("ablation", 2), ("tsne", 2)])
def test_each_experiment_writes_its_results_table_and_figure(figures, tmp_path, name, count):
    out = str(tmp_path / name)
    markdown = figures.RUNNERS[name](TINY, out, progress=False)
    records, rows, size = outputs(out, name)
    assert len(records) == count and size[0] > 300 and size[1] > 200
    assert rows and open(os.path.join(out, "results.md")).read() == markdown
    assert not os.path.exists(os.path.join(out, "checkpoints", "breast_cancer", "none"))
    if name == "cost":
        assert {r["defense"] for r in rows} == {"none", "laplace"}
        assert all(float(r["ms_per_epoch_median"]) > 0 for r in rows)
        return
    if name == "tsne":
        for r in records:
            assert len(r["tsne"]) == 60 and -1 <= r["silhouette"]["mean"] <= 1
        return
    scored = [r for r in records if "skipped" not in r]
    for r in scored:                                   # mean ± std over the 2 seeds, and DCS
        attack = r["attacks"]["direct_argmin"]
        assert len(attack["per_seed"]) == 2 and 0 <= attack["mean"] <= 1
    assert {row["measure"] for row in rows} == {"main_task_top_none", "direct_argmin",
                                                "direct_strongest"}
    assert all(0 <= float(row["dcs"]) <= 1 for row in rows)
    undefended = next(r for r in scored if r["setting"] == "none")
    assert undefended["attacks"]["direct_argmin"]["mean"] == 1.0   # no defense: exact labels
    if name == "tradeoff":            # Marvell fits breast_cancer; the skipped list is empty
        assert {r["setting"] for r in scored} >= {"laplace scale=0.01", "sign_sgd",
                                                  "marvell power=4"}
        strong = next(r for r in scored if r["setting"] == "laplace scale=0.01")
        assert strong["attacks"]["direct_argmin"]["mean"] < 0.9


def test_a_rerun_resumes_and_runs_only_the_missing_records(figures, tmp_path):
    out = str(tmp_path / "effectiveness")
    config = {**TINY, "settings": {"none": ["none", {}], "sg": ["ladsg", {"stages": ["sg"]}]}}
    figures.effectiveness(config, out, progress=False)
    path = os.path.join(out, "results.json")
    with open(path) as f:
        written = json.load(f)
    first = written["records"]
    with open(path, "w") as f:                        # as if killed before the second row
        json.dump({**written, "records": first[:1]}, f)
    figures.effectiveness(config, out, progress=False)
    with open(path) as f:
        again = json.load(f)["records"]
    assert again[0] == first[0]                        # the finished record was kept as it was
    assert [r["setting"] for r in again] == ["none", "sg"]
    assert again[1]["attacks"]["direct_argmin"]["per_seed"] == \
        first[1]["attacks"]["direct_argmin"]["per_seed"]


def test_unknown_experiment_or_size_names_the_field(figures):
    with pytest.raises(ConfigError, match="experiment: unknown value 'figure9'"):
        figures.load_config("figure9", "smoke")
    with pytest.raises(ConfigError, match="size: unknown value 'huge'; allowed: paper, smoke"):
        figures.load_config("cost", "huge")
    for name in figures.EXPERIMENTS:                   # every shipped config has both sizes
        assert figures.load_config(name, "smoke") and figures.load_config(name, "paper")


def test_a_misspelt_name_in_a_config_stops_the_run_before_anything_trains(figures, tmp_path,
                                                                          capsys):
    config = tmp_path / "tradeoff.json"
    config.write_text(json.dumps({"smoke": {**{k: TINY[k] for k in figures.KEYS["tradeoff"]},
                                            "knobs": {"laplace": [0.001], "lapalce": [0.01]}}}))
    out = tmp_path / "out"
    assert figures.main(["tradeoff", "--config", str(config), "--out", str(out),
                         "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "tradeoff.json smoke: knobs: unknown value 'lapalce'" in err and "laplace" in err
    assert not out.exists()                                  # nothing trained, nothing written


@pytest.mark.parametrize("change, message", [
    ({"attacks": ["direct_argmin", "pasive_mc"]}, "attacks: unknown value 'pasive_mc'"),
    ({"datasets": ["digit"]}, "datasets: unknown value 'digit'"),
    ({"settings": {"x": ["ladsg", {"rho": 2.0}]}},
     r"settings.x: defense.ladsg.rho: must be in \[-1, 1\]"),
    ({"settings": {"x": ["ladsg", {"rhoo": 0.3}]}}, "settings.x"),
    ({"settings": {"x": "ladsg"}}, r"settings.x: expected \[DEFENSE, \{OPTIONS\}\]"),
    ({"seeds": 0}, "seeds: expected a positive integer"),
    ({"epochs": "ten"}, "epochs: expected a positive integer or null"),
    ({"seed": 3}, "key: unknown value 'seed'"),
])
def test_each_kind_of_config_mistake_names_its_field(figures, change, message):
    cfg = {**{k: TINY[k] for k in figures.KEYS["effectiveness"]}, **change}
    with pytest.raises(ConfigError, match=f"^mine smoke: {message}"):
        figures.check_config("effectiveness", cfg, "mine smoke")


def test_missing_keys_and_unknown_stages_are_named(figures):
    cfg = {k: TINY[k] for k in figures.KEYS["ablation"] if k != "attacks"}
    with pytest.raises(ConfigError, match="missing attacks"):
        figures.check_config("ablation", cfg, "a")
    with pytest.raises(ConfigError, match="stage_sets: unknown value 'ls'"):
        figures.check_config("ablation", {**cfg, "attacks": [], "stage_sets": [["ls"]]}, "a")
    figures.check_config("ablation", {**cfg, "attacks": []}, "a")          # the tiny one is good
