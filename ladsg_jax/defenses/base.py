"""Where a defense plugs in (DESIGN §2): the labels, the cut, the active party's screen and filter,
the loss and the decoding of the outputs."""
from __future__ import annotations

import dataclasses
from typing import ClassVar

import jax
import jax.numpy as jnp


@dataclasses.dataclass(frozen=True)
class Defense:
    """No defense: one-hot targets, the true message sent back, no filtering.

    Subclasses are frozen (hashable) dataclasses, so a defense is a static argument of the cut's
    `custom_vjp` and of jitted functions; the arrays a hook needs arrive in its arguments.

    - `setup(key, data, config) -> state`: per-run arrays made before training, inside the
      jitted `init` (LADSG's teacher and candidate sets); kept in `TrainState.defense_state`.
    - `targets(labels, num_classes, state, index)`: the active party's training targets (soft
      labels) for the batch's samples (`index`: their positions in the training set).
    - `cut_context(ctx, top_fn, hs, k)`: the arrays passive party k's cut needs, from the
      step's `ctx` (`labels`, `targets`, `key`, `index`, `state`), the fixed-parameter top
      model `top_fn` and the embeddings `hs`.
    - `cut(g, ctx)`: the message sent to a passive party for the true message `g = ∂L/∂h`
      (shape (B, d)).
    - `screen(hs, ctx) -> (hs, report)`: the active party's look at every party's embeddings
      in the forward pass, before the cut; it may clip passive embeddings (LADSG's norm
      detection). `report` is a dict of arrays handed on to `filter`.
    - `filter(state, report, messages) -> (state, blocked, metrics)`: after the backward pass,
      with the messages about to be sent (one (B, d) array per passive party). `blocked` is a
      (passive parties,) bool array (None: nothing blocked): a blocked party's message is
      zeroed for the step, so its bottom model gets no gradient. `metrics` join the step's
      metrics and are averaged per epoch into `Result.defense_metrics`.
    - `penalty(hs, ctx) -> scalar`: a term added to the training loss, computed by the active
      party on the passive embeddings as they come out of the cut (so its gradient reaches the
      passive parties through their messages): e.g. a distance-correlation loss.
    - `decode(logits, state)`: class scores from the top model's outputs, for accuracy (a
      defense that trains on encoded labels, as CAE does, decodes here).

    `summary` is the one line `ladsg-jax list defenses` prints; `knob` names the field that
    sets the defense's strength (None: it has none), so one sweep
    over it draws the defense's privacy–utility curve.
    """

    name: ClassVar[str] = "none"
    summary: ClassVar[str] = "no defense: true labels, true messages"
    knob: ClassVar[str | None] = None

    def setup(self, key: jax.Array, data, config) -> dict:
        return {}

    def targets(self, labels: jax.Array, num_classes: int, state: dict,
                index: jax.Array) -> jax.Array:
        return jax.nn.one_hot(labels, num_classes, dtype=jnp.float32)

    def cut_context(self, ctx: dict, top_fn, hs: tuple, k: int) -> dict:
        return ctx

    def cut(self, g: jax.Array, ctx: dict) -> jax.Array:
        return g

    def screen(self, hs: tuple, ctx: dict) -> tuple[tuple, dict]:
        return hs, {}

    def penalty(self, hs: tuple, ctx: dict) -> jax.Array:
        return jnp.zeros(())

    def decode(self, logits: jax.Array, state: dict) -> jax.Array:
        return logits

    def filter(self, state: dict, report: dict, messages: tuple):
        return state, None, {}


def clip_scale(x: jax.Array, bound) -> jax.Array:
    """Per-row factors min(1, bound/‖x_i‖), shape (B, 1): x times them has rows of norm at most
    `bound` (per-sample norm clipping)."""
    return jnp.minimum(1.0, bound / (jnp.linalg.norm(x, axis=-1, keepdims=True) + 1e-12))
