"""The project's benchmark (issue 8): one JSON line per measurement, on CIFAR-shaped random data.

The setting of DESIGN §8: two parties, each a 32×16×3 half of a CIFAR image, MLP bottoms
(1536 → 512 → 256 → 10) or ResNet-20 bottoms, the top model BN-ReLU-Dense 20 → 20 → 10
(`top_hidden=(20,)`), batch 128, SGD lr 0.1 with momentum 0.9, no defense unless said. Groups
(`--groups`, all but `profile` and `sweep` by default):

- `peak`: a float32 2048² matrix product (median of 10, warm): the GFLOP/s ceiling of the run.
- `step`: the jitted `step_on_indices` of `make_trainer`, the state carried from step to step
  (donated, as the Runner's step loop does), each call waited for with
  `jax.block_until_ready`: median and minimum of the warm calls, the first call's seconds and
  `compile_s` = first call − warm median (plus XLA's own backend compile seconds), FLOPs from
  XLA's `compiled.cost_analysis()["flops"]` beside a hand count (`ladsg_jax.flops`: the matrix
  products of the MLP, the forward convolutions of ResNet-20),
  achieved GFLOP/s = FLOPs / median and its fraction of `peak`, XLA's memory analysis of the
  compiled step (`temp`, `argument`, `output`, `alias`, generated code, bytes) and the process's
  peak RSS so far (`ru_maxrss`, whole process, monotone). ResNet-20 runs with XLA's own
  convolution gradients (`conv: "xla"`) and with `ladsg_jax.models.fast_conv`'s (`"fast"`, the
  CPU's default, config `conv_gradients`); the fast record carries its agreement with xla after
  one step from the same state.
- `epoch`: a whole epoch through `Runner.fit` (1 seed, 1 epoch, warm; `samples` training samples,
  i.e. samples / 128 steps, plus the evaluation of 128 test samples) under `loop="scan"` and
  `loop="step"` (for ResNet-20 each with both `conv_gradients`), and what "auto" picks
  (`resolve_strategy`, `resolve_conv_gradients`) against the best of them.
- `seeds`: `Runner.fit` of S seeds (1 epoch) under `seeds="vmap"` and `"sequential"`, the ratio
  S vs 1 seed under the same strategy, and the strategy "auto" picks against the best at the
  largest S.
- `defenses`: the MLP step with each registered defense at its default knobs (and LADSG with
  FLSG's rejection mode, `mode="flsg"`), as a ratio over no defense, all timed round-robin (one
  call of each per round: drift in the machine's speed cannot favour one); defenses that reject the
  data (`ConfigError`, e.g. Marvell needs 2 classes) get a `skipped` line.
- `profile`: XLA:CPU's per-op time of the ResNet-20 step, xla and fast, summed by op kind
  (`jax.profiler` with `--xla_cpu_enable_xprof_traceme`); the flag is set before JAX starts.
- `sweep`: the earlier seed sweep of a preset (`--dataset`; any `--dataset` selects it alone).

`--reference torch` also times the same VFL step written the way the PyTorch reference code
bases write it (`experiments/torch_reference.py`) and prints JAX/torch ratios. Every record
has `what`, the machine's 1-minute load average when it was taken (`load_1m`) and the JAX
backend. Repeated timings stop early once `--budget` seconds are spent on one case (at least
one warm call always runs), and say how many ran.

    python experiments/bench.py --reference torch --out experiments/results/bench_cpu_DATE.jsonl
    python experiments/bench.py --groups step --bottoms resnet20      # xla vs fast only
"""
from __future__ import annotations

import argparse
import glob
import gzip
import json
import os
import re
import resource
import statistics
import sys
import tempfile
import time
from collections import Counter
from typing import Callable, Iterator

import jax
import jax.numpy as jnp
import numpy as np

from ladsg_jax import data as datasets
from ladsg_jax.compilation import count_compilations
from ladsg_jax.config import TrainConfig
from ladsg_jax.defenses import DEFENSES, make_defense
from ladsg_jax.errors import ConfigError
from ladsg_jax.flops import cifar_resnet_conv_flops, vfl_mlp_step_matmul_flops
from ladsg_jax.models import CONV_BOTTOMS, resolve_conv_gradients
from ladsg_jax.vfl.runner import Runner, count_params, resolve_strategy, seed_keys
from ladsg_jax.vfl.train import make_trainer

