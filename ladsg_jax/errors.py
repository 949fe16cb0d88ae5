"""The one error type users see for bad input: it names the field and what is allowed."""
from __future__ import annotations

import argparse
import numbers
from typing import Iterable


class ConfigError(ValueError):
    """Bad input: a config field, a data set, or arrays that do not fit the setting.

    The message is one line naming the field, the offending value and what is allowed, so the
    CLI can print it as it is and exit non-zero.
    """

    def __init__(self, field: str, message: str):
        self.field = field
        super().__init__(f"{field}: {message}")


def unknown(field: str, value, allowed: Iterable[str]) -> ConfigError:
    """The error for a name that is not registered."""
    return ConfigError(field, f"unknown value {value!r}; allowed: {', '.join(sorted(allowed))}")


def require(condition: bool, field: str, message: str) -> None:
    """Raises `ConfigError(field, message)` unless `condition` holds."""
    if not condition:
        raise ConfigError(field, message)


def one_of(field: str, value, allowed: Iterable[str]) -> None:
    """Raises the `unknown` error unless `value` is one of `allowed`."""
    if value not in allowed:
        raise unknown(field, value, allowed)


def is_integer(value) -> bool:
    """An int or a numpy integer, not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def positive_int(field: str, value) -> None:
    """Raises `ConfigError(field, ...)` unless `value` is a Python int >= 1 (not a bool)."""
    require(isinstance(value, int) and not isinstance(value, bool) and value > 0, field,
            f"must be a positive integer, got {value!r}")


class ArgumentParser(argparse.ArgumentParser):
    """argparse's parser whose errors are `ConfigError`s (one line naming the argument, exit
    status 2 from `cli.main`) instead of the usage text and `SystemExit`."""

    def error(self, message: str):
        if message.startswith("argument "):
            field, _, rest = message[len("argument "):].partition(": ")
            raise ConfigError(field, rest)
        raise ConfigError("arguments", message)
