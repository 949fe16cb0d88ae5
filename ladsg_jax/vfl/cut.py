"""The cut layer: where the passive party's embedding meets the active party's model.

A `jax.custom_vjp` (DESIGN §2). Forward it is the identity on the embedding h. Backward, the
cotangent g = ∂L/∂h goes through the defense's cut policy, and the policy's result m replaces
the cotangent that flows into the passive party's bottom model. The cut also takes a
zero-valued `wire` of h's shape whose cotangent is set to the same m: `jax.grad` with respect
to the wire is exactly the message the passive party received, so attacks read the real
message rather than a recomputation.
"""
from __future__ import annotations

from functools import partial

import jax

from ladsg_jax.defenses.base import call_hook, check_returned


@partial(jax.custom_vjp, nondiff_argnums=(0,))
def cut(policy, h: jax.Array, wire: jax.Array, hp, ctx) -> jax.Array:
    """Identity on `h`; backward sends `policy.cut(hp, ∂L/∂h, ctx)` to both `h` and `wire`.

    `policy` is hashable (a defense value: its static choices); `hp` its numeric
    hyperparameters and `ctx` the arrays its cut needs (labels, a PRNG key, soft targets, ...),
    ordinary traced arguments that receive no cotangent.
    """
    del wire, hp, ctx
    return h


def _cut_fwd(policy, h, wire, hp, ctx):
    del wire
    return h, (hp, ctx)


def _cut_bwd(policy, residuals, g):
    hp, ctx = residuals
    message = checked_message(policy, g, call_hook(policy, "cut", hp, g, ctx))
    return message, message, None, None


def checked_message(policy, g: jax.Array, message) -> jax.Array:
    """`message` when it can stand for `g` (an array of g's shape and dtype); otherwise a
    `ConfigError` naming the defense, at trace time (shapes are static), in one line where
    JAX's own error would be a long traceback from inside the backward pass."""
    check_returned(policy, "cut", message, g,
                   "for a message of shape {shape} and dtype {dtype}; a cut returns what is sent "
                   "instead of g, of g's shape and dtype")
    return message


cut.defvjp(_cut_fwd, _cut_bwd)
