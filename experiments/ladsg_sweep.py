"""The sweep that chooses LADSG's default (issue 4's research question), one JSON line per setting.

For each data set and each LADSG setting: main-task accuracy with a top model and without,
the direct attack (both variants, no top model) and passive model completion (top model), mean
and std over seeds, beside the undefended run. Results go to a JSON file written atomically.

    python experiments/ladsg_sweep.py --seeds 5 --out experiments/results/ladsg_sweep.json
"""
from __future__ import annotations

import argparse
import json
import sys
import time

from ladsg_jax import compile_cache
from ladsg_jax.app.attack_table import AttackContexts
from ladsg_jax.attacks.suite import run_attacks
from ladsg_jax.defenses import Defense, LADSG
from ladsg_jax.errors import ConfigError
from ladsg_jax.presets import preset_config
from ladsg_jax.results import read_records, sweep_arguments, write_records

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
    # ND's clipping as a stabilizer of substitution, and the learning rate
    "la+sg cosine rho0.5 +nd": LADSG(stages=("la", "sg", "nd")),
    "la+sg decoy keep p1.0 +nd": LADSG(stages=("la", "sg", "nd"), mode="decoy"),
    "la+sg decoy per-sample keep p0.3": LADSG(mode="decoy", decoy="per_sample", prob=0.3),
    "la+sg cosine rho0.5 per-sample noise": LADSG(noise="per_sample"),
    "la+sg cosine rho0.3 per-sample noise": LADSG(rho=0.3, noise="per_sample"),
    "la+sg cosine rho0.7 per-sample noise": LADSG(rho=0.7, noise="per_sample"),
    "la+sg cosine rho0.8 per-sample noise": LADSG(rho=0.8, noise="per_sample"),
    "la+sg cosine rho0.9 per-sample noise": LADSG(rho=0.9, noise="per_sample"),
    "none, lr/5": (Defense(), {"learning_rate": "/5"}),
    "la, lr/5": (LADSG(stages=("la",)), {"learning_rate": "/5"}),
    "la+sg cosine rho0.5, lr/5": (LADSG(), {"learning_rate": "/5"}),
    "la+sg cosine rho0.3, lr/5": (LADSG(rho=0.3), {"learning_rate": "/5"}),
}


def setting_config(dataset: str, setting, **overrides):
    """The preset with the setting's defense and overrides ("/5": the preset's value over 5)."""
    defense, changes = setting if isinstance(setting, tuple) else (setting, {})
    base = preset_config(dataset)
    for field, change in changes.items():
        overrides[field] = getattr(base, field) / float(change[1:])
    return preset_config(dataset, defense=defense, **overrides)


def markdown_table(records: list[dict]) -> str:
    """One row per setting: MP (top mlp / none), the direct attacks, passive MC, per data set."""
    datasets = list(dict.fromkeys(r["dataset"] for r in records))
    by_key = {(r["dataset"], r["setting"]): r for r in records}
    mean = lambda r, k, digits=2: (("–" if r[k]["mean"] is None else f"{r[k]['mean']:.{digits}f}")
                                   if k in r else "–")
    header = "| setting | " + " | ".join(
        f"{d} MP | {d} direct / argmin / averaged | {d} passive MC" for d in datasets) + " |"
    lines = [header, "|---" * (1 + 3 * len(datasets)) + "|"]
    for setting in SETTINGS:
        cells = []
        for d in datasets:
            r = by_key.get((d, setting))
            if r is None or "not_applicable" in r:
                cells += ["not allowed" if r else "–", "", ""]
                continue
            cells += [f"{mean(r, 'mp_top_mlp', 3)} / {mean(r, 'mp_top_none', 3)}",
                      " / ".join(mean(r, k) for k in ("direct", "direct_argmin",
                                                      "direct_averaged")),
                      mean(r, "passive_mc")]
        lines.append(f"| {setting} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = sweep_arguments(argparse.ArgumentParser(description=__doc__.splitlines()[0]),
                             "experiments/results/ladsg_sweep.json", 5)
    compile_cache.add_argument(parser)
    args = parser.parse_args(argv)
    compile_cache.from_args(args)
    records = read_records(args.out)
    if args.table:
        print(markdown_table(records))
        return 0
    done = {(r["dataset"], r["setting"]) for r in records}
    contexts = AttackContexts()
    for dataset in args.datasets:
        data, settings, runner = contexts(dataset)
        for label, setting in SETTINGS.items():
            if (dataset, label) in done:
                continue
            start = time.perf_counter()
            defense = setting[0] if isinstance(setting, tuple) else setting
            if isinstance(defense, LADSG):
                try:
                    defense.candidates_for(data.num_classes)
                except ConfigError as err:
                    print(json.dumps({"dataset": dataset, "setting": label,
                                      "not_applicable": str(err)}), flush=True)
                    continue
            sum_top = run_attacks(setting_config(dataset, setting, top_model="none"),
                                  data, ["direct", "direct_argmin", "direct_averaged"],
                                  args.seeds, settings=settings, attack_runner=runner)
            with_top = run_attacks(setting_config(dataset, setting), data,
                                   ["passive_mc"], args.seeds, settings=settings,
                                   attack_runner=runner)
            record = {"dataset": dataset, "setting": label, "defense": repr(defense),
                      "seeds": args.seeds,
                      "mp_top_mlp": with_top["main_task"], "mp_top_none": sum_top["main_task"],
                      **{name: sum_top["attacks"][name]
                         for name in ("direct", "direct_argmin", "direct_averaged")},
                      "passive_mc": with_top["attacks"]["passive_mc"],
                      "seconds": time.perf_counter() - start}
            records.append(record)
            write_records(args.out, records)     # progress survives a kill
            print(json.dumps({k: (round(v["mean"], 3) if isinstance(v, dict) and v["mean"] is not None
                               else v)
                              for k, v in record.items() if k != "defense"}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
