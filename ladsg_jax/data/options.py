"""Data set options written `KEY=VALUE` on the command line (`--data-option`, `data prepare
--option`)."""
from __future__ import annotations

from ladsg_jax.errors import ConfigError


def parse_data_options(items: list[str]) -> dict:
    """`KEY=VALUE` pairs; values that read as numbers become numbers."""
    options = {}
    for item in items:
        if "=" not in item:
            raise ConfigError("data-option", f"expected KEY=VALUE, got {item!r}")
        key, value = item.split("=", 1)
        if not key.strip() or not value.strip():
            raise ConfigError("data-option", f"expected KEY=VALUE with both parts, got {item!r}")
        for cast in (int, float):
            try:
                value = cast(value)
                break
            except ValueError:
                pass
        if key in options:
            raise ConfigError("data-option", f"{key!r} is given twice")
        options[key] = value
    return options
