"""Compiled programs that runs of different configurations can share: the model's
initialization does not depend on the defense (nor on the learning rate, an argument), so every
defense's runs on one model use one compiled `init_model` (the trade-off experiment compiles it
once, not once per defense). Programs take raw PRNG key data, sliced and tiled on the host, so
that nothing is compiled per number of seeds or grid points."""
from __future__ import annotations

import functools
from typing import Callable

import jax
import numpy as np

from ladsg_jax.config import TrainConfig
from ladsg_jax.defenses.base import Defense
from ladsg_jax.vfl.train import make_trainer


def first_key(keys: jax.Array) -> jax.Array:
    """`keys[0]`, taken on the host (no program compiled per number of keys)."""
    return jax.random.wrap_key_data(np.asarray(jax.random.key_data(keys))[0],
                                    impl=str(jax.random.key_impl(keys)))


def with_key(fn: Callable, impl: str) -> Callable:
    """`fn(key, ...)` taking the key's raw data instead (wrapped inside the trace)."""
    return lambda key_data, *args: fn(jax.random.wrap_key_data(key_data, impl=impl), *args)


def model_config(config: TrainConfig) -> TrainConfig:
    """`config` less what the model's initialization does not read (the defense, the epochs,
    the wire record; the learning rate is an argument): the key of `shared_model_init`."""
    return config.replace(defense=Defense(), epochs=1, record_wire="none",
                          record_embeddings=False, learning_rate=1.0)


@functools.lru_cache(maxsize=16)
def traced_model_init(config: TrainConfig) -> Callable:
    """`init_model(key, data, learning_rate)` of `model_config(config)` under `jax.jit`: one
    object, so that counting its parameters (`jax.eval_shape`) and compiling it inside
    `shared_model_init` trace the model once."""
    return jax.jit(make_trainer(config).init_model)


@functools.lru_cache(maxsize=16)
def shared_model_init(config: TrainConfig, vmapped: bool, impl: str) -> Callable:
    """The jitted `init_model` of `model_config(config)`, one per configuration, so that runs
    of every defense (and every learning rate) with the same model share one compiled
    initialization (a bounded memo of compiled programs, as JAX's own caches; nothing in it
    changes a result)."""
    init_model = with_key(traced_model_init(config), impl)
    return jax.jit(jax.vmap(init_model, in_axes=(0, None, 0)) if vmapped else init_model)
