"""The defense contract (DESIGN §2): a defense is a value made of pure functions, in the manner
of optax's `GradientTransformation`, and `chain` (`defenses/composite.py`) composes them.

A defense is a frozen (hashable) dataclass. Its fields are its options; those named in `hyper`
are numeric hyperparameters, which every hook reads from the `hp` argument (a dict of float32
arrays, `hparams()`), never from the field: they are traced, so a grid of them vmaps like seeds
and compiles once. The other fields are static choices (modes, stages, counts that set a shape)
and may select code. Per-run state is a typed `flax.struct` dataclass (None when there is none).

This module imports JAX only inside the hooks, so that `TrainConfig` (whose default defense is
`Defense()`) and the command line's parser load without it.
"""
from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    import jax

# What of the batch a defense needs (`Defense.needs`), in increasing order; the data-parallel
# step follows it (`vfl/parallel.py`).
PER_SAMPLE = "per_sample"      # every hook acts on each sample alone
BATCH_CUT = "batch_cut"        # the cut's message needs the whole batch, nothing else does
WHOLE_BATCH = "whole_batch"    # the forward pass, the loss or the update need the whole batch
NEEDS = (PER_SAMPLE, BATCH_CUT, WHOLE_BATCH)


def party_context(ctx: dict, k: int) -> dict:
    """Passive party k's cut context by default: the step's, with the key folded with k for
    every party after the first (`fold_in(key, k)`), so that with several passive parties
    their cuts draw different numbers, while party 0 keeps the step's key (two-party runs draw
    as they always did)."""
    if k == 0 or "key" not in ctx:
        return ctx
    import jax

    return {**ctx, "key": jax.random.fold_in(ctx["key"], k)}


