"""Benchmark of hyperparameter grids (issue 14): a grid of a defense's knob × seeds as one
compiled program (`ladsg_jax.app.sweep.run_sweep`, what `ladsg-jax sweep` runs) against the same
runs made separately, one `Runner` per (value, seed) as a loop over `ladsg-jax train` calls
would make them (each compiles), and against one setting with one seed.

    python experiments/bench_sweep.py                       # digits, ladsg rho × 8 seeds
    python experiments/bench_sweep.py --seeds 32 --repeats 3 --out results/bench_sweep_gpu.jsonl

Each case is timed whole (compilation included: that is what a user waits for), `--repeats`
times in round-robin order, and reported as min / median / max with the compilations counted
and the machine's load average beside them. One JSON line per case.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import jax
import numpy as np

from ladsg_jax.compilation import count_compilations
from ladsg_jax.data import load
from ladsg_jax.presets import preset_config
from ladsg_jax.results import emit_json_line
from ladsg_jax.app.sweep import grid_points, point_config, run_sweep
from ladsg_jax.vfl.runner import Runner, seed_keys


def timed(fn) -> tuple[float, int]:
    """Wall seconds of `fn()` to a finished result, and the compilations it ran."""
    with count_compilations() as compiles:
        start = time.perf_counter()
        jax.block_until_ready(fn())
        elapsed = time.perf_counter() - start
    return elapsed, compiles.count


def separate_runs(config, data, points, seeds: int):
    """Every (point, seed) as its own Runner: a fresh compilation each, as separate commands."""
    results = []
    for point in points:
        for key in seed_keys(0, seeds):
            results.append(Runner(point_config(config, point)).fit(data, key[None])
                           .final_test_accuracy)
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--defense", default="ladsg")
    parser.add_argument("--field", default="rho")
    parser.add_argument("--values", default="0.1,0.3,0.5,0.7,0.9")
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--epochs", type=int, help="default: the preset's")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-separate", action="store_true",
                        help="time only the grid and one setting (e.g. 32 seeds on a GPU)")
    parser.add_argument("--out", help="append the JSON lines here too")
    args = parser.parse_args(argv)
    data = load(args.dataset)
    overrides = {"epochs": args.epochs} if args.epochs else {}
    points = grid_points(args.defense, {}, {args.field: args.values.split(",")})
    config = preset_config(args.dataset, defense=points[0].defense, **overrides)
    cases = {
        "grid": lambda: [p["main_task"]["mean"] for p in
                         run_sweep(config, data, points, args.seeds)["grid"]],
        "one_setting_one_seed": lambda: Runner(config).fit(data, seed_keys(0, 1))
        .final_test_accuracy,
    }
    if not args.skip_separate:
        cases["separate_runs"] = lambda: separate_runs(config, data, points, args.seeds)
    times = {name: [] for name in cases}
    compilations = {}
    for _ in range(args.repeats):
        for name, fn in cases.items():
            elapsed, count = timed(fn)
            times[name].append(elapsed)
            compilations[name] = count
    grid_median = statistics.median(times["grid"])
    for name, values in times.items():
        record = {"what": "sweep", "case": name, "dataset": args.dataset,
                  "defense": args.defense, "field": args.field, "values": args.values,
                  "points": len(points), "seeds": args.seeds,
                  "runs": len(points) * args.seeds if name != "one_setting_one_seed" else 1,
                  "epochs": config.epochs, "min_s": min(values),
                  "median_s": statistics.median(values), "max_s": max(values),
                  "repeats": len(values), "compilations": compilations[name],
                  "ratio_to_grid": statistics.median(values) / grid_median,
                  "backend": jax.default_backend(), "device": str(jax.devices()[0]),
                  "load_average": list(os.getloadavg()), "cpus": os.cpu_count(),
                  "date": time.strftime("%Y-%m-%d %H:%M:%S"), "jax": jax.__version__,
                  "numpy": np.__version__}
        emit_json_line(record, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
