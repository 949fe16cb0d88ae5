"""The training configuration: one frozen, hashable dataclass, checked before anything runs."""
from __future__ import annotations

import copy
import dataclasses
import math
import numbers
from typing import Optional

from ladsg_jax.defenses.base import Defense
from ladsg_jax.errors import ConfigError, one_of, positive_int, require
from ladsg_jax.models.names import BOTTOMS, CONV_GRADIENTS, TOKEN_BOTTOMS, TOPS

OPTIMIZERS = ("sgd", "adam")
LOOPS = ("auto", "scan", "step")
SEED_STRATEGIES = ("auto", "vmap", "sequential")
GRID_STRATEGIES = ("auto", "vmap", "sequential")
PARALLEL = ("none", "pmap", "shard_map")
WIRE_RECORDS = ("none", "last", "all")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything that fixes a VFL training run except the data and the PRNG key.

    Hashable, so one config compiles once; every execution strategy (`loop`, `seeds`, `grid`,
    DESIGN §8) gives the same numbers. The command line's training flags are made from these
    fields and the lines below (`ladsg_jax.app.flags`).

    Attributes:
        num_parties: number of parties K; the last one is the active party.
        bottom: bottom model of every party (`ladsg_jax.models.BOTTOMS`).
        bottom_hidden: bottom hidden widths (cnn: channels).
        embed_dim: bottom output width; None makes it num_classes wide (Fu et al.'s
            setting, required with top_model none).
        top_model: mlp, or none (the logits are the sum of the parties' outputs).
        top_hidden: top model hidden widths.
        optimizer: sgd or adam.
        learning_rate: the parties' learning rate.
        momentum: SGD momentum.
        weight_decay: L2 weight decay.
        lr_decay_epochs: epochs at whose start the learning rate is multiplied by lr_decay
            (Fu et al.'s CIFAR setting: 50 85).
        lr_decay: step-decay factor.
        vocab_size: token-id range of the token bottoms (hashed_mlp, text); must cover the
            data set's.
        batch_size: training batch size.
        epochs: training epochs.
        eval_batch_size: rows per forward pass when evaluating.
        loop: auto, scan (an epoch is one lax.scan) or step (a jitted step per batch).
        seeds: auto, vmap or sequential: how the seeds of a run are trained.
        grid: auto, vmap or sequential: how the points of a hyperparameter grid run (auto:
            vmapped wherever the seeds are; sequential gives each point its separate run's
            numbers bit for bit).
        parallel: none, pmap or shard_map: split every batch over the devices (of every
            process), the same numbers as one device (`vfl/parallel.py`).
        conv_gradients: auto, xla or fast: how convolutional bottoms differentiate (fast,
            `models/fast_conv.py`: the same numbers, faster on XLA:CPU; auto: fast on the CPU).
        record_wire: none, last or all: which epochs' messages to the passive parties are kept
            (what the attacks read).
        record_embeddings: with a recorded wire, also keep the embeddings each passive party
            sent at each recorded step (what a party that logs its own forward passes holds;
            set by the attack suite for an attack that reads "embeddings_sent").
        defense: the defense (`ladsg_jax.defenses`).
    """

    num_parties: int = 2
    bottom: str = "mlp"
    bottom_hidden: tuple = (64,)
    embed_dim: Optional[int] = None
    top_model: str = "mlp"
    top_hidden: tuple = (20,)
    optimizer: str = "sgd"
    learning_rate: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 0.0
    lr_decay_epochs: tuple = ()
    lr_decay: float = 0.1
    vocab_size: Optional[int] = None
    batch_size: int = 32
    epochs: int = 30
    eval_batch_size: int = 1024
    loop: str = "auto"
    seeds: str = "auto"
    grid: str = "auto"
    parallel: str = "none"
    conv_gradients: str = "auto"
    record_wire: str = "none"
    record_embeddings: bool = False
    defense: Defense = Defense()

    def __post_init__(self):
        for field in dataclasses.fields(self):      # numpy scalars as the Python numbers
            value = getattr(self, field.name)
            if hasattr(value, "item") and getattr(value, "shape", None) == ():
                object.__setattr__(self, field.name, value.item())
        validate(self)

    def replace(self, **changes) -> "TrainConfig":
        return dataclasses.replace(self, **changes)


def run_config(config: TrainConfig, learning_rate) -> TrainConfig:
    """`config` with the run's learning rate, a traced value (a grid point's: `hparams`), for
    the code that trains inside a run (a defense's teacher); not validated, never stored."""
    run = copy.copy(config)
    object.__setattr__(run, "learning_rate", learning_rate)
    return run


def check_number(value, field: str, low: float, high: float = math.inf, high_open: bool = False,
            low_open: bool = False) -> None:
    """A finite real number in [low, high] (ends open as said); anything else a ConfigError."""
    ok = (isinstance(value, numbers.Real) and not isinstance(value, bool)
          and math.isfinite(value) and (value > low if low_open else value >= low)
          and (value < high if high_open else value <= high))
    interval = (f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
                if math.isfinite(high) else f"{'>' if low_open else '≥'} {low:g}")
    require(ok, field, f"must be a finite number {interval}, got {value!r}")


def validate(config: TrainConfig) -> None:
    """Raises `ConfigError` naming the first field that is out of its allowed values."""
    positive_int("num_parties", config.num_parties)
    require(config.num_parties >= 2, "num_parties",
            f"VFL needs at least 2 parties (one passive, one active), got {config.num_parties}")
    for field, allowed in (("bottom", BOTTOMS), ("top_model", TOPS), ("optimizer", OPTIMIZERS),
                           ("loop", LOOPS), ("seeds", SEED_STRATEGIES), ("grid", GRID_STRATEGIES),
                           ("parallel", PARALLEL),
                           ("conv_gradients", CONV_GRADIENTS), ("record_wire", WIRE_RECORDS)):
        one_of(field, getattr(config, field), allowed)
    for field in ("bottom_hidden", "top_hidden"):
        widths = getattr(config, field)
        require(isinstance(widths, tuple) and all(isinstance(w, int) and w > 0 for w in widths),
                field, f"must be a tuple of positive integers, got {widths!r}")
    if config.embed_dim is not None:
        positive_int("embed_dim", config.embed_dim)
    if config.vocab_size is not None:
        positive_int("vocab_size", config.vocab_size)
    if config.bottom in TOKEN_BOTTOMS:
        require(config.vocab_size is not None, "vocab_size",
                f"bottom {config.bottom!r} embeds token ids: set vocab_size to the data set's "
                "(the presets of criteo and yahoo_answers do)")
    epochs_ok = all(isinstance(e, int) and 0 < e for e in config.lr_decay_epochs)
    require(isinstance(config.lr_decay_epochs, tuple) and epochs_ok
            and list(config.lr_decay_epochs) == sorted(set(config.lr_decay_epochs)),
            "lr_decay_epochs", f"must be a tuple of increasing positive epoch numbers, "
                               f"got {config.lr_decay_epochs!r}")
    check_number(config.lr_decay, "lr_decay", 0, 1, low_open=True)
    for field in ("batch_size", "epochs", "eval_batch_size"):
        positive_int(field, getattr(config, field))
    check_number(config.learning_rate, "learning_rate", 0, low_open=True)
    check_number(config.momentum, "momentum", 0, 1, high_open=True)
    check_number(config.weight_decay, "weight_decay", 0)
    require(isinstance(config.record_embeddings, bool), "record_embeddings",
            f"must be true or false, got {config.record_embeddings!r}")
    require(not config.record_embeddings or config.record_wire != "none", "record_embeddings",
            "keeps the embeddings beside a recorded wire: set record_wire to last or all")
    require(not config.record_embeddings or config.parallel == "none", "record_embeddings",
            f"is recorded by one device's step; allowed with parallel none, got "
            f"{config.parallel!r}")
    require(isinstance(config.defense, Defense), "defense",
            f"must be a Defense instance (see ladsg_jax.defenses.make_defense), "
            f"got {type(config.defense).__name__}")


def check_against_data(config: TrainConfig, num_parties: int, num_classes: int,
                       num_train: int, vocab_size: int = 0) -> None:
    """The checks that need the data: parties match, embeddings fit `top_model: none`, batches
    fit, token ids fit the token bottoms' vocabulary (`vocab_size` 0: not token data)."""
    token_bottom = config.bottom in TOKEN_BOTTOMS
    if vocab_size and not token_bottom:
        raise ConfigError("bottom", f"the data are token ids (vocab_size {vocab_size}); "
                                    f"allowed bottoms: {', '.join(TOKEN_BOTTOMS)}")
    if token_bottom and not vocab_size:
        raise ConfigError("bottom", f"{config.bottom!r} takes token ids but the data are "
                                    "features; allowed: " + ", ".join(
                                        b for b in BOTTOMS if b not in TOKEN_BOTTOMS))
    if token_bottom and config.vocab_size < vocab_size:
        raise ConfigError("vocab_size", f"{config.vocab_size} is smaller than the data set's "
                                        f"{vocab_size} token ids")
    if num_parties != config.num_parties:
        raise ConfigError("num_parties", f"config has {config.num_parties} parties but the data "
                                         f"is split for {num_parties}")
    if config.top_model == "none" and config.embed_dim not in (None, num_classes):
        raise ConfigError("embed_dim", f"top_model 'none' sums the embeddings into logits, so "
                                       f"embed_dim must be num_classes ({num_classes}), "
                                       f"got {config.embed_dim}")
    config.defense.check_data(num_classes)
    if config.batch_size > num_train:
        raise ConfigError("batch_size", f"{config.batch_size} is larger than the {num_train} "
                                        f"training samples; allowed: 1..{num_train}")
