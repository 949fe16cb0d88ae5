"""Training state and batches as `flax.struct` pytrees."""
from __future__ import annotations

import jax
from flax import struct


@struct.dataclass
class TrainState:
    """Everything that changes during training, for all parties at once.

    `params` and `opt_state` are dicts keyed by party (`"party_k"`); `key` is a typed PRNG key
    split at every use, so a run is a pure function of its initial key. `hparams` holds the
    run's numeric hyperparameters as traced arrays, `{"learning_rate": (), "defense": the
    defense's hparams()}`, so a grid of them vmaps like seeds. `defense_state` is the
    defense's own (a `flax.struct` dataclass, a tuple of them for a chain, or None).
    """

    params: dict
    batch_stats: dict
    opt_state: dict
    key: jax.Array
    step: jax.Array
    defense_state: object = None
    hparams: dict = struct.field(default_factory=dict)


@struct.dataclass
class Batch:
    """One batch: each party's feature slice, the active party's labels, and the samples'
    indices in the training set (for per-sample defense state)."""

    x: tuple
    y: jax.Array
    index: jax.Array | None = None
