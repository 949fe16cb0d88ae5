"""The benchmark's timing groups (`bench.py --groups peak step epoch seeds sweep`).

- `peak`: a float32 2048² matrix product (median of 10, warm): the GFLOP/s ceiling of the run.
- `step`: the jitted `step_on_indices` of `make_trainer` (`bench_common.StepCase`): median and
  minimum of the warm calls, the first call's seconds and
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
- `sweep`: the earlier seed sweep of a preset (`--dataset`; any `--dataset` selects it alone).
"""
from __future__ import annotations

import statistics
from typing import Iterator

import jax
import jax.numpy as jnp

from bench_common import (StepCase, bench_config, cifar_shaped, context, conv_variants,
                          hand_flops, repeat_timed, rss_peak_mb, seconds, summary_ms,
                          with_conv, xla_stats)
from ladsg_jax import data as datasets
from ladsg_jax.compilation import count_compilations
from ladsg_jax.config import TrainConfig
from ladsg_jax.defenses import make_defense
from ladsg_jax.divergence import divergence
from ladsg_jax.models import CONV_BOTTOMS, resolve_conv_gradients
from ladsg_jax.vfl.runner import Runner, seed_keys
from ladsg_jax.vfl.strategy import count_params, resolve_strategy
from ladsg_jax.vfl.train import make_trainer


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


def divergence_check_ms(runner: Runner, data, num_seeds: int) -> float:
    """Median milliseconds of the host-side divergence check on a finished run's result (what
    every session, attack report and sweep adds after training)."""
    result = jax.block_until_ready(runner.fit(data, seed_keys(0, num_seeds)))
    return 1000 * statistics.median(
        repeat_timed(lambda: seconds(divergence, result, data.num_classes)[0], 5, 1.0))


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
            **summary_ms(times), "divergence_check_ms": divergence_check_ms(runner, data,
                                                                            num_seeds),
            "first_call_s": first, "compile_s": first - statistics.median(
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


# -- the earlier preset seed sweep ---------------------------------------------------------

def bench_sweep(args) -> Iterator[dict]:
    """Whole `Runner.fit` runs of a preset for each seeds strategy and seed count (the
    measurements in experiments/README.md's bench section)."""
    from ladsg_jax.data.options import parse_data_options
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
                   "per_epoch_ms": 1000 * median / config.epochs,
                   "divergence_check_ms": divergence_check_ms(runner, data, num_seeds),
                   **context()}
