"""Seconds per training epoch of a data set's preset (issue 6's CPU/GPU note), one JSON line.

By default the data are random arrays of the real set's shapes (CIFAR-10: 50,000 training and
10,000 test images of 32×32×3, ten classes), so it runs without the download; `--prepared`
loads the prepared data set instead (`ladsg-jax data prepare NAME`). `--defense` trains under
a registered defense at its defaults (the paper's overhead claim: LADSG against none).

A run of E epochs costs the defense's initialization (LADSG trains its teacher there), E
epochs and the evaluation. Each is timed warm (its programs compiled by a first, untimed run
of the same shape): `epoch_s` = a 2-epoch run − a 1-epoch run, the median of `--repeats`
pairs; `init_and_eval_s` = the 1-epoch run − `epoch_s`; `first_s` is the first 1-epoch run,
compilation included.

    python experiments/epoch_time.py                       # CIFAR-10 preset, ResNet-20 bottoms
    python experiments/epoch_time.py --num-train 5000      # a tenth of an epoch, for a quick look
    python experiments/epoch_time.py --defense ladsg --out experiments/results/F.jsonl
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

import jax
import numpy as np

from ladsg_jax import data as datasets
from ladsg_jax.defenses import make_defense
from ladsg_jax.models import resolve_conv_gradients
from ladsg_jax.presets import preset_config
from ladsg_jax.results import emit_json_line
from ladsg_jax.vfl.runner import Runner, seed_keys

# name -> (sample shape, classes, training samples, test samples) of the real data set
SHAPES = {"cifar10": ((32, 32, 3), 10, 50_000, 10_000),
          "cinic10": ((32, 32, 3), 10, 90_000, 90_000),
          "cifar100": ((32, 32, 3), 100, 50_000, 10_000),
          "tiny_imagenet": ((64, 64, 3), 200, 100_000, 10_000)}


def random_like(name: str, num_train: int | None, seed: int = 0) -> datasets.VFLData:
    shape, classes, train, test = SHAPES[name]
    num_train = num_train or train
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(num_train + test,) + shape).astype(np.float32)
    y = rng.integers(0, classes, num_train + test)
    return datasets.from_arrays(x[:num_train], y[:num_train], x[num_train:], y[num_train:],
                                num_classes=classes, kind="image", name=f"{name}_shaped")


def timed_epoch(runner: Runner, data, key) -> float:
    start = time.perf_counter()
    jax.block_until_ready(runner.fit(data, key).test_accuracy)
    return time.perf_counter() - start


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="cifar10", choices=sorted(SHAPES))
    parser.add_argument("--num-train", type=int, help="training samples (default: the real set's)")
    parser.add_argument("--prepared", action="store_true", help="use the prepared real data")
    parser.add_argument("--loop", default="auto", choices=("auto", "scan", "step"))
    parser.add_argument("--defense", default="none", help="a registered defense, its defaults")
    parser.add_argument("--repeats", type=int, default=1, help="warm (1, 2)-epoch run pairs")
    parser.add_argument("--out", help="append the JSON line here too")
    args = parser.parse_args(argv)
    data = (datasets.load(args.dataset) if args.prepared
            else random_like(args.dataset, args.num_train))
    config = preset_config(args.dataset, epochs=1, loop=args.loop,
                           defense=make_defense(args.defense))
    one, two = Runner(config), Runner(config.replace(epochs=2))
    first = timed_epoch(one, data, seed_keys(0, 1))
    timed_epoch(two, data, seed_keys(0, 1))                  # compiles the 2-epoch run
    ones, twos = [], []
    for repeat in range(args.repeats):
        ones.append(timed_epoch(one, data, seed_keys(1 + repeat, 1)))
        twos.append(timed_epoch(two, data, seed_keys(1 + repeat, 1)))
    epoch = statistics.median(b - a for a, b in zip(ones, twos))
    steps = data.num_train // config.batch_size
    emit_json_line({"what": "epoch_time", "dataset": data.name, "defense": args.defense,
                    "bottom": config.bottom, "batch_size": config.batch_size,
                    "num_train": data.num_train, "steps": steps,
                    "backend": jax.default_backend(),
                    "device": str(jax.devices()[0].device_kind), "loop": one.loop,
                    "conv_gradients": resolve_conv_gradients(config.conv_gradients),
                    "first_s": first, "epoch_s": epoch,
                    "init_and_eval_s": statistics.median(ones) - epoch,
                    "one_epoch_runs_s": ones, "two_epoch_runs_s": twos,
                    "step_ms": 1000 * epoch / steps, "load_average": list(os.getloadavg()),
                    "date": time.strftime("%Y-%m-%d %H:%M:%S"), "jax": jax.__version__},
                   args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
