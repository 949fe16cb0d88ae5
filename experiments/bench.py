"""The project's benchmark (issue 8): one JSON line per measurement, on CIFAR-shaped random data.

The setting of DESIGN §8: two parties, each a 32×16×3 half of a CIFAR image, MLP bottoms
(1536 → 512 → 256 → 10) or ResNet-20 bottoms, the top model BN-ReLU-Dense 20 → 20 → 10, batch
128, SGD lr 0.1 with momentum 0.9, no defense unless said. This file is the command line; the
measurements live beside it, each module's docstring saying what its records hold:

- `bench_common.py`: the setting, the timing helpers and the step as a case to time (shared);
- `bench_timing.py`: the groups `peak` (matmul GFLOP/s), `step` (the jitted training step:
  median, compile, FLOPs, memory; ResNet-20 with XLA's and fast_conv's gradients), `epoch`
  (`Runner.fit` per loop strategy, and "auto"'s pick), `seeds` (vmap vs sequential seeds) and
  `sweep` (the earlier seed sweep of a preset: `--dataset`, which selects it alone);
- `bench_defenses.py`: the group `defenses` (every defense's step over none, round-robin);
- `bench_profile.py`: the group `profile` (XLA:CPU's per-op time of the ResNet-20 step; its
  XLA flag is set here before JAX starts);
- `bench_torch.py`: `--reference torch`, the same step the PyTorch way and JAX/torch ratios.

`--groups` runs all but `profile` and `sweep` by default. Every record has `what`, the
machine's 1-minute load average when it was taken (`load_1m`) and the JAX backend. Repeated
timings stop early once `--budget` seconds are spent on one case (at least one warm call
always runs), and say how many ran.

    python experiments/bench.py --reference torch --out experiments/results/bench_cpu_DATE.jsonl
    python experiments/bench.py --groups step --bottoms resnet20      # xla vs fast only
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Iterator

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:      # the parts beside this file, however bench.py was run
    sys.path.insert(0, HERE)

from bench_common import cifar_shaped  # noqa: E402
from bench_defenses import bench_defenses  # noqa: E402
from bench_profile import TRACEME_FLAG, bench_profile  # noqa: E402
from bench_timing import (bench_epochs, bench_seeds, bench_steps, bench_sweep,  # noqa: E402
                          matmul_peak)
from bench_torch import bench_torch, torch_reference  # noqa: E402
from ladsg_jax.defenses import DEFENSES  # noqa: E402
from ladsg_jax.results import emit_json_line  # noqa: E402

GROUPS = ("peak", "step", "epoch", "seeds", "defenses", "profile", "sweep")
DEFAULT_GROUPS = ("peak", "step", "epoch", "seeds", "defenses")


# -- main ----------------------------------------------------------------------------------

def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groups", nargs="+", choices=GROUPS, default=list(DEFAULT_GROUPS))
    parser.add_argument("--reference", choices=("none", "torch"), default="none")
    parser.add_argument("--out", help="also write the JSON lines to this file")
    parser.add_argument("--bottoms", nargs="+", choices=("mlp", "resnet20"),
                        default=["mlp", "resnet20"])
    parser.add_argument("--batch-size", type=int,
                        help="default 128 (the sweep: the preset's)")
    parser.add_argument("--image", type=int, nargs=3, default=[32, 32, 3], metavar=("H", "W", "C"),
                        help="whole image; each of the 2 parties holds half of its columns")
    parser.add_argument("--mlp-hidden", type=int, nargs="+", default=[512, 256])
    parser.add_argument("--repeats", type=int, default=20, help="warm step calls, at most")
    parser.add_argument("--peak-size", type=int, default=2048, help="n of the n×n matmul")
    parser.add_argument("--defenses", nargs="+", choices=sorted(DEFENSES),
                        help="defenses of the `defenses` group (default: all registered)")
    parser.add_argument("--fit-repeats", type=int, default=3, help="warm Runner.fit calls")
    parser.add_argument("--budget", type=float, default=20.0,
                        help="seconds of warm calls per case before stopping early")
    parser.add_argument("--mlp-samples", type=int, default=1280, help="MLP epoch samples")
    parser.add_argument("--resnet-samples", type=int, default=256, help="ResNet epoch samples")
    parser.add_argument("--mlp-seed-counts", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--resnet-seed-counts", type=int, nargs="+", default=[1, 8],
                        help="(ResNet seed runs have 1 step per epoch)")
    sweep = parser.add_argument_group("sweep (the earlier preset seed sweep)")
    sweep.add_argument("--dataset", help="run the preset seed sweep of this data set only")
    sweep.add_argument("--data-option", action="append", default=[])
    sweep.add_argument("--epochs", type=int, default=30)
    sweep.add_argument("--seeds", type=int, nargs="+", default=[1, 8])
    sweep.add_argument("--loop", default="auto")
    sweep.add_argument("--bottom-hidden", type=int, nargs="+")
    sweep.add_argument("--defense", default="none", help="a registered defense, defaults")
    args = parser.parse_args(argv)
    if args.dataset:
        args.groups = ["sweep"]
    args.sweep_batch_size, args.batch_size = args.batch_size, args.batch_size or 128
    return args


def run(args) -> Iterator[dict]:
    """Every record of the chosen groups, in order."""
    groups = set(args.groups)
    if "sweep" in groups:
        yield from bench_sweep(args)
    peak = None
    if "peak" in groups:
        record = matmul_peak(args.peak_size)
        peak = record["gflops_per_s"]
        yield record
    data = cifar_shaped(max(args.mlp_samples, args.resnet_samples, args.batch_size),
                        args.batch_size, tuple(args.image))
    steps = []
    if "step" in groups:
        for record in bench_steps(args, data, peak):
            steps.append(record)
            yield record
    if args.reference == "torch":
        yield from bench_torch(args, steps)
    if "profile" in groups:
        yield from bench_profile(args, data)
    if "epoch" in groups:
        yield from bench_epochs(args)
    if "seeds" in groups:
        yield from bench_seeds(args)
    if "defenses" in groups and "mlp" in args.bottoms:
        yield from bench_defenses(args, data)


def main(argv=None) -> int:
    args = parse_args(argv)
    if "profile" in args.groups:     # read when the CPU backend starts, so before any array
        os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {TRACEME_FLAG}".strip()
    if args.reference == "torch":
        reference = torch_reference()
        try:
            reference.require_torch()
        except reference.TorchMissing as error:
            print(f"bench.py: {error}", file=sys.stderr)
            return 2
    for record in run(args):
        emit_json_line(record, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
