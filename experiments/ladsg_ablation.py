"""LADSG's ablation (issue 4): every stage alone, each pair and all three, against every attack.

For each data set and each stage set, the demo's three runs (top model mlp, top model none,
party 0 on the malicious optimizer) over `--seeds` seeds; every attack of the demo scored on
them, with the relative reduction against no defense, the excess over the attacker's
raw-feature floor (DESIGN §6), DCS, and ND's flag rates (`ladsg_jax/app/attack_table.py`). One JSON
file, rewritten atomically after each setting; a rerun skips the settings already in it (so a
killed run resumes), and `--table` prints the Markdown tables from the file.

    python experiments/ladsg_ablation.py --seeds 5 --out experiments/results/ladsg_ablation.json
    python experiments/ladsg_ablation.py --table --out experiments/results/ladsg_ablation.json
"""
from __future__ import annotations

import argparse
import sys
import time

from tqdm.auto import tqdm

from ladsg_jax import compile_cache
from ladsg_jax.app.attack_table import AttackContexts, add_comparisons, defense_row
from ladsg_jax.defenses import LADSG, Defense
from ladsg_jax.results import read_records, sweep_arguments, write_records
from ladsg_jax.app.table_render import markdown_tables

STAGE_SETS = ((), ("la",), ("sg",), ("nd",), ("la", "sg"), ("la", "nd"), ("sg", "nd"),
              ("la", "sg", "nd"))


def setting_name(stages: tuple) -> str:
    return "+".join(stages) if stages else "none"


def main(argv=None) -> int:
    parser = sweep_arguments(argparse.ArgumentParser(description=__doc__.splitlines()[0]),
                             "experiments/results/ladsg_ablation.json", 5)
    compile_cache.add_argument(parser)
    args = parser.parse_args(argv)
    compile_cache.from_args(args)
    records = read_records(args.out)
    if not args.table:
        todo = [(d, s) for d in args.datasets for s in STAGE_SETS
                if not any(r["dataset"] == d and r["setting"] == setting_name(s)
                           for r in records)]
        bar = tqdm(todo, desc="ablation", unit="setting")
        contexts = AttackContexts()
        for dataset, stages in bar:
            bar.set_postfix(dataset=dataset, setting=setting_name(stages))
            data, settings, runner = contexts(dataset)
            start = time.perf_counter()
            defense = LADSG(stages=stages) if stages else Defense()
            record = defense_row(data, defense, setting_name(stages), args.seeds, runner,
                                 settings)
            record["seconds"] = time.perf_counter() - start
            records.append(record)
            write_records(args.out, records)      # progress survives a kill
    add_comparisons(records)
    if not args.table:
        write_records(args.out, records)
    print(markdown_tables(records, [setting_name(s) for s in STAGE_SETS]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