@dataclasses.dataclass(frozen=True)
class Defense:
    """No defense: the targets as given (one-hot), the true message sent back, no filtering.

    The hooks, in the order a training step calls them:

    - `init(key, data, config, hp) -> state`: per-run state made inside the jitted init
      (LADSG's teacher, CAE's autoencoder); kept in `TrainState.defense_state`. Its
      `config.learning_rate` is the run's own, traced (a grid point's rate, `run_config`).
    - `targets(hp, state, targets, labels, index) -> targets`: the active party's training
      targets for the batch (`targets` arrives one-hot, or as an earlier defense of a chain left
      it; `index`: the samples' positions in the training set).
    - `forward(hp, state, hs, ctx, top_fn) -> (hs, cut_contexts, report)`: the active party's
      look at every party's embeddings `hs` before the cut. It may clip them (LADSG's norm
      detection) and makes what each passive party's cut needs: one context per passive party
      from the step's `ctx` (`labels`, `targets`, `key`, `index`) and `top_fn`, the top model
      with its parameters held fixed (a VJP of it gives LADSG's decoy shift). `report` goes to
      `update`. At evaluation `ctx` is None and only the embeddings are used: the top model
      sees at test time what it was trained on (norm detection keeps clipping).
    - `cut(hp, g, ctx) -> message`: what is sent back to a passive party for its true message
      `g = ∂L/∂h` (shape (B, d)), inside the cut's `custom_vjp` backward.
    - `update(hp, state, report, messages) -> (state, blocked, metrics)`: after the backward
      pass, with the messages about to be sent (one per passive party). `blocked` is a
      (passive parties,) bool array, or None: a blocked party's message and gradient are
      zeroed for the step. `metrics` are averaged per epoch into `Result.defense_metrics`.

    Two output hooks have defaults that do nothing: `penalty(hp, state, hs, ctx)`, a loss term
    computed on the embeddings as they come out of the cut (so its gradient is on the wire:
    dCor), and `decode(hp, state, logits)`, class scores from the top model's outputs (CAE).

    `needs` declares what of the batch the defense needs (`PER_SAMPLE`, `BATCH_CUT`,
    `WHOLE_BATCH`); `draws` names the hooks that consume their PRNG key ("init", "cut"), so a
    chain splits keys only among the members that draw; the step's `ctx` holds `key` only for a
    defense (or member) whose `draws` names "cut" (`call_hook` names one that reads it anyway).
    `summary` is the line `ladsg-jax list defenses` prints and `knob` the field that sets the
    defense's strength. `binary_only` marks a
    defense for two-class tasks only (`check_data` refuses others). Each field's meaning is its
    line in the class docstring's `Attributes:` section (`ladsg-jax describe NAME` prints them);
    a defense whose fields are its members' names those classes in `field_sources`.
    """

    name: ClassVar[str] = "none"
    summary: ClassVar[str] = "no defense: true labels, true messages"
    knob: ClassVar[str | None] = None
    hyper: ClassVar[tuple[str, ...]] = ()
    needs: ClassVar[str] = PER_SAMPLE
    draws: ClassVar[frozenset] = frozenset()
    binary_only: ClassVar[bool] = False
    field_sources: ClassVar[tuple] = ()

    def hparams(self):
        """The numeric hyperparameters as float32 arrays (a pytree; a chain's is a tuple)."""
        import jax.numpy as jnp

        return {field: jnp.asarray(getattr(self, field), jnp.float32) for field in self.hyper}

    def check_data(self, num_classes: int) -> None:
        """Raises `ConfigError` when the options do not fit a data set of `num_classes`."""

    def init(self, key: jax.Array, data, config, hp):
        return None

    def targets(self, hp, state, targets: jax.Array, labels: jax.Array,
                index: jax.Array) -> jax.Array:
        return targets

    def forward(self, hp, state, hs: tuple, ctx: dict | None, top_fn):
        return hs, None if ctx is None else tuple(party_context(ctx, k)
                                                  for k in range(len(hs) - 1)), None

    def cut(self, hp, g: jax.Array, ctx: dict) -> jax.Array:
        return g

    def update(self, hp, state, report, messages: tuple):
        return state, None, {}

    def penalty(self, hp, state, hs: tuple, ctx: dict) -> jax.Array:
        import jax.numpy as jnp

        return jnp.zeros(())

    def decode(self, hp, state, logits: jax.Array) -> jax.Array:
        return logits

    @property
    def options(self) -> dict:
        """The fields as set: what a config record and the command line name."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


def call_hook(defense, hook: str, *args):
    """`defense.HOOK(*args)`, its mistakes named in one line (`ConfigError`): a hook that reads
    `ctx["key"]` while the defense's `draws` lacks "cut" (the step then hands it no key, where
    it would have read the key another member of a chain draws from), and a plugin's hook that
    raises a type or shape error (JAX's first line, which names the shapes). A built-in
    defense's errors pass as they are."""
    from ladsg_jax.errors import ConfigError

    try:
        return getattr(defense, hook)(*args)
    except KeyError as err:
        if err.args != ("key",) or "cut" in getattr(defense, "draws", {"cut"}):
            raise
        raise ConfigError(f"defense {defense.name!r}",
                          f"its {hook} reads ctx['key'] (the step's PRNG key) but its `draws` "
                          "does not name 'cut': declare draws = frozenset({'cut'}), so that a "
                          "chain gives it a key of its own (docs/DESIGN.md §2)") from None
    except (TypeError, ValueError) as err:
        if isinstance(err, ConfigError) or type(defense).__module__.startswith("ladsg_jax."):
            raise
        first = (str(err).strip().splitlines() or [""])[0]
        raise ConfigError(f"defense {defense.name!r}",
                          f"its {hook} failed: {type(err).__name__}: {first}") from None


def check_returned(defense, hook: str, value, expected, wanted: str) -> None:
    """Raises a `ConfigError` naming the defense and the hook unless `value` is an array of
    `expected`'s shape and dtype; `wanted` ends the line, with `{shape}` and `{dtype}` filled in
    from `expected`."""
    from ladsg_jax.errors import ConfigError

    shape, dtype = getattr(value, "shape", None), getattr(value, "dtype", None)
    if shape != expected.shape or dtype != expected.dtype:
        got = (f"an array of shape {tuple(shape)} and dtype {dtype}" if shape is not None
               else f"a {type(value).__name__}")
        name = getattr(defense, "name", type(defense).__name__)
        raise ConfigError(f"defense {name!r}", f"its {hook} returned {got} " + wanted.format(
            shape=tuple(expected.shape), dtype=expected.dtype))


def clip_scale(x: jax.Array, bound) -> jax.Array:
    """Per-row factors min(1, bound/‖x_i‖), shape (B, 1): x times them has rows of norm at most
    `bound` (per-sample norm clipping)."""
    import jax.numpy as jnp

    return jnp.minimum(1.0, bound / (jnp.linalg.norm(x, axis=-1, keepdims=True) + 1e-12))
