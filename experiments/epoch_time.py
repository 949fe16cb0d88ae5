"""Seconds per training epoch of a data set's preset (issue 6's CPU/GPU note), one JSON line.

By default the data are random arrays of the real set's shapes (CIFAR-10: 50,000 training and
10,000 test images of 32×32×3, ten classes), so it runs without the download; `--prepared`
loads the prepared data set instead (`ladsg-jax data prepare NAME`). The first epoch includes
compilation; the second, warm, is the epoch time.

    python experiments/epoch_time.py                       # CIFAR-10 preset, ResNet-20 bottoms
    python experiments/epoch_time.py --num-train 5000      # a tenth of an epoch, for a quick look
"""
from __future__ import annotations

import argparse
import json
import time

import jax
import numpy as np

from ladsg_jax import data as datasets
from ladsg_jax.models import resolve_conv_gradients
from ladsg_jax.presets import preset_config
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
    args = parser.parse_args(argv)
    data = (datasets.load(args.dataset) if args.prepared
            else random_like(args.dataset, args.num_train))
    config = preset_config(args.dataset, epochs=1, loop=args.loop)
    runner = Runner(config)
    first = timed_epoch(runner, data, seed_keys(0, 1))
    warm = timed_epoch(runner, data, seed_keys(1, 1))
    steps = data.num_train // config.batch_size
    print(json.dumps({"what": "epoch_time", "dataset": data.name, "bottom": config.bottom,
                      "batch_size": config.batch_size, "num_train": data.num_train,
                      "steps": steps, "backend": jax.default_backend(),
                      "device": str(jax.devices()[0].device_kind), "loop": runner.loop,
                      "conv_gradients": resolve_conv_gradients(config.conv_gradients),
                      "first_epoch_s": first, "epoch_s": warm,
                      "step_ms": 1000 * warm / steps}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
