"""The execution strategy DESIGN §8 calls for: how a config's seeds and grid points run.

`loop="scan"` runs an epoch as one jitted `lax.scan`; `loop="step"` calls a jitted step per
batch. `seeds="vmap"` runs all seeds in one vmapped program; `"sequential"` one after another.
`"auto"` picks scan + vmap on a GPU or TPU. On the CPU it picks scan, except for convolutional
bottoms differentiated by XLA's own convolution gradients (`conv_gradients="xla"`), which take
jitted steps (DESIGN §8: inside a loop XLA:CPU runs their weight gradients as a naive loop,
27.6 s against 1.14 s for two ResNet-20 steps; with `"fast"`, the CPU's default, the scan is
the faster, 0.75 s against 0.92 s, `experiments/README.md`), and vmapped seeds only for small
models: measured with `experiments/bench.py` on 2 cores, 8 seeds of the digits preset (5k
parameters) took 0.43 s vmapped against 0.66 s in sequence, while a CIFAR-shaped MLP
(1536→512→256, 1.7M parameters) took 3.79 s against 3.47 s.
"""
from __future__ import annotations

import math
from typing import Callable

import jax

from ladsg_jax.config import TrainConfig
from ladsg_jax.data.arrays import VFLData
from ladsg_jax.models import CONV_BOTTOMS, resolve_conv_gradients

# On the CPU, seeds are vmapped when one seed's model has at most this many parameters.
CPU_VMAP_MAX_PARAMS = 250_000


def resolve_strategy(config: TrainConfig, backend: str | None = None,
                     num_params: int | None = None) -> tuple[str, str]:
    """The (loop, seeds) strategy of `config`, "auto" resolved for `backend` and model size."""
    backend = backend or jax.default_backend()
    accelerator = backend != "cpu"
    if config.parallel != "none":            # the batch is split over the devices instead
        return "step", "sequential"
    loop = config.loop
    if loop == "auto":
        slow_conv = (config.bottom in CONV_BOTTOMS
                     and resolve_conv_gradients(config.conv_gradients, backend) == "xla")
        loop = "scan" if accelerator or not slow_conv else "step"
    seeds = config.seeds
    if seeds == "auto":
        small = num_params is not None and num_params <= CPU_VMAP_MAX_PARAMS
        seeds = "vmap" if accelerator or (small and loop == "scan") else "sequential"
    return loop, seeds


def resolve_grid(config: TrainConfig, seeds: str) -> str:
    """How a hyperparameter grid's points run: "vmap" or "sequential"; "auto" vmaps them with
    the seeds wherever the seeds are vmapped (GPU/TPU, small models on the CPU: DESIGN §8)."""
    if config.grid != "auto":
        return config.grid
    return seeds


def count_params(init: Callable, key: jax.Array, data: VFLData, *args) -> int:
    """Parameters of one seed's model, from shapes alone (nothing is computed): `init(key,
    data, *args)` is a trainer's `init` (hyperparameters) or `init_model` (learning rate)."""
    state = jax.eval_shape(init, key, data, *args)
    return sum(math.prod(leaf.shape) for leaf in jax.tree.leaves(state.params))