GROUPS = ("peak", "step", "epoch", "seeds", "defenses", "profile", "sweep")
DEFAULT_GROUPS = ("peak", "step", "epoch", "seeds", "defenses")
TRACEME_FLAG = "--xla_cpu_enable_xprof_traceme=true"


# -- the setting ---------------------------------------------------------------------------

def cifar_shaped(num_train: int, num_test: int, image: tuple, num_classes: int = 10,
                 seed: int = 0) -> datasets.VFLData:
    """Random images of `image` shape (H, W, C) and labels, split by columns between 2 parties."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(num_train + num_test, *image)).astype(np.float32)
    y = rng.integers(0, num_classes, num_train + num_test)
    return datasets.from_arrays(x[:num_train], y[:num_train], x[num_train:], y[num_train:],
                                num_classes=num_classes, kind="image", name="cifar_shaped")


def bench_config(args, bottom: str, **overrides) -> TrainConfig:
    """The benchmark's config for `bottom` ('mlp' or 'resnet20')."""
    fields = dict(bottom=bottom, bottom_hidden=tuple(args.mlp_hidden), top_hidden=(20,),
                  batch_size=args.batch_size, learning_rate=0.1, momentum=0.9, epochs=1,
                  eval_batch_size=args.batch_size)
    return TrainConfig(**{**fields, **overrides})


def conv_variants(bottom: str) -> tuple:
    """The `conv_gradients` settings timed for `bottom` (None: an MLP has no convolutions)."""
    return ("xla", "fast") if bottom in CONV_BOTTOMS else (None,)


def with_conv(config: TrainConfig, conv: str | None) -> TrainConfig:
    return config if conv is None else config.replace(conv_gradients=conv)


def context() -> dict:
    """Fields every record carries."""
    return {"backend": jax.default_backend(), "device": str(jax.devices()[0].device_kind),
            "jax": jax.__version__, "load_1m": round(os.getloadavg()[0], 2)}


# -- timing helpers ------------------------------------------------------------------------

def seconds(fn: Callable, *args):
    """(seconds, result) of `fn(*args)`, waiting for every array in the result."""
    start = time.perf_counter()
    out = jax.block_until_ready(fn(*args))
    return time.perf_counter() - start, out


def repeat_timed(fn: Callable, repeats: int, budget_s: float) -> list[float]:
    """Seconds of up to `repeats` calls of `fn()` (already waited for), stopping once
    `budget_s` is spent; at least one call."""
    times = []
    while len(times) < repeats and (not times or sum(times) < budget_s):
        times.append(fn())
    return times


def summary_ms(times: list[float]) -> dict:
    return {"median_ms": 1000 * statistics.median(times), "min_ms": 1000 * min(times),
            "repeats": len(times)}


def rss_peak_mb() -> float:
    """The process's peak resident set size so far, MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def xla_stats(compiled) -> dict:
    """FLOPs and memory of a compiled program, as XLA's analyses report them."""
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    memory = compiled.memory_analysis()
    return {"xla_flops": float(cost.get("flops", float("nan"))),
            "xla_memory_bytes": {name: getattr(memory, f"{name}_size_in_bytes")
                                 for name in ("temp", "argument", "output", "alias",
                                              "generated_code")}}


# -- peak ----------------------------------------------------------------------------------

def matmul_peak(n: int = 2048, repeats: int = 10) -> dict:
    """GFLOP/s of a jitted float32 n×n matrix product (median of warm calls)."""
    a = jax.random.normal(jax.random.key(0), (n, n), jnp.float32)
    product = jax.jit(lambda a, b: a @ b)
    jax.block_until_ready(product(a, a))
    times = repeat_timed(lambda: seconds(product, a, a)[0], repeats, 30.0)
    median = statistics.median(times)
    return {"what": "matmul_peak", "n": n, **summary_ms(times),
            "gflops_per_s": 2 * n ** 3 / median / 1e9, **context()}


# -- step ----------------------------------------------------------------------------------

