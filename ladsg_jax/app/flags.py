"""Command-line flags made from the config dataclasses: one flag per field, its help the
field's line in the class docstring's `Attributes:` section, its type the field's.

`add_fields(parser, cls)` adds them (defaults None: a flag not given leaves the preset or the
dataclass default); `given(args, cls)` reads back the fields set on the command line.
"""
from __future__ import annotations

import argparse
import dataclasses
import inspect
import os
import re

from ladsg_jax.errors import ConfigError
from ladsg_jax.results import check_run_name, check_writable_dir

# spellings kept from earlier versions; `--seeds` is the seed count, not the field `seeds`
SPELLINGS = {"--learning-rate": ("--lr", "--learning-rate"), "--seeds": ("--seed-strategy",),
             "--grid": ("--grid-strategy",),
             "--mc-finetune-bottom": ("--finetune-bottom", "--mc-finetune-bottom")}


def field_docs(cls) -> dict[str, str]:
    """{field: its description} from the `Attributes:` section of `cls`'s docstring."""
    doc = inspect.getdoc(cls) or ""
    if "Attributes:" not in doc:
        return {}
    docs, name = {}, None
    for line in doc.split("Attributes:", 1)[1].splitlines():
        match = re.match(r"^    (\w+): (.*)$", line)
        if match:
            name, docs[match.group(1)] = match.group(1), match.group(2).strip()
        elif line.startswith("        ") and name:
            docs[name] += " " + line.strip()
        elif line.strip() and not line.startswith(" "):
            break
    return docs


def argument_type(field: dataclasses.Field) -> dict:
    """argparse keywords for a field, from its annotation (a string under
    `from __future__ import annotations`) and its default."""
    kind = str(field.type)
    if kind == "bool":
        return {"action": "store_true"}
    if kind == "tuple":
        return {"type": int, "nargs": "*"}
    for name, cast in (("int", int), ("float", float), ("str", str)):
        if kind in (name, f"Optional[{name}]", f"{name} | None"):
            return {"type": cast}
    raise TypeError(f"no flag type for field {field.name}: {kind}")


def add_fields(parser: argparse.ArgumentParser, cls, skip: tuple = (), prefix: str = "",
               dest_prefix: str = "") -> None:
    """One flag per field of dataclass `cls` not in `skip`: `--PREFIX-FIELD-NAME`."""
    docs = field_docs(cls)
    for field in dataclasses.fields(cls):
        if field.name in skip:
            continue
        flag = "--" + prefix + field.name.replace("_", "-")
        names = SPELLINGS.get(flag, (flag,))
        help_text = docs.get(field.name, "").rstrip(".")
        if (not isinstance(field.default, bool) and field.default is not None
                and "default" not in help_text):
            help_text += f" (default {format_default(field.default)}"
            help_text += ", or the data set's preset)" if cls.__name__ == "TrainConfig" else ")"
        kind = argument_type(field)
        if "type" in kind:
            kind["metavar"] = field.name.upper()
        parser.add_argument(*names, dest=dest_prefix + field.name, default=None,
                            help=help_text.replace("%", "%%"), **kind)


def format_default(value) -> str:
    return " ".join(map(str, value)) if isinstance(value, tuple) else str(value)


def given(args: argparse.Namespace, cls, dest_prefix: str = "") -> dict:
    """The fields of `cls` set on the command line (flags left at None are absent); tuple
    fields as tuples, a store_true flag only when set."""
    out = {}
    for field in dataclasses.fields(cls):
        value = getattr(args, dest_prefix + field.name, None)
        if value is None or value is False:
            continue
        out[field.name] = tuple(value) if isinstance(value, list) else value
    return out


def check_positive(field: str, value) -> None:
    if value is not None and value < 1:
        raise ConfigError(field, f"must be a positive integer, got {value}")


SEED_LIMIT = 2 ** 32 - 1      # a base seed and its offset (seed + 1) fit 32 bits


def check_args(args: argparse.Namespace) -> None:
    """What every command checks before it loads data or trains: the seed count and the base
    seed, the run's name and the folders it writes."""
    check_positive("seeds", getattr(args, "seeds", None))
    seed = getattr(args, "seed", None)
    if seed is not None and not 0 <= seed < SEED_LIMIT:
        raise ConfigError("seed", f"must be in 0..{SEED_LIMIT - 1}, got {seed}")
    check_run_name(getattr(args, "name", None) if hasattr(args, "runs_dir") else None)
    for field in ("runs_dir", "checkpoint_dir", "data_dir"):
        if getattr(args, field, None):
            check_writable_dir(field.replace("_", "-"), getattr(args, field))
    for field in ("plot", "markdown", "csv"):             # output files: their folders
        path = getattr(args, field, None)
        if path:
            check_writable_dir(field, os.path.dirname(os.path.abspath(path)))


def parse_defense_options(extra: list[str]) -> dict:
    """`--defense.NAME VALUE` (or `--defense.NAME=VALUE`) pairs, values as strings."""
    options, i = {}, 0
    while i < len(extra):
        token = extra[i]
        if not token.startswith("--defense."):
            raise ConfigError("arguments", f"unrecognized {token!r}; defense options are "
                                           "written --defense.NAME VALUE")
        key = token[len("--defense."):]
        if "=" in key:
            key, value = key.split("=", 1)
            i += 1
        else:
            if i + 1 >= len(extra):
                raise ConfigError(f"defense.{key}", "needs a value")
            value, i = extra[i + 1], i + 2
        options[key.replace("-", "_")] = value
    return options
