"""`--config FILE` for `train`, `attack` and `sweep`: a JSON object whose keys are the command's
own options, written as their long flags without the dashes (`dataset`, `seeds`, `epochs`,
`learning_rate`, `mc_steps`, ...), with:

- `defense`: a name (`"ladsg"`, `"laplace+compression"`) or an object holding `name` and the
  defense's options (`{"name": "ladsg", "rho": 0.3}`; a chain's, LADSG's or DCAE's also as
  `"MEMBER.FIELD"`);
- `attacks` (or `attack`): a list of attack names;
- `grid` (sweep): an object `{"rho": [0.1, 0.5]}`; `data_option`: an object `{"KEY": VALUE}`;
- a flag without a value (`no_progress`): true or false.

The file becomes flags placed before the command line's own, so a flag given on the command
line wins; a repeatable flag given there (`--grid`, `--data-option`, `--plugin`) replaces the
file's, and `--defense` there drops the file's defense with its options. A bad file (not JSON,
not an object, an unknown key, a value of the wrong type) is one `ConfigError` naming the file
and the key. The file's content goes into the result's provenance (`config_file`).
"""
from __future__ import annotations

import argparse
import json
import os

from ladsg_jax.errors import ConfigError, unknown

COMMANDS = ("train", "attack", "sweep")
ALIASES = {"attacks": "attack"}
KEYED = ("grid", "data_option")     # repeatable KEY=VALUE flags, written as a JSON object


def config_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="FILE",
                        help="JSON of this command's options (keys: the long flags without "
                             "dashes; defense as a name or {\"name\": ..., OPTION: VALUE}); "
                             "flags given here win")


def config_path(argv: list[str]) -> str | None:
    """The value of `--config` in `argv` (`--config FILE` or `--config=FILE`), or None."""
    for i, token in enumerate(argv):
        if token == "--config":
            if i + 1 >= len(argv):
                raise ConfigError("config", "expected a JSON file after --config")
            return argv[i + 1]
        if token.startswith("--config="):
            return token.split("=", 1)[1]
    return None


def read_config(path: str) -> dict:
    """The JSON object in `path`; a missing file, bad JSON or another type is a ConfigError."""
    try:
        with open(path, encoding="utf-8") as handle:
            content = json.load(handle)
    except OSError as err:
        raise ConfigError("config", f"cannot read {path}: {err.strerror or err}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        where = (f" at line {err.lineno} column {err.colno}"
                 if isinstance(err, json.JSONDecodeError) else "")
        raise ConfigError(path, f"not valid JSON{where}: {getattr(err, 'msg', err)}") from None
    if not isinstance(content, dict):
        raise ConfigError(path, f"expected a JSON object of options, got "
                                f"{type(content).__name__}")
    return content


def option_actions(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    """{key: action} of the parser's long options, keyed as a config file names them."""
    actions = {}
    for action in parser._actions:                     # argparse keeps no public list
        longs = [s for s in action.option_strings if s.startswith("--")]
        if not longs or action.dest in ("help", "config"):
            continue
        actions[max(longs, key=len)[2:].replace("-", "_")] = action
    return actions


def given_flags(argv: list[str], actions: dict[str, argparse.Action]) -> set[str]:
    """The keys of the options that `argv` itself sets."""
    given = set()
    for key, action in actions.items():
        if any(t == s or t.startswith(s + "=") for t in argv for s in action.option_strings):
            given.add(key)
    return given


def config_tokens(path: str, content: dict, parser: argparse.ArgumentParser,
                  argv: list[str]) -> list[str]:
    """The flags that `content` (read from `path`) stands for, less those `argv` overrides."""
    actions = option_actions(parser)
    overridden = given_flags(argv, actions)
    tokens = []
    for raw_key, value in content.items():
        key = ALIASES.get(raw_key, raw_key)
        if key not in actions:
            raise unknown(f"{path}: key", raw_key, [*actions, *ALIASES])
        if key in overridden:
            continue
        flag = max((s for s in actions[key].option_strings if s.startswith("--")), key=len)
        if key == "defense":
            tokens += defense_tokens(path, value)
        else:
            tokens += value_tokens(f"{path}: {raw_key}", flag, key, value, actions[key])
    return tokens


def defense_tokens(path: str, value) -> list[str]:
    if isinstance(value, str):
        return ["--defense", value]
    if not isinstance(value, dict) or not isinstance(value.get("name"), str):
        raise ConfigError(f"{path}: defense", f"expected a defense name or an object with a "
                                              f"'name' and its options, got {value!r}")
    tokens = ["--defense", value["name"]]
    for option, setting in value.items():
        if option != "name":
            tokens += [f"--defense.{option}", option_text(f"{path}: defense.{option}", setting)]
    return tokens


def option_text(field: str, value) -> str:
    """A defense option's JSON value as the command line writes it."""
    if isinstance(value, bool):
        return str(value).lower()
    if value is None:
        return "none"
    if isinstance(value, (int, float, str)):
        return str(value)
    if isinstance(value, list) and all(isinstance(v, (int, float, str)) for v in value):
        return ",".join(map(str, value))
    raise ConfigError(field, f"expected a number, a string, true/false, null or a list, "
                             f"got {value!r}")


def value_tokens(field: str, flag: str, key: str, value, action: argparse.Action) -> list[str]:
    if action.nargs == 0:                               # store_true
        if not isinstance(value, bool):
            raise ConfigError(field, f"expected true or false, got {value!r}")
        return [flag] if value else []
    if isinstance(action, argparse._AppendAction):
        if key in KEYED and isinstance(value, dict):
            value = [f"{k}={','.join(map(str, v)) if isinstance(v, list) else v}"
                     for k, v in value.items()]
        items = value if isinstance(value, list) else [value]
        return [t for item in items for t in (flag, scalar_text(field, item, action))]
    if action.nargs in ("+", "*") or isinstance(action.nargs, int):
        items = value if isinstance(value, list) else [value]
        if action.nargs == "+" and not items:
            raise ConfigError(field, "expected a non-empty list")
        return [flag, *(scalar_text(field, item, action) for item in items)]
    return [flag, scalar_text(field, value, action)]


def scalar_text(field: str, value, action: argparse.Action) -> str:
    """`value` checked against the option's type and choices, as command-line text."""
    kind = action.type
    ok = (isinstance(value, int) and not isinstance(value, bool) if kind is int else
          isinstance(value, (int, float)) and not isinstance(value, bool) if kind is float else
          isinstance(value, str))
    if not ok:
        expected = {int: "an integer", float: "a number"}.get(kind, "a string")
        raise ConfigError(field, f"expected {expected}, got {value!r}")
    if action.choices is not None and value not in action.choices:
        raise unknown(field, value, map(str, action.choices))
    return str(value)


def expand(argv: list[str], command_parsers: dict[str, argparse.ArgumentParser]
           ) -> tuple[list[str], dict | None]:
    """`argv` with its `--config` file's flags placed after the command, and the file's record
    ({"path", "content"}), or `argv` as it is and None."""
    path = config_path(argv)
    if path is None:
        return argv, None
    command = next((t for t in argv if not t.startswith("-")), None)
    if command not in COMMANDS:
        raise ConfigError("config", f"--config is an option of {', '.join(COMMANDS)}")
    content = read_config(path)
    at = argv.index(command) + 1
    tokens = config_tokens(path, content, command_parsers[command], argv[at:])
    return argv[:at] + tokens + argv[at:], {"path": os.path.abspath(path), "content": content}
