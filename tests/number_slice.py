"""A fixed-seed slice of the demo table and of the defense table, computed through the public
API (`make_defense`, `defense_row`), so that a refactor of how defenses are computed can be
checked against the numbers the code gave before it (`tests/data/number_slice.json`).

A refactor guard for one machine: training is chaotic, so a float rounding that differs between
CPUs (another instruction set, another XLA:CPU code path) can flip a top-k choice and move a
run by a few samples. Write the numbers before a change and check them after it, on the same
machine; the committed test (`test_number_slice.py`) asserts only what holds on any CPU.

    python tests/number_slice.py --write        # store the current code's numbers
    python tests/number_slice.py --check        # equal to the stored ones at 1e-6 (same machine)
    python tests/number_slice.py --out F.json   # write this machine's numbers elsewhere
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
    from ladsg_jax.app.attack_table import defense_row
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


def differences(numbers: dict, stored: dict) -> list[tuple[str, str, str, float]]:
    """(row, section, name, largest absolute difference) of every value `numbers` and `stored`
    both hold, largest first."""
    import numpy as np
    out = []
    for label in sorted(set(numbers) & set(stored)):
        for section in ("main_task", "attacks"):
            for name in sorted(set(numbers[label][section]) & set(stored[label][section])):
                a = np.asarray(numbers[label][section][name], float)
                b = np.asarray(stored[label][section][name], float)
                out.append((label, section, name, float(np.max(np.abs(a - b)))))
    return sorted(out, key=lambda d: -d[3])


def main(argv: list[str]) -> int:
    import argparse
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="store as the slice of record")
    parser.add_argument("--check", action="store_true",
                        help="compare with the stored slice at 1e-6; exit 1 if any differs")
    parser.add_argument("--out", help="also write the numbers to this file")
    args = parser.parse_args(argv)
    numbers = compute()
    for path in [PATH] * args.write + [args.out] * bool(args.out):
        with open(path, "w") as f:
            json.dump(numbers, f, indent=1, ensure_ascii=False)
    if not args.check:
        print(json.dumps(numbers, indent=1, ensure_ascii=False))
        return 0
    with open(PATH) as f:
        moved = [d for d in differences(numbers, json.load(f)) if d[3] > 1e-6]
    for label, section, name, diff in moved:
        print(f"{label} {section} {name}: moved by {diff:.6f}")
    print("the slice equals the stored numbers" if not moved else f"{len(moved)} values moved")
    return 1 if moved else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
