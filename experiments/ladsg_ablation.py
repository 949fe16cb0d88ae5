"""LADSG's ablation (issue 4): every stage alone, each pair and all three, against every attack.

For each data set and each stage set, the demo's three runs (top model mlp, top model none,
party 0 on the malicious optimizer) over `--seeds` seeds; every attack of the demo scored on
them, with the relative reduction against no defense and the excess over the attacker's
raw-feature floor (DESIGN §6), and ND's flag rates. One JSON file, rewritten atomically after
each setting; a rerun skips the settings already in it (so a killed run resumes), and
`--table` prints the Markdown tables from the file.

    python experiments/ladsg_ablation.py --seeds 5 --out experiments/results/ladsg_ablation.json
    python experiments/ladsg_ablation.py --table --out experiments/results/ladsg_ablation.json
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np
from tqdm.auto import tqdm

from ladsg_jax import metrics
from ladsg_jax.attacks.registry import ATTACKS
from ladsg_jax.attacks.suite import AttackRunner, AttackSettings, run_attacks
from ladsg_jax.cli import DEMO_ATTACKS, DEMO_COLUMNS
from ladsg_jax.data import load
from ladsg_jax.defenses import Defense, LADSG
from ladsg_jax.presets import known_labels_for, preset_config
from ladsg_jax.results import read_records, sweep_arguments, write_json_atomic

STAGE_SETS = (("la",), ("sg",), ("nd",), ("la", "sg"), ("la", "nd"), ("sg", "nd"),
              ("la", "sg", "nd"))
# attacks scored by leak AUC have no raw-feature floor; their chance is 0.5
AUC_ATTACKS = ("norm_scoring", "direction_scoring")


def setting_name(stages: tuple) -> str:
    return "+".join(stages) if stages else "none"


def run_setting(dataset: str, data, stages: tuple, seeds: int, runner: AttackRunner,
                settings: AttackSettings) -> dict:
    defense = LADSG(stages=stages) if stages else Defense()
    record = {"dataset": dataset, "setting": setting_name(stages), "defense": repr(defense),
              "seeds": seeds, "attacks": {}, "main_task": {}}
    for group, names in DEMO_ATTACKS.items():
        names = [n for n in names if not (ATTACKS[n].binary_only and data.num_classes != 2)]
        config = preset_config(dataset, top_model="none" if group == "none" else "mlp",
                               defense=defense)
        report = run_attacks(config, data, names, seeds, settings=settings,
                             attack_runner=runner)
        key = "main_task_malicious" if group == "malicious" else "main_task"
        record["main_task"][f"top_{config.top_model}" if group != "malicious" else
                            "malicious"] = report.get(key, report["main_task"])
        record["attacks"].update(report["attacks"])
        if report.get("defense_metrics"):
            record.setdefault("nd", {})[group] = report["defense_metrics"]
    return record


def add_comparisons(records: list[dict]) -> None:
    """Reduction against the undefended setting and excess over the raw-feature floor."""
    for record in records:
        base = next(r for r in records
                    if r["dataset"] == record["dataset"] and r["setting"] == "none")
        floor = record["attacks"]["raw_mc"]["mean"]
        for name, attack in record["attacks"].items():
            before = base["attacks"][name]["mean"]
            attack["reduction"] = metrics.reduction(before, attack["mean"]) if before else None
            attack["excess"] = (None if name in AUC_ATTACKS or name == "raw_mc"
                                else metrics.excess(attack["mean"], floor))


def markdown_tables(records: list[dict]) -> str:
    out = []
    for dataset in dict.fromkeys(r["dataset"] for r in records):
        order = [setting_name(s) for s in ((),) + STAGE_SETS]
        rows = sorted((r for r in records if r["dataset"] == dataset),
                      key=lambda r: order.index(r["setting"]))
        names = [n for n, _ in DEMO_COLUMNS if n in rows[0]["attacks"]]
        labels = dict(DEMO_COLUMNS)
        out.append(f"### {dataset} ({rows[0]['seeds']} seeds; mean ± std, then reduction vs "
                   "none / excess over raw)\n")
        out.append("| setting | MP top mlp | MP top none | " +
                   " | ".join(labels[n] for n in names) + " |")
        out.append("|---" * (3 + len(names)) + "|")
        for r in rows:
            cells = []
            for n in names:
                a = r["attacks"][n]
                cell = f"{a['mean']:.2f}±{a['std']:.2f}"
                if r["setting"] != "none" and a.get("reduction") is not None:
                    cell += f"<br>{100 * a['reduction']:+.0f}%"
                if a.get("excess") is not None:
                    cell += f" / {a['excess']:+.2f}"
                cells.append(cell)
            mp = r["main_task"]
            out.append(f"| {r['setting']} | {mp['top_mlp']['mean']:.3f}±{mp['top_mlp']['std']:.3f}"
                       f" | {mp['top_none']['mean']:.3f}±{mp['top_none']['std']:.3f} | "
                       + " | ".join(cells) + " |")
        out.append("")
    return "\n".join(out)


def main(argv=None) -> int:
    parser = sweep_arguments(argparse.ArgumentParser(description=__doc__.splitlines()[0]),
                             "experiments/results/ladsg_ablation.json", 5)
    args = parser.parse_args(argv)
    records = read_records(args.out)
    if not args.table:
        todo = [(d, s) for d in args.datasets for s in ((),) + STAGE_SETS
                if not any(r["dataset"] == d and r["setting"] == setting_name(s)
                           for r in records)]
        bar = tqdm(todo, desc="ablation", unit="setting")
        loaded = {}
        for dataset, stages in bar:
            bar.set_postfix(dataset=dataset, setting=setting_name(stages))
            if dataset not in loaded:
                data = load(dataset)
                settings = AttackSettings(known_labels=known_labels_for(dataset,
                                                                        data.num_classes))
                loaded[dataset] = (data, settings,
                                   AttackRunner(preset_config(dataset), data, settings))
            data, settings, runner = loaded[dataset]
            start = time.perf_counter()
            record = run_setting(dataset, data, stages, args.seeds, runner, settings)
            record["seconds"] = time.perf_counter() - start
            records.append(record)
            write_json_atomic(args.out, {"records": records})      # progress survives a kill
        add_comparisons(records)
        write_json_atomic(args.out, {"records": records})
    else:
        add_comparisons(records)
    print(markdown_tables(records))
    return 0


if __name__ == "__main__":
    sys.exit(main())
