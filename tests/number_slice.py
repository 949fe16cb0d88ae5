"""A fixed-seed slice of the demo table and of the defense table, computed through the public
API (`make_defense`, `defense_row`), so that a refactor of how defenses are computed can be
checked against the numbers the code gave before it (`tests/data/number_slice.json`).

    python tests/number_slice.py --write      # store the current code's numbers
"""
from __future__ import annotations

import json
import os
import sys

PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "number_slice.json")
SEEDS = 2
EPOCHS = 1
# the demo's rows (every attack group), on breast_cancer
DEMO = {"none": ("none", {}), "ladsg": ("ladsg", {})}
DEMO_ATTACKS = ("direct", "direct_argmin", "direct_averaged", "passive_mc", "active_mc",
                "raw_mc", "norm_scoring", "direction_scoring", "cluster_messages")
# the defense table's rows (and LADSG's other modes), main task and the direct attack
TABLE = {
    "laplace scale 0.002": ("laplace", {"scale": 0.002}),
    "gaussian_dp σ 0.25": ("gaussian_dp", {"noise_multiplier": 0.25}),
    "compression keep 0.02": ("compression", {"keep": 0.02}),
    "ppdl upload 0.05": ("ppdl", {"upload": 0.05}),
    "discrete_sgd 3 bins": ("discrete_sgd", {"bins": 3}),
    "sign_sgd": ("sign_sgd", {}),
    "max_norm": ("max_norm", {}),
    "marvell": ("marvell", {}),
    "kdk ε 0.3": ("kdk", {"epsilon": 0.3}),
    "flsg threshold 0": ("flsg", {"threshold": 0.0}),
    "cae": ("cae", {"steps": 200}),
    "dcae": ("dcae", {"steps": 200}),
    "dcor α 1": ("dcor", {"weight": 1.0}),
    "label_dp ε 4": ("label_dp", {"epsilon": 4.0}),
    "ladsg la,sg,nd": ("ladsg", {"stages": ("la", "sg", "nd"), "warmup": 3}),
    "ladsg decoy": ("ladsg", {"mode": "decoy", "prob": 0.3}),
    "ladsg per-sample noise ρ 0.3": ("ladsg", {"noise": "per_sample", "rho": 0.3}),
    "ladsg sg flsg, batch norm, mix": ("ladsg", {"stages": ("sg",), "mode": "flsg",
                                                 "norm": "batch_mean", "mix": 0.5}),
}
TABLE_ATTACKS = ("direct_argmin",)


# the rows the test suite recomputes (all of them: `python tests/number_slice.py`)
TESTED = ("none", "ladsg", "laplace scale 0.002", "compression keep 0.02", "discrete_sgd 3 bins",
          "kdk ε 0.3", "dcae", "dcor α 1", "ladsg la,sg,nd", "ladsg decoy")


def compute(only: tuple | None = None) -> dict:
    """{label: {"main_task": {run: per-seed accuracies}, "attacks": {name: per-seed scores}}},
    for every row or those labelled in `only`."""
    from ladsg_jax.attack_table import defense_row
    from ladsg_jax.attacks.completion import MixMatchConfig
    from ladsg_jax.attacks.suite import AttackRunner, AttackSettings
    from ladsg_jax.data import load
    from ladsg_jax.defenses import make_defense
    from ladsg_jax.presets import known_labels_for, preset_config

    data = load("breast_cancer")
    settings = AttackSettings(known_labels=known_labels_for("breast_cancer", 2),
                              mixmatch=MixMatchConfig(steps=20))
    runner = AttackRunner(preset_config("breast_cancer"), data, settings)
    out = {}
    for rows, attacks in ((DEMO, DEMO_ATTACKS), (TABLE, TABLE_ATTACKS)):
        for label, (name, fields) in rows.items():
            if only is not None and label not in only:
                continue
            row = defense_row(data, make_defense(name, **dict(fields)), label, SEEDS, runner,
                              settings, attacks=attacks, epochs=EPOCHS)
            out[label] = {
                "main_task": {run: mp["per_seed"] for run, mp in row["main_task"].items()
                              if "per_seed" in mp},
                "attacks": {a: r["per_seed"] for a, r in row["attacks"].items()}}
    return out


if __name__ == "__main__":
    numbers = compute()
    if "--write" in sys.argv:
        with open(PATH, "w") as f:
            json.dump(numbers, f, indent=1, ensure_ascii=False)
    print(json.dumps(numbers, indent=1, ensure_ascii=False))
