"""The project's benchmark: one JSON line per measurement.

Now it measures seed sweeps, the lever of DESIGN §8: for each seeds strategy (vmap,
sequential) and each number of seeds S, the wall time of a whole `Runner.fit` (S seeds, all
epochs) with a warm cache (median of `--repeats`), the first call's compile seconds, and the
ratio of S seeds to 1 seed under the same strategy.

    python experiments/bench.py                       # digits preset, S = 1, 8
    python experiments/bench.py --dataset synthetic --data-option num_features=64 \\
        --data-option num_classes=10 --data-option num_train=1437

The demo's wall time is what `ladsg-jax demo` prints at the end.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import jax

from ladsg_jax import data as datasets
from ladsg_jax.cli import parse_data_options
from ladsg_jax.compilation import count_compilations
from ladsg_jax.defenses import make_defense
from ladsg_jax.presets import preset_config
from ladsg_jax.vfl.runner import Runner, seed_keys


def timed_fit(runner: Runner, data, num_seeds: int) -> float:
    start = time.perf_counter()
    jax.block_until_ready(runner.fit(data, seed_keys(0, num_seeds)))
    return time.perf_counter() - start


def bench_seeds(config, data, seed_counts, repeats: int):
    for strategy in ("vmap", "sequential"):
        base = None
        for num_seeds in seed_counts:
            runner = Runner(config.replace(seeds=strategy))
            with count_compilations() as compiles:
                first = timed_fit(runner, data, num_seeds)
            times = [timed_fit(runner, data, num_seeds) for _ in range(repeats)]
            median = statistics.median(times)
            base = median if num_seeds == seed_counts[0] else base
            yield {"what": "seed_sweep", "dataset": data.name, "defense": config.defense.name,
                   "features": [list(x.shape[1:]) for x in data.train_x],
                   "bottom_hidden": list(config.bottom_hidden), "batch_size": config.batch_size, "backend": jax.default_backend(),
                   "device": str(jax.devices()[0].device_kind), "strategy": strategy,
                   "loop": runner.loop, "seeds": num_seeds, "epochs": config.epochs,
                   "median_s": median, "times_s": times, "first_call_s": first,
                   "compilations": compiles.count, "compile_s": compiles.seconds,
                   "ratio_vs_first_count": median / base,
                   "per_epoch_ms": 1000 * median / config.epochs}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--data-option", action="append", default=[])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--loop", default="auto")
    parser.add_argument("--bottom-hidden", type=int, nargs="+")
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--defense", default="none", help="a registered defense, defaults")
    args = parser.parse_args(argv)
    data = datasets.load(args.dataset, **parse_data_options(args.data_option))
    overrides = {"epochs": args.epochs, "loop": args.loop,
                 "defense": make_defense(args.defense)}
    if args.bottom_hidden:
        overrides["bottom_hidden"] = tuple(args.bottom_hidden)
    if args.batch_size:
        overrides["batch_size"] = args.batch_size
    config = preset_config(args.dataset, **overrides)
    for record in bench_seeds(config, data, args.seeds, args.repeats):
        print(json.dumps(record), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
