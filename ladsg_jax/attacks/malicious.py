"""The malicious optimizer of the active model completion attack, as an optax transformation."""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax


class MaliciousSGDState(NamedTuple):
    momentum: optax.Updates
    previous: optax.Updates
    count: jax.Array


def malicious_sgd(learning_rate: float, momentum: float = 0.9, weight_decay: float = 0.0,
                  gamma: float = 1.0, min_ratio: float = 1.0,
                  max_ratio: float = 5.0) -> optax.GradientTransformation:
    """Fu et al.'s malicious local optimizer (USENIX Security 2022, §4.3, "active" attack).

    SGD with momentum and coupled weight decay, except that each element's step is scaled up:
    with the momentum buffer b_t = μ·b_{t-1} + (g_t + λ·θ_t), the update is
    -lr · b_t · clamp(1 + γ·b_t / (s_{t-1} + 1e-7), min_ratio, max_ratio), where s_{t-1} is
    the previous step's buffer value (before scaling). The first step is plain SGD. Elements
    whose gradient keeps its sign and grows get up to `max_ratio` times the honest step, so the
    passive party's bottom model learns faster and carries more of the task: what model
    completion later exploits.
    """

    def init(params):
        zeros = jax.tree.map(jnp.zeros_like, params)
        return MaliciousSGDState(momentum=zeros, previous=zeros, count=jnp.zeros((), jnp.int32))

    def update(grads, state, params=None):
        if weight_decay:
            if params is None:
                raise ValueError("malicious_sgd with weight_decay needs params in update()")
            grads = jax.tree.map(lambda g, p: g + weight_decay * p, grads, params)
        buffer = jax.tree.map(lambda b, g: momentum * b + g, state.momentum, grads)
        first = state.count == 0

        def scaled(b, prev):
            ratio = jnp.clip(1.0 + gamma * b / (prev + 1e-7), min_ratio, max_ratio)
            return -learning_rate * b * jnp.where(first, 1.0, ratio)

        updates = jax.tree.map(scaled, buffer, state.previous)
        return updates, MaliciousSGDState(momentum=buffer, previous=buffer,
                                          count=state.count + 1)

    return optax.GradientTransformation(init, update)