class StepCase:
    """A jitted training step of one config on CIFAR-shaped data, ready to time."""

    def __init__(self, config: TrainConfig, data, conv: str | None = None):
        self.config, self.data = with_conv(config, conv), jax.device_put(data)
        self.trainer = make_trainer(self.config)
        self.step = jax.jit(self.trainer.step_on_indices, donate_argnums=0)   # as the Runner
        self.init = jax.jit(self.trainer.init)
        self.state = self.init(jax.random.key(0), self.data)
        perm = np.random.default_rng(1).permutation(data.num_train)
        batches = data.num_train // config.batch_size
        self.batches = jnp.asarray(perm[: batches * config.batch_size].reshape(batches, -1))
        self.calls = 0

    def __call__(self) -> float:
        """Seconds of one step; the state carries over to the next call."""
        indices = self.batches[self.calls % self.batches.shape[0]]
        self.calls += 1
        elapsed, (self.state, _, _) = seconds(self.step, self.state, self.data, indices)
        return elapsed

    def first_step(self):
        """What the step returns from the initial state on the first batch (the compiled
        functions again, the timed state untouched)."""
        return self.step(self.init(jax.random.key(0), self.data), self.data, self.batches[0])

    def compiled(self):
        return self.step.lower(self.state, self.data, self.batches[0]).compile()


def hand_flops(config: TrainConfig, data) -> dict:
    """The hand count that goes beside XLA's FLOPs (see `ladsg_jax.flops`)."""
    if config.bottom == "mlp":
        features = [int(np.prod(x.shape[1:])) for x in data.train_x]
        return {"hand_matmul_flops": vfl_mlp_step_matmul_flops(
            config.batch_size, features, config.bottom_hidden, data.num_classes,
            config.top_hidden, data.num_classes)}
    fwd = sum(cifar_resnet_conv_flops(config.batch_size, x.shape[1:3], in_channels=x.shape[3])
              for x in data.train_x)
    return {"hand_conv_forward_flops": fwd}


def bench_step(args, bottom: str, conv: str, data, peak: float | None) -> tuple[dict, StepCase]:
    """One `step` record (see the module docstring), and the case it timed."""
    config = bench_config(args, bottom)
    case = StepCase(config, data, conv)
    with count_compilations() as compiles:
        first = case()
    times = repeat_timed(case, args.repeats, args.budget)
    median = statistics.median(times)
    stats = xla_stats(case.compiled())
    record = {"what": "step", "bottom": bottom, "conv": conv, "batch_size": config.batch_size,
              "features": [list(x.shape[1:]) for x in data.train_x], **summary_ms(times),
              "first_call_s": first, "compile_s": first - median,
              "backend_compile_s": compiles.seconds, **stats, **hand_flops(config, data),
              "gflops_per_s": stats["xla_flops"] / median / 1e9,
              "rss_peak_mb": rss_peak_mb(), **context()}
    if peak:
        record["fraction_of_matmul_peak"] = record["gflops_per_s"] / peak
    return record, case


def agreement(xla: StepCase, fast: StepCase) -> dict:
    """Max |difference| between XLA's and fast_conv's gradients after one step from the same
    state: loss, parameters, BatchNorm statistics and the message the passive party received."""
    (p_state, p_metrics, p_wire), (f_state, f_metrics, f_wire) = xla.first_step(), fast.first_step()

    def max_diff(a, b):
        return max(float(jnp.max(jnp.abs(x - y))) for x, y in zip(jax.tree.leaves(a),
                                                                 jax.tree.leaves(b)))
    return {"loss": abs(float(p_metrics["loss"]) - float(f_metrics["loss"])),
            "params": max_diff(p_state.params, f_state.params),
            "batch_stats": max_diff(p_state.batch_stats, f_state.batch_stats),
            "messages": max_diff(p_wire, f_wire)}


def bench_steps(args, data, peak: float | None) -> Iterator[dict]:
    for bottom in args.bottoms:
        cases = {}
        for conv in conv_variants(bottom):
            record, cases[conv] = bench_step(args, bottom, conv, data, peak)
            if conv == "fast":
                record["max_abs_diff_vs_xla"] = agreement(cases["xla"], cases["fast"])
            yield record


# -- epoch and seeds through the Runner ----------------------------------------------------

def timed_fit(runner: Runner, data, num_seeds: int) -> float:
    return seconds(lambda: runner.fit(data, seed_keys(0, num_seeds)).test_accuracy)[0]


def bench_fit(args, config: TrainConfig, conv: str | None, data, num_seeds: int) -> dict:
    """Timings of `Runner.fit` (first call, then warm calls within the budget)."""
    runner = Runner(with_conv(config, conv))
    with count_compilations() as compiles:
        first = timed_fit(runner, data, num_seeds)
    times = repeat_timed(lambda: timed_fit(runner, data, num_seeds), args.fit_repeats,
                         args.budget)
    return {"bottom": config.bottom, "conv": conv, "loop": runner.loop, "seeds": runner.seeds,
            "num_seeds": num_seeds, "samples": data.num_train,
            "steps": data.num_train // config.batch_size, "test_samples": int(data.test_y.size),
            **summary_ms(times), "first_call_s": first, "compile_s": first - statistics.median(
                times), "backend_compile_s": compiles.seconds, "rss_peak_mb": rss_peak_mb(),
            **context()}


