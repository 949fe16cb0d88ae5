"""Per-party optimizers: a dict of optax transformations keyed by party (DESIGN §2)."""
from __future__ import annotations

import optax

from ladsg_jax.vfl.model import party_name


def make_optimizer(config) -> optax.GradientTransformation:
    """The honest optimizer of a config: L2 weight decay (coupled, as PyTorch's) then SGD or Adam."""
    if config.optimizer == "sgd":
        step = optax.sgd(config.learning_rate, momentum=config.momentum or None)
    else:
        step = optax.adam(config.learning_rate)
    if config.weight_decay:
        return optax.chain(optax.add_decayed_weights(config.weight_decay), step)
    return step


def make_optimizers(config, overrides: dict | None = None) -> dict:
    """One optimizer per party; `overrides` replaces some (e.g. a malicious party's)."""
    optimizers = {party_name(k): make_optimizer(config) for k in range(config.num_parties)}
    for name, opt in (overrides or {}).items():
        if name not in optimizers:
            from ladsg_jax.errors import unknown
            raise unknown("optimizers", name, optimizers)
        optimizers[name] = opt
    return optimizers
