"""User defenses and attacks (DESIGN §2): loaded from files, modules or installed packages.

A plugin is a Python file or an importable module that defines `DEFENSES` (a sequence of
`ladsg_jax.defenses.Defense` subclasses) and/or `ATTACKS` (a sequence of
`ladsg_jax.attacks.base.Attack` values); loading it registers each under its own name for
every command. Sources, in order: the entry-point groups `ladsg_jax.defenses` and
`ladsg_jax.attacks` of installed packages (each entry point names one class or value, under
its registered name), `$LADSG_JAX_PLUGINS` (paths or modules separated by `os.pathsep`), then
`--plugin PATH_OR_MODULE` (repeatable). Registration happens once, before anything runs; a
source loaded again is a no-op. Any problem (a file that does not import, a module with
neither list, an item the registry cannot take, a name clash) is a `ConfigError` naming the
plugin. `examples/plugins/rotation.py` is a worked example.
"""
from __future__ import annotations

import argparse
import hashlib
import importlib
import importlib.metadata
import importlib.util
import os
import sys
import traceback

from ladsg_jax.errors import ArgumentParser, ConfigError

ENV = "LADSG_JAX_PLUGINS"
GROUPS = ("ladsg_jax.defenses", "ladsg_jax.attacks")
# the modules 0.2.0 moved from the package's top level into `ladsg_jax.app` (CHANGELOG.md)
MOVED_TO_APP = ("attack_table", "cli", "cli_args", "cli_commands", "cli_config", "cli_report",
                "cli_session", "describe", "experiment", "flags", "gather", "listing", "plots",
                "plugins", "provenance", "ranking", "session", "sweep", "table_config",
                "table_render")


def moved_module_hint(err: Exception) -> str:
    """For a plugin that imports a module 0.2.0 moved: what to import instead ('' otherwise)."""
    name = getattr(err, "name", None) or ""
    top, _, rest = name.partition(".")
    module = rest.split(".")[0]
    if isinstance(err, ModuleNotFoundError) and top == "ladsg_jax" and module in MOVED_TO_APP:
        return (f"; since ladsg_jax 0.2.0 {top}.{module} is ladsg_jax.app.{module} "
                f"(CHANGELOG.md)")
    return ""


def import_source(source: str):
    """The module a plugin source names: a file (`*.py` or an existing path) or a module."""
    try:
        path = os.path.abspath(os.path.expanduser(source))
        if source.endswith(".py") or os.path.exists(path):
            if not os.path.isfile(path):
                raise ConfigError("plugin", f"{source}: no such file")
            if not path.endswith(".py"):
                raise ConfigError("plugin", f"{source}: a plugin file is a Python file (*.py)")
            name = "ladsg_jax_plugin_" + hashlib.sha1(path.encode()).hexdigest()[:12]
            if name in sys.modules:
                return sys.modules[name]
            spec = importlib.util.spec_from_file_location(name, path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            try:
                spec.loader.exec_module(module)
            except BaseException:
                del sys.modules[name]
                raise
            return module
        return importlib.import_module(source)
    except ConfigError as err:      # ours, or the plugin building a bad Attack at import
        if err.field == "plugin":
            raise
        raise ConfigError("plugin", f"{source}: {err}") from None
    except Exception as err:    # noqa: BLE001 - a plugin's own failure, reported in one line
        where = traceback.extract_tb(err.__traceback__)[-1]
        raise ConfigError("plugin", f"{source}: does not import: {type(err).__name__}: {err} "
                                    f"({os.path.basename(where.filename)}:{where.lineno})"
                                    f"{moved_module_hint(err)}") from None


def register_module(module, source: str) -> None:
    """Registers the module's `DEFENSES` and `ATTACKS`."""
    from ladsg_jax.attacks.registry import ATTACKS, register_attack
    from ladsg_jax.defenses import DEFENSES, register_defense

    defenses, attacks = getattr(module, "DEFENSES", None), getattr(module, "ATTACKS", None)
    if defenses is None and attacks is None:
        raise ConfigError("plugin", f"{source}: defines neither DEFENSES (Defense subclasses) "
                                    "nor ATTACKS (Attack values)")
    for kind, items in (("DEFENSES", defenses), ("ATTACKS", attacks)):
        if items is not None and not isinstance(items, (list, tuple)):
            raise ConfigError("plugin", f"{source}: {kind} must be a list, got "
                                        f"{type(items).__name__}")
    saved = dict(DEFENSES), dict(ATTACKS)
    try:
        for cls in defenses or ():
            register_defense(cls, source)
        for attack in attacks or ():
            register_attack(attack, source)
    except ConfigError:                 # all of a plugin or none of it
        for registry, before in zip((DEFENSES, ATTACKS), saved):
            registry.clear()
            registry.update(before)
        raise


def load_source(source: str) -> None:
    register_module(import_source(source), source)


def load_entry_points() -> None:
    """Registers what installed packages declare in the groups `ladsg_jax.defenses` and
    `ladsg_jax.attacks`. The registries (and with them JAX) load only when there is one."""
    points = [(group, point) for group in GROUPS
              for point in importlib.metadata.entry_points(group=group)]
    if not points:
        return
    from ladsg_jax.attacks.registry import register_attack
    from ladsg_jax.defenses import register_defense

    register = {"ladsg_jax.defenses": register_defense, "ladsg_jax.attacks": register_attack}
    for group, point in points:
        source = f"entry point {point.name} = {point.value} ({group})"
        try:
            item = point.load()
        except Exception as err:    # noqa: BLE001 - reported in one line
            raise ConfigError("plugin", f"{source}: does not import: "
                                        f"{type(err).__name__}: {err}"
                                        f"{moved_module_hint(err)}") from None
        if getattr(item, "name", None) != point.name:
            raise ConfigError("plugin", f"{source}: the entry point's name must be the "
                                        f"item's name {getattr(item, 'name', None)!r}")
        register[group](item, source)


def env_sources(environ=os.environ) -> list[str]:
    return [s for s in environ.get(ENV, "").split(os.pathsep) if s.strip()]


def load_plugins(sources=(), environ=os.environ) -> None:
    """Registers installed plugins, those of `$LADSG_JAX_PLUGINS`, then `sources`."""
    load_entry_points()
    for source in [*env_sources(environ), *sources]:
        load_source(source)


def plugin_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(add_help=False)
    parser.add_argument("--plugin", action="append", default=[], metavar="PATH_OR_MODULE",
                        help="register the defenses and attacks of a plugin file or module "
                             "(repeatable; also $LADSG_JAX_PLUGINS)")
    return parser