def auto_pick(config: TrainConfig, data, axis: int) -> tuple[str, int]:
    """What "auto" picks for `config` here: "conv/loop" (`axis` 0; the conv part only for
    convolutional bottoms) or the seeds strategy (`axis` 1); and the model's parameter count."""
    num_params = count_params(make_trainer(config).init, jax.random.key(0), data)
    picked = resolve_strategy(config.replace(loop="auto", seeds="auto"),
                              jax.default_backend(), num_params)[axis]
    if axis == 0 and config.bottom in CONV_BOTTOMS:
        picked = f"{resolve_conv_gradients(config.conv_gradients)}/{picked}"
    return picked, num_params


def auto_check(what: str, config: TrainConfig, data, medians: dict, axis: int,
               bottom: str, **fields) -> dict:
    """Whether the strategy "auto" picks (`auto_pick`) is within 10% of the best one
    measured (`medians`: strategy name -> median ms)."""
    picked, num_params = auto_pick(config, data, axis)
    best = min(medians, key=medians.get)
    ratio = medians[picked] / medians[best] if picked in medians else float("nan")
    return {"what": what, "bottom": bottom, **fields, "auto_picks": picked, "best": best,
            "medians_ms": medians, "auto_over_best": ratio, "within_10pct": ratio <= 1.10,
            "num_params": num_params, **context()}


def bench_epochs(args) -> Iterator[dict]:
    """Every (conv gradients, loop) strategy's epoch, and auto's pick against the best."""
    for bottom in args.bottoms:
        data = cifar_shaped(samples_for(args, bottom), args.batch_size, tuple(args.image))
        medians = {}
        for conv in conv_variants(bottom):
            for loop in ("scan", "step"):
                config = bench_config(args, bottom, loop=loop, seeds="sequential")
                record = {"what": "epoch", **bench_fit(args, config, conv, data, 1)}
                medians[loop if conv is None else f"{conv}/{loop}"] = record["median_ms"]
                yield record
        yield auto_check("epoch_auto", bench_config(args, bottom), data, medians, 0,
                         bottom, seeds_strategy="sequential")


def samples_for(args, bottom: str) -> int:
    return args.mlp_samples if bottom == "mlp" else args.resnet_samples


def bench_seeds(args) -> Iterator[dict]:
    for bottom in args.bottoms:
        counts = args.mlp_seed_counts if bottom == "mlp" else args.resnet_seed_counts
        samples = samples_for(args, bottom) if bottom == "mlp" else args.batch_size
        data = cifar_shaped(samples, args.batch_size, tuple(args.image))
        largest = {}
        for strategy in ("vmap", "sequential"):
            base = None
            for num_seeds in counts:
                config = bench_config(args, bottom, seeds=strategy)
                record = {"what": "seeds", **bench_fit(args, config, None, data, num_seeds)}
                base = base or record["median_ms"]
                record["ratio_vs_1"] = record["median_ms"] / base if counts[0] == 1 else None
                largest[strategy] = record["median_ms"]
                yield record
        yield auto_check("seeds_auto", bench_config(args, bottom), data, largest, 1, bottom,
                         num_seeds=counts[-1])


# -- defenses ------------------------------------------------------------------------------

def defense_cases(names=None) -> list[tuple[str, dict]]:
    """(label, make_defense arguments): the registered defenses `names` (default all) at their
    defaults, and LADSG with FLSG's rejection mode beside LADSG; "none" comes first."""
    names = ["none"] + [n for n in (names or DEFENSES) if n != "none"]
    cases = []
    for name in names:
        cases.append((name, {"name": name}))
        if name == "ladsg":
            cases.append(("ladsg[mode=flsg]", {"name": "ladsg", "mode": "flsg"}))
    return cases


def interleaved_times(cases: dict, repeats: int, budget_s: float) -> dict:
    """Seconds of each case's calls, taken round-robin (one call of every case per round, up
    to `repeats` rounds or `budget_s` per case), so that a drift in the machine's speed falls
    on every case alike and their ratios stay fair."""
    times = {label: [] for label in cases}
    for _ in range(repeats):
        for label, case in cases.items():
            times[label].append(case())
        if min(sum(t) for t in times.values()) >= budget_s:
            break
    return times


