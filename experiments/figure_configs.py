"""The configs of `figures.py` (`experiments/configs/<experiment>.json`, one section per size),
read and checked whole before anything trains: a misspelt data set, attack, defense, option or
stage stops the run with one line naming the file, the section and the field (exit status 2),
where it was recorded as a skipped row inside results.json and the run exited 0."""
from __future__ import annotations

import json
import os

from ladsg_jax.errors import ConfigError, is_integer, one_of, require

EXPERIMENTS = ("effectiveness", "tradeoff", "cost", "ablation", "tsne")
SIZES = ("smoke", "paper")
CONFIG_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs")
KEYS = {"effectiveness": ("datasets", "seeds", "epochs", "attacks", "settings"),
        "tradeoff": ("datasets", "seeds", "epochs", "attacks", "knobs"),
        "cost": ("datasets", "seeds", "epochs", "repeats", "defenses"),
        "ablation": ("datasets", "seeds", "epochs", "attacks", "stage_sets"),
        "tsne": ("datasets", "seeds", "epochs", "samples", "stage_sets")}


def load_config(experiment: str, size: str, path: str | None = None) -> dict:
    """The `size` section of an experiment's config file, checked (`check_config`)."""
    one_of("experiment", experiment, EXPERIMENTS)
    one_of("size", size, SIZES)
    path = path or os.path.join(CONFIG_DIR, f"{experiment}.json")
    try:
        with open(path) as f:
            sections = json.load(f)
    except OSError as err:
        raise ConfigError("config", f"{path}: {err.strerror}") from None
    except ValueError as err:
        raise ConfigError("config", f"{path} is not JSON: {err}") from None
    require(isinstance(sections, dict) and size in sections, "config",
            f"{path} has no {size!r} section")
    cfg = sections[size]
    check_config(experiment, cfg, f"{os.path.basename(path)} {size}")
    return cfg


def check_config(experiment: str, cfg, where: str) -> None:
    """Raises `ConfigError` naming `where` and the field for anything `experiment`'s runner
    would fail on or skip: a missing or unknown key, an unregistered data set, attack or
    defense, a defense option or knob value its defense refuses, an unknown LADSG stage."""
    from ladsg_jax import data as datasets
    from ladsg_jax.attacks.registry import ATTACKS
    from ladsg_jax.defenses import DEFENSES
    from ladsg_jax.defenses.ladsg import STAGES

    def field(key: str) -> str:
        return f"{where}: {key}"

    require(isinstance(cfg, dict), where, "expected an object of the experiment's settings")
    keys = KEYS[experiment]
    missing = [key for key in keys if key not in cfg]
    require(not missing, where, f"missing {', '.join(missing)} (a {experiment} config has "
                                f"{', '.join(keys)})")
    for key in cfg:
        one_of(field("key"), key, keys)
    for key in ("seeds", "repeats", "samples"):
        if key in cfg:
            require(is_integer(cfg[key]) and cfg[key] >= 1, field(key),
                    f"expected a positive integer, got {cfg[key]!r}")
    require(cfg["epochs"] is None or (is_integer(cfg["epochs"]) and cfg["epochs"] >= 1),
            field("epochs"), f"expected a positive integer or null, got {cfg['epochs']!r}")
    for name in cfg["datasets"]:
        one_of(field("datasets"), name, datasets.DATASETS)
    for name in cfg.get("attacks", ()):
        one_of(field("attacks"), name, ATTACKS)
    for name in cfg.get("defenses", ()):
        one_of(field("defenses"), name, DEFENSES)
    for label, spec in cfg.get("settings", {}).items():
        require(isinstance(spec, list) and len(spec) == 2 and isinstance(spec[1], dict),
                field(f"settings.{label}"), f"expected [DEFENSE, {{OPTIONS}}], got {spec!r}")
        rebuilt(spec[0], spec[1], field(f"settings.{label}"))
    for name, values in cfg.get("knobs", {}).items():
        one_of(field("knobs"), name, DEFENSES)
        knob = DEFENSES[name].knob
        for value in values:
            options = {knob: value} if knob and value is not None else {}
            rebuilt(name, options, field(f"knobs.{name}"))
    for stages in cfg.get("stage_sets", ()):
        for stage in stages:
            one_of(field("stage_sets"), stage, STAGES)


def rebuilt(name: str, options: dict, where: str) -> None:
    """Builds the defense, so its own checks run; their error is reported under `where`."""
    from ladsg_jax.defenses import make_defense

    try:
        make_defense(name, **options)
    except ConfigError as err:
        raise ConfigError(where, str(err)) from None
