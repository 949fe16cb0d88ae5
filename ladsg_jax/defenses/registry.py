"""The defense registry: every built-in defense by name, the plugins' added to it, and
`make_defense`, which builds one from command-line strings or Python values."""
from __future__ import annotations

import dataclasses
import numbers

from ladsg_jax.defenses.anonymize import KDk
from ladsg_jax.defenses.base import NEEDS, Defense
from ladsg_jax.defenses.cae import CAE, DCAE
from ladsg_jax.defenses.dcor import DistanceCorrelation
from ladsg_jax.defenses.labels import LabelDP
from ladsg_jax.defenses.ladsg import LADSG
from ladsg_jax.defenses.marvell import MaxNorm, Marvell
from ladsg_jax.defenses.noise import GaussianDP, LaplaceNoise
from ladsg_jax.defenses.quantize import DiscreteSGD, SignSGD
from ladsg_jax.defenses.sparsify import PPDL, GradientCompression
from ladsg_jax.defenses.substitute import FLSG
from ladsg_jax.errors import ConfigError, unknown

DEFENSES: dict[str, type[Defense]] = {cls.name: cls for cls in (
    Defense, LADSG, LaplaceNoise, GaussianDP, GradientCompression, PPDL, DiscreteSGD, SignSGD,
    MaxNorm, Marvell, KDk, FLSG, CAE, DCAE, DistanceCorrelation, LabelDP)}


def register_defense(cls, source: str = "") -> None:
    """Adds the `Defense` subclass `cls` to the registry under `cls.name`, after checking it
    has what the registry needs; the same class again is a no-op, another class under a
    registered name a `ConfigError` naming `source`."""
    who = source or getattr(cls, "__name__", repr(cls))
    problem = defense_problem(cls)
    if problem:
        raise ConfigError("plugin", f"{who}: {problem}")
    if DEFENSES.get(cls.name, cls) is not cls:
        raise ConfigError("plugin", f"{who}: defense name {cls.name!r} is already registered")
    DEFENSES[cls.name] = cls


def defense_problem(cls) -> str | None:
    """What keeps `cls` from being a registrable defense, or None."""
    if not (isinstance(cls, type) and issubclass(cls, Defense)):
        return f"expected a subclass of ladsg_jax.defenses.Defense, got {cls!r}"
    if "name" not in vars(cls) or not isinstance(cls.name, str) or not cls.name.isidentifier():
        return f"{cls.__name__} needs a class attribute `name` (an identifier) of its own"
    params = getattr(cls, "__dataclass_params__", None)
    if "__dataclass_fields__" not in vars(cls) or params is None or not params.frozen:
        return f"{cls.__name__} must be a @dataclasses.dataclass(frozen=True)"
    fields = {f.name for f in dataclasses.fields(cls)}
    missing = [f for f in (*cls.hyper, *([cls.knob] if cls.knob else [])) if f not in fields]
    if missing:
        return f"{cls.__name__}: hyper/knob name no field: {', '.join(missing)}"
    if cls.needs not in NEEDS:
        return f"{cls.__name__}.needs must be one of {', '.join(NEEDS)}, got {cls.needs!r}"
    try:
        cls()
    except Exception as err:    # noqa: BLE001 - any failure of a plugin's defaults is reported
        return f"{cls.__name__}() with its defaults fails: {err}"
    return None


def knob_default(cls: type[Defense]):
    """The default value of a defense's strength knob (None when it has no knob)."""
    if cls.knob is None:
        return None
    return next(f.default for f in dataclasses.fields(cls) if f.name == cls.knob)


CHAIN = "+"       # `laplace+compression`: registered defenses chained in that order


def make_defense(name: str, **params) -> Defense:
    """The defense registered as `name`, with its fields set from `params`; `A+B+...` chains
    registered defenses (`chain_spec`).

    String values (from the command line) are cast to the type of the field's default: a
    comma-separated list for tuples, int, float, bool; `none` for an optional field (default
    None). A numeric field takes a real number (numpy scalars too), anything else is named.
    """
    if CHAIN in name:
        return chain_spec(name, params)
    if name not in DEFENSES:
        raise unknown("defense", name, DEFENSES)
    cls = DEFENSES[name]
    fields = {f.name: f for f in dataclasses.fields(cls)}
    flat = {}
    for key, value in params.items():
        field = flat_option(name, cls, key)
        if field in flat:
            raise ConfigError(f"defense.{name}.{field}", f"given twice (as {field} and as a "
                                                         "member's option); allowed: once")
        flat[field] = value
    params = flat
    for key, value in list(params.items()):
        if key not in fields:
            raise unknown(f"defense.{name} option", key, fields)
        default = fields[key].default
        if isinstance(value, str):
            params[key] = value = cast_option(f"defense.{name}.{key}", value, default)
        if hasattr(value, "item") and getattr(value, "shape", None) == ():
            params[key] = value = value.item()          # a numpy scalar
        number = isinstance(default, numbers.Real) and not isinstance(default, bool)
        if number and not (isinstance(value, numbers.Real) and not isinstance(value, bool)):
            raise ConfigError(f"defense.{name}.{key}", f"expected a number, got {value!r}")
    return cls(**params)


