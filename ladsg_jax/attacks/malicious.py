"""The malicious optimizer of the active model completion attack, as an optax transformation.

Two rules (`rule`):

- `"paper"` (default): the rule Fu et al. (USENIX Security 2022, §4.3) state. With the momentum
  buffer b_t = μ·b_{t-1} + (g_t + λ·θ_t), the update is
  −lr_t · b_t · clamp(1 + γ·b_t / (s_{t-1} + 1e-7), min_ratio, max_ratio), where s_{t-1} is the
  previous step's buffer value before scaling. The first step is plain SGD.
- `"fu_torch17"`: what their released `MaliciousSGD` (my_optimizers.py) computes under PyTorch
  1.7, the authors' version. After `p.grad.data = buf` the gradient aliases the momentum buffer,
  so `zero_grad()` zeroes the buffer and the next backward pass writes g_t into it; then
  `buf.mul_(μ).add_(p.grad)` adds the buffer to itself: u_t = 2μ·d_t with d_t = g_t + λ·θ_t
  and no memory of earlier steps (u_t = d_t with μ = 0, and at the first step, whose buffer is
  a fresh copy of d_0). The step is −lr_t · u_t · r_t with
  r_t = clamp(1 + γ·u_t / (s_{t-1} + 1e-7), min_ratio, max_ratio), and the *scaled* value
  s_t = u_t · r_t is kept for the next ratio (s_0 = d_0, unscaled). (Under PyTorch ≥ 2,
  `zero_grad` sets the gradient to None, the buffer keeps its memory and the in-place scaling
  compounds in it: parameters reach ~1e9 within 50 steps; no variant reproduces that.)

The learning rate may be an optax schedule of the update count (e.g. the honest parties' step
decay, `vfl.optim.learning_rate`), as Fu et al. decay the malicious optimizer with the others.
"""
from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from ladsg_jax.attacks.settings import MALICIOUS_RULES as RULES
from ladsg_jax.errors import one_of


class MaliciousSGDState(NamedTuple):
    momentum: optax.Updates
    previous: optax.Updates
    count: jax.Array


def malicious_sgd(learning_rate, momentum: float = 0.9, weight_decay: float = 0.0,
                  gamma: float = 1.0, min_ratio: float = 1.0, max_ratio: float = 5.0,
                  rule: str = "paper") -> optax.GradientTransformation:
    """Fu et al.'s malicious local optimizer (USENIX Security 2022, §4.3, the "active" attack)
    under `rule` (see the module docstring), at `learning_rate`: a number or an optax schedule.

    Elements whose gradient keeps its sign and grows get up to `max_ratio` times the honest step,
    so the passive party's bottom model learns faster and carries more of the task: what model
    completion later exploits.
    """
    one_of("malicious_rule", rule, RULES)
    rate_at = learning_rate if callable(learning_rate) else (lambda count: learning_rate)
    doubled = rule == "fu_torch17" and momentum != 0

    def init(params):
        zeros = jax.tree.map(jnp.zeros_like, params)
        return MaliciousSGDState(momentum=zeros, previous=zeros, count=jnp.zeros((), jnp.int32))

    def update(grads, state, params=None):
        if weight_decay:
            if params is None:
                raise ValueError("malicious_sgd with weight_decay needs params in update()")
            grads = jax.tree.map(lambda g, p: g + weight_decay * p, grads, params)
        first = state.count == 0
        if doubled:
            buffer = jax.tree.map(lambda g: jnp.where(first, g, 2.0 * momentum * g), grads)
        else:
            buffer = jax.tree.map(lambda b, g: momentum * b + g, state.momentum, grads)
        ratio = jax.tree.map(lambda b, prev: jnp.where(
            first, 1.0, jnp.clip(1.0 + gamma * b / (prev + 1e-7), min_ratio, max_ratio)),
            buffer, state.previous)
        rate = rate_at(state.count)
        updates = jax.tree.map(lambda b, r: -rate * b * r, buffer, ratio)
        kept = jax.tree.map(jnp.multiply, buffer, ratio) if rule == "fu_torch17" else buffer
        return updates, MaliciousSGDState(momentum=buffer, previous=kept,
                                          count=state.count + 1)

    return optax.GradientTransformation(init, update)


@dataclasses.dataclass(frozen=True)
class MaliciousOptimizer:
    """The malicious party's optimizer for a run, as `vfl.optim.make_optimizers` takes an
    override: called with the run's learning rate (the config's step decay, or a traced grid
    value under it), so party 0 follows the honest parties' schedule. A value with a stable
    `repr`, so a checkpoint folder knows which optimizer its run used."""

    momentum: float = 0.9
    weight_decay: float = 0.0
    gamma: float = 1.0
    rule: str = "paper"

    def __post_init__(self):
        one_of("malicious_rule", self.rule, RULES)

    @classmethod
    def for_config(cls, config, gamma: float = 1.0, rule: str = "paper"):
        return cls(momentum=config.momentum, weight_decay=config.weight_decay, gamma=gamma,
                   rule=rule)

    def __call__(self, learning_rate) -> optax.GradientTransformation:
        return malicious_sgd(learning_rate, momentum=self.momentum,
                             weight_decay=self.weight_decay, gamma=self.gamma, rule=self.rule)