def bench_defenses(args, data) -> Iterator[dict]:
    """The MLP step's median under each defense, and its ratio over no defense (timed
    interleaved, see `interleaved_times`)."""
    cases, firsts = {}, {}
    for label, params in defense_cases(args.defenses):
        params = dict(params)
        name = params.pop("name")
        config = bench_config(args, "mlp", defense=make_defense(name, **params))
        try:
            cases[label] = StepCase(config, data)
        except ConfigError as error:
            yield {"what": "defense_step", "defense": label, "skipped": str(error), **context()}
            continue
        firsts[label] = cases[label]()
    times = interleaved_times(cases, args.repeats, args.budget)
    base = statistics.median(times["none"])
    for label, case_times in times.items():
        yield {"what": "defense_step", "defense": label, "bottom": "mlp",
               **summary_ms(case_times), "first_call_s": firsts[label],
               "ratio_vs_none": statistics.median(case_times) / base,
               "ratio_of_minima_vs_none": min(case_times) / min(times["none"]),
               "timing": "interleaved", **context()}


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


# -- torch reference -----------------------------------------------------------------------

def torch_reference():
    """The `torch_reference` module beside this script (importable however bench.py was run)."""
    here = os.path.dirname(os.path.abspath(__file__))
    if here not in sys.path:
        sys.path.insert(0, here)
    import torch_reference as module
    return module


def bench_torch(args, jax_steps: list[dict]) -> Iterator[dict]:
    """The reference PyTorch step per bottom, and JAX/torch ratios from this run's JAX steps."""
    time_torch_step = torch_reference().time_torch_step
    h, w, c = args.image
    for bottom in args.bottoms:
        result = time_torch_step(bottom, args.batch_size, args.repeats,
                                 image_shape=(h, w // 2, c), budget_s=args.budget,
                                 mlp_hidden=tuple(args.mlp_hidden))
        torch_ms = 1000 * result["median_s"]
        yield {"what": "torch_step", "bottom": bottom, "batch_size": args.batch_size,
               **summary_ms(result["times_s"]), "threads": result["threads"],
               "torch": result["torch"], "params": result["params"], **context()}
        for record in jax_steps:
            if record["bottom"] == bottom:
                yield {"what": "jax_vs_torch", "bottom": bottom, "conv": record["conv"],
                       "jax_ms": record["median_ms"], "torch_ms": torch_ms,
                       "jax_over_torch": record["median_ms"] / torch_ms, **context()}


# -- the earlier preset seed sweep ---------------------------------------------------------

def bench_sweep(args) -> Iterator[dict]:
    """Whole `Runner.fit` runs of a preset for each seeds strategy and seed count (the
    measurements in experiments/README.md's bench section)."""
    from ladsg_jax.cli import parse_data_options
    from ladsg_jax.presets import preset_config
    data = datasets.load(args.dataset, **parse_data_options(args.data_option))
    overrides = {"epochs": args.epochs, "loop": args.loop, "defense": make_defense(args.defense)}
    if args.bottom_hidden:
        overrides["bottom_hidden"] = tuple(args.bottom_hidden)
    if args.sweep_batch_size:
        overrides["batch_size"] = args.sweep_batch_size
    config = preset_config(args.dataset, **overrides)
    for strategy in ("vmap", "sequential"):
        base = None
        for num_seeds in args.seeds:
            runner = Runner(config.replace(seeds=strategy))
            with count_compilations() as compiles:
                first = timed_fit(runner, data, num_seeds)
            times = [timed_fit(runner, data, num_seeds) for _ in range(args.fit_repeats)]
            median = statistics.median(times)
            base = base or median
            yield {"what": "seed_sweep", "dataset": data.name, "defense": config.defense.name,
                   "features": [list(x.shape[1:]) for x in data.train_x],
                   "bottom_hidden": list(config.bottom_hidden), "batch_size": config.batch_size,
                   "strategy": strategy, "loop": runner.loop, "seeds": num_seeds,
                   "epochs": config.epochs, "median_s": median, "times_s": times,
                   "first_call_s": first, "compilations": compiles.count,
                   "compile_s": compiles.seconds, "ratio_vs_first_count": median / base,
                   "per_epoch_ms": 1000 * median / config.epochs, **context()}


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
    out = open(args.out, "a") if args.out else None
    try:
        for record in run(args):
            line = json.dumps(record)
            print(line, flush=True)
            if out:
                out.write(line + "\n")
                out.flush()
    finally:
        if out:
            out.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