def flat_option(name: str, cls: type[Defense], key: str) -> str:
    """The field that option `key` of defense `name` sets: `key` itself, or for a composite
    whose fields are its stages' (`field_sources`: LADSG, DCAE) `STAGE.FIELD`, the field of
    that name (`sg.rho` is LADSG's `rho`; a field two stages share, such as LADSG's `epsilon`,
    is set for both)."""
    stage, _, field = key.rpartition(".")
    if not stage:
        return key
    sources = {source.name: {f.name for f in dataclasses.fields(source)}
               for source in cls.field_sources}
    own = {f.name for f in dataclasses.fields(cls)}
    if field not in sources.get(stage, ()) or field not in own:
        raise unknown(f"defense.{name} option", key,
                      sorted(own) + [f"{s}.{f}" for s in sources for f in sorted(sources[s])
                                     if f in own])
    return field


def chain_spec(spec: str, params: dict) -> Defense:
    """`chain` of the defenses named in `spec` (`A+B`, in that order), each option routed to
    its member: `B.field` to B, a plain `field` to the one member that has it."""
    from ladsg_jax.defenses.composite import chain

    names = spec.split(CHAIN)
    for name in names:
        if name not in DEFENSES:
            raise unknown("defense", name, DEFENSES)
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ConfigError("defense", f"{spec!r} names {', '.join(twice)} more than once; "
                                     "allowed: each member once")
    fields = {n: {f.name for f in dataclasses.fields(DEFENSES[n])} for n in names}
    routed = {n: {} for n in names}
    for key, value in params.items():
        member, field = option_owner(spec, fields, key)
        routed[member][field] = value
    return chain(*(make_defense(n, **routed[n]) for n in names))


def option_owner(spec: str, fields: dict, key: str) -> tuple[str, str]:
    """(member, field) that chain option `key` addresses, `fields` the members' field names
    in chain order: `MEMBER.FIELD`, or a plain `FIELD` that exactly one member has."""
    member, _, field = key.rpartition(".")
    if member:
        if member not in fields:
            raise unknown(f"defense.{key} (member)", member, fields)
        owners = [member]
    else:
        owners = [n for n in fields if field in fields[n]]
    if not owners or field not in fields[owners[0]]:
        raise unknown(f"defense.{spec} option", key,
                      [f"{n}.{f}" for n in fields for f in sorted(fields[n])])
    if len(owners) > 1:
        raise ConfigError(f"defense.{field}", f"a field of {' and '.join(owners)}; "
                                              f"write defense.{owners[0]}.{field}")
    return owners[0], field


def member_field(defense: Defense, key: str):
    """(the member of a chain, or the defense itself, that holds option `key`, its field)."""
    from ladsg_jax.defenses.composite import Chain

    if not isinstance(defense, Chain):
        return defense, flat_option(defense.name, type(defense), key)
    members = {p.name: p for p in defense.parts}
    fields = {n: {f.name for f in dataclasses.fields(p)} for n, p in members.items()}
    member, field = option_owner(CHAIN.join(members), fields, key)
    return members[member], field


def cast_option(field: str, value: str, default):
    """`value` read as the type of `default`."""
    if value.lower() == "none" and default is None:
        return None
    try:
        if isinstance(default, tuple):
            return tuple(v for v in value.split(",") if v)
        if isinstance(default, bool):
            if value.lower() not in ("true", "false"):
                raise ValueError(value)
            return value.lower() == "true"
        if isinstance(default, int) or default is None:
            return int(value)
        if isinstance(default, float):
            return float(value)
    except ValueError:
        kind = "a comma-separated list" if isinstance(default, tuple) else (
            "true or false" if isinstance(default, bool) else
            "an integer" if isinstance(default, int) or default is None else "a number")
        raise ConfigError(field, f"expected {kind}, got {value!r}") from None
    return value


def hyper_fields(name: str) -> tuple:
    """The numeric fields of defense `name` that are traced (a grid over them compiles once)."""
    if name not in DEFENSES:
        raise unknown("defense", name, DEFENSES)
    return DEFENSES[name].hyper
