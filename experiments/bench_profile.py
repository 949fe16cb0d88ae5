"""The benchmark's `profile` group (`bench.py --groups profile`): XLA:CPU's per-op time of the
ResNet-20 step, xla and fast, summed by op kind and by convolution class.

`jax.profiler` traces a few warm steps (`profile_ops`); the optimized HLO of the compiled step
tells which ops are convolutions and whether each is a forward pass, an input gradient or a
weight gradient (`conv_op_classes`). XLA:CPU records its ops in the trace only with
`TRACEME_FLAG` (`--xla_cpu_enable_xprof_traceme`), which the CPU backend reads when it starts:
`bench.py`'s `main` puts it into `XLA_FLAGS` before any array exists, so nothing here (or in
the modules `bench.py` imports) may start the backend at import time.
"""
from __future__ import annotations

import glob
import gzip
import json
import re
import tempfile
from collections import Counter
from typing import Iterator

import jax

from bench_common import StepCase, bench_config, context, conv_variants, hand_flops
from ladsg_jax.models import CONV_BOTTOMS

TRACEME_FLAG = "--xla_cpu_enable_xprof_traceme=true"


# -- profile -------------------------------------------------------------------------------

def op_kind(name: str) -> str:
    """An XLA op's kind from its profiler name: the fusion name without its number."""
    return re.sub(r"[._]\d+$", "", name)


def profile_ops(case: StepCase, steps: int = 3) -> Counter:
    """Milliseconds per step by XLA op (time summed over threads) from a profiler trace."""
    with tempfile.TemporaryDirectory() as trace_dir:
        with jax.profiler.trace(trace_dir, create_perfetto_trace=True):
            for _ in range(steps):
                case()
        path = glob.glob(f"{trace_dir}/**/*.trace.json.gz", recursive=True)[0]
        with gzip.open(path) as f:
            events = json.load(f)["traceEvents"]
    kinds = Counter()
    for event in events:
        name = event.get("name", "")
        if event.get("ph") == "X" and not name.startswith("$") and "Executor" not in name \
                and "PjRt" not in name and "Pjit" not in name:
            kinds[name] += event["dur"] / 1000 / steps
    return kinds


def computations_with_conv(hlo: str) -> set:
    """Names of the computations in optimized HLO text whose body has a convolution."""
    names, current = set(), None
    for line in hlo.splitlines():
        header = re.match(r"^(?:ENTRY )?%(\S+) ", line)
        if header and line.rstrip().endswith("{"):
            current = header.group(1)
        elif " convolution(" in line and current:
            names.add(current)
    return names


def conv_op_classes(hlo: str) -> dict:
    """XLA op name -> "forward", "input_grad" or "weight_grad" for every op of optimized HLO
    text that is or calls a convolution: weight gradients are kernel-shaped, (Ci, 3, 3, Co) or
    (3, 3, Ci, Co) (no activation of the CIFAR models is 3×3), other backward ops carry
    "transpose(" in their op_name metadata."""
    with_conv, classes = computations_with_conv(hlo), {}
    for line in hlo.splitlines():
        op = re.match(r"\s*(?:ROOT )?%(\S+) = \w+\[([\d,]*)\]", line)
        calls = re.search(r"calls=%([\w.\-]+)", line)
        if not op or not (" convolution(" in line or (calls and calls.group(1) in with_conv)):
            continue
        dims = [int(d) for d in op.group(2).split(",") if d]
        backward = "transpose(" in line
        kernel_like = len(dims) == 4 and 3 == dims[1] == dims[2] or dims[:2] == [3, 3]
        classes[op.group(1)] = ("weight_grad" if kernel_like else
                                "input_grad" if backward else "forward")
    return classes


def profile_by_class(kinds_by_op: Counter, classes: dict) -> dict:
    """Milliseconds per step: convolutions by class, transposes, and everything else."""
    totals = Counter()
    for name, ms in kinds_by_op.items():
        kind = classes.get(name) or ("transpose" if "transpose" in name else "other")
        totals[kind] += ms
    return dict(totals)


def bench_profile(args, data) -> Iterator[dict]:
    """Per-op thread time of the ResNet step, xla and fast (see `profile_ops`)."""
    for bottom in [b for b in args.bottoms if b in CONV_BOTTOMS]:
        for conv in conv_variants(bottom):
            case = StepCase(bench_config(args, bottom), data, conv)
            for _ in range(2):
                case()
            ops = profile_ops(case)
            kinds = Counter()
            for name, ms in ops.items():
                kinds[op_kind(name)] += ms
            yield {"what": "op_profile", "bottom": bottom, "conv": conv,
                   "thread_ms_per_step_by_class": profile_by_class(
                       ops, conv_op_classes(case.compiled().as_text())),
                   "thread_ms_per_step_by_kind": dict(kinds.most_common(12)),
                   "thread_ms_per_step_all_ops": sum(ops.values()),
                   "hand_conv_forward_flops": hand_flops(case.config, data)[
                       "hand_conv_forward_flops"], **context()}
