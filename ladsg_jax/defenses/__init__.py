"""Defenses by name: a registry for configs and the CLI."""
from __future__ import annotations

from ladsg_jax.defenses.base import Defense
from ladsg_jax.errors import ConfigError, unknown

DEFENSES: dict[str, type[Defense]] = {"none": Defense}


def make_defense(name: str, **params) -> Defense:
    """The defense registered as `name`, with its fields set from `params`."""
    if name not in DEFENSES:
        raise unknown("defense", name, DEFENSES)
    try:
        return DEFENSES[name](**params)
    except TypeError as err:
        raise ConfigError(f"defense.{name}", str(err)) from None


__all__ = ["Defense", "DEFENSES", "make_defense"]
