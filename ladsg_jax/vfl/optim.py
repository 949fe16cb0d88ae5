"""Per-party optimizers: a dict of optax transformations keyed by party (DESIGN §2)."""
from __future__ import annotations

import optax

from ladsg_jax.errors import ConfigError, unknown

from ladsg_jax.vfl.model import party_name


def learning_rate(config, steps_per_epoch: int | None = None, rate=None):
    """The config's learning rate (or `rate`, e.g. a traced grid value): a constant, or a step
    decay by `lr_decay` at the start of each epoch in `lr_decay_epochs` (needs the number of
    steps per epoch)."""
    rate = config.learning_rate if rate is None else rate
    if not config.lr_decay_epochs:
        return rate
    if not steps_per_epoch:
        raise ConfigError("lr_decay_epochs", "a step decay needs the steps per epoch; "
                                             "build the optimizer with the data's")
    boundaries = {epoch * steps_per_epoch: config.lr_decay for epoch in config.lr_decay_epochs}
    return optax.piecewise_constant_schedule(rate, boundaries)


def make_optimizer(config, steps_per_epoch: int | None = None,
                   rate=None) -> optax.GradientTransformation:
    """The honest optimizer of a config: L2 weight decay (coupled, as PyTorch's) then SGD or
    Adam, at the config's learning rate or `rate`."""
    rate = learning_rate(config, steps_per_epoch, rate)
    if config.optimizer == "sgd":
        step = optax.sgd(rate, momentum=config.momentum or None)
    else:
        step = optax.adam(rate)
    if config.weight_decay:
        return optax.chain(optax.add_decayed_weights(config.weight_decay), step)
    return step


def make_optimizers(config, overrides: dict | None = None,
                    steps_per_epoch: int | None = None, rate=None) -> dict:
    """One optimizer per party, at the config's learning rate or `rate`; `overrides` replaces
    some (e.g. a malicious party's): an optax transformation, used as given, or a function
    of the run's learning rate (a number, or the config's step-decay schedule) that builds
    one, so the party follows the same schedule and a traced grid rate."""
    optimizers = {party_name(k): make_optimizer(config, steps_per_epoch, rate)
                  for k in range(config.num_parties)}
    for name, opt in (overrides or {}).items():
        if name not in optimizers:
            raise unknown("optimizers", name, optimizers)
        optimizers[name] = opt(learning_rate(config, steps_per_epoch, rate)) if callable(
            opt) else opt
    return optimizers
