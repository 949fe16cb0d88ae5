"""The sweep that chooses LADSG's default (issue 4's research question), one JSON line per setting.

For each data set and each LADSG setting: main-task accuracy with a top model and without,
the direct attack (both variants, no top model) and passive model completion (top model), mean
and std over seeds, beside the undefended run. Results go to a JSON file written atomically.

    python experiments/ladsg_sweep.py --seeds 3 --out experiments/results/ladsg_sweep.json
"""
from __future__ import annotations

import argparse
import json
import sys
import time

from ladsg_jax.attacks.suite import AttackRunner, AttackSettings, run_attacks
from ladsg_jax.data import load
from ladsg_jax.defenses import Defense, LADSG
from ladsg_jax.errors import ConfigError
from ladsg_jax.presets import known_labels_for, preset_config
from ladsg_jax.results import write_json_atomic

SETTINGS = {
    "none": Defense(),
    "la": LADSG(stages=("la",)),
    "sg cosine rho0.5": LADSG(stages=("sg",)),
    "la+sg cosine rho0.3": LADSG(rho=0.3),
    "la+sg cosine rho0.5 (default)": LADSG(),
    "la+sg cosine rho0.7": LADSG(rho=0.7),
    "la+sg cosine rho0.5 mix0.5": LADSG(mix=0.5),
    "la+sg decoy keep p0.3": LADSG(mode="decoy", prob=0.3),
    "la+sg decoy keep p1.0": LADSG(mode="decoy"),
    "la+sg decoy own p0.3": LADSG(mode="decoy", norm="own", prob=0.3),
    "la+sg flsg thr0.5": LADSG(mode="flsg"),
    "la eps0.5": LADSG(stages=("la",), epsilon=0.5),
}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["digits", "breast_cancer"])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--out", default="experiments/results/ladsg_sweep.json")
    args = parser.parse_args(argv)
    records = []
    for dataset in args.datasets:
        data = load(dataset)
        settings = AttackSettings(known_labels=known_labels_for(dataset, data.num_classes))
        runner = AttackRunner(preset_config(dataset), data, settings)
        for label, defense in SETTINGS.items():
            start = time.perf_counter()
            if isinstance(defense, LADSG):
                try:
                    defense.candidates_for(data.num_classes)
                except ConfigError as err:
                    print(json.dumps({"dataset": dataset, "setting": label,
                                      "not_applicable": str(err)}), flush=True)
                    continue
            sum_top = run_attacks(preset_config(dataset, top_model="none", defense=defense),
                                  data, ["direct", "direct_argmin"], args.seeds,
                                  settings=settings, attack_runner=runner)
            with_top = run_attacks(preset_config(dataset, defense=defense), data,
                                   ["passive_mc"], args.seeds, settings=settings,
                                   attack_runner=runner)
            record = {"dataset": dataset, "setting": label, "defense": repr(defense),
                      "seeds": args.seeds,
                      "mp_top_mlp": with_top["main_task"], "mp_top_none": sum_top["main_task"],
                      **{name: sum_top["attacks"][name] for name in ("direct", "direct_argmin")},
                      "passive_mc": with_top["attacks"]["passive_mc"],
                      "seconds": time.perf_counter() - start}
            records.append(record)
            write_json_atomic(args.out, {"records": records})     # progress survives a kill
            print(json.dumps({k: (round(v["mean"], 3) if isinstance(v, dict) else v)
                              for k, v in record.items() if k != "defense"}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
