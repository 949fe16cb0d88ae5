"""What every part of the benchmark (`bench.py`) shares: the setting, the timing helpers and
the jitted training step as a case to time.

The setting of DESIGN §8: two parties, each a 32×16×3 half of a CIFAR image, MLP bottoms
(1536 → 512 → 256 → 10) or ResNet-20 bottoms, the top model BN-ReLU-Dense 20 → 20 → 10
(`top_hidden=(20,)`), batch 128, SGD lr 0.1 with momentum 0.9, no defense unless said
(`bench_config`), on random CIFAR-shaped data (`cifar_shaped`). Every record has `what`, the
machine's 1-minute load average when it was taken (`load_1m`) and the JAX backend
(`context`). Repeated timings stop early once `--budget` seconds are spent on one case (at
least one warm call always runs, `repeat_timed`), and say how many ran (`summary_ms`).
`StepCase` is the jitted `step_on_indices` of `make_trainer`, the state carried from step to
step (donated, as the Runner's step loop does), each call waited for with
`jax.block_until_ready`; `hand_flops` the hand count of its FLOPs (`ladsg_jax.flops`).

This module starts no JAX backend when imported (`bench.py` sets the profile group's XLA flag
after importing it).
"""
from __future__ import annotations

import os
import resource
import statistics
import time
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from ladsg_jax import data as datasets
from ladsg_jax.config import TrainConfig
from ladsg_jax.flops import cifar_resnet_conv_flops, vfl_mlp_step_matmul_flops
from ladsg_jax.models import CONV_BOTTOMS
from ladsg_jax.vfl.train import make_trainer


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


# -- the step as a case to time ----------------------------------------------------------

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
