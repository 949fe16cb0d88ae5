"""What `ladsg-jax describe NAME` prints: a defense's, an attack's or a data set's options.

Nothing here is a second copy: a field's meaning and its allowed values are its line in the
`Attributes:` section of its class's docstring (`flags.field_docs`), ending in `Allowed: ...`
where the class checks the value; `tests/test_describe.py` holds every stated range against
the classes' own checks. A defense whose fields are its members' (LADSG, DCAE) reads them from
the classes named in its `field_sources`.
"""
from __future__ import annotations

import dataclasses
import inspect
import re

from ladsg_jax.errors import ConfigError, unknown
from ladsg_jax.app.flags import field_docs, format_default
from ladsg_jax.app.listing import aligned

KINDS = ("defense", "attack", "dataset")
FIELD_HEADER = ("field", "type", "default", "allowed", "traced", "meaning")
ALLOWED = "Allowed:"


@dataclasses.dataclass(frozen=True)
class FieldInfo:
    """One option of a defense or settings class, as `describe` shows it."""

    name: str
    type: str
    default: str
    allowed: str
    traced: bool
    meaning: str

    def row(self) -> tuple[str, ...]:
        return (self.name, self.type, self.default, self.allowed or "-",
                "yes" if self.traced else "no", first_sentence(self.meaning))


def split_allowed(doc: str) -> tuple[str, str]:
    """(meaning, allowed) of one `Attributes:` entry: the text before and after `Allowed:`."""
    meaning, _, allowed = doc.partition(ALLOWED)
    return meaning.strip(), allowed.strip().rstrip(".")


def first_sentence(text: str) -> str:
    """The text up to its first sentence end (a period before a capital letter, or the
    last one), or all of it."""
    return re.split(r"\.\s+(?=[A-Z])", text, maxsplit=1)[0].rstrip(".")


def class_docs(cls) -> dict[str, str]:
    """{field: its docstring entry} of `cls`: its `field_sources` first, then its classes from
    the most general to `cls` itself, each overriding the ones before."""
    docs: dict[str, str] = {}
    for source in (*getattr(cls, "field_sources", ()), *reversed(cls.__mro__)):
        docs.update(field_docs(source))
    return docs


def type_name(field: dataclasses.Field) -> str:
    return str(field.type).replace("Optional[", "").replace("]", " | None")


def fields_of(cls, traced: tuple = (), skip: tuple = ()) -> list[FieldInfo]:
    """Every dataclass field of `cls` not in `skip`, with its documented meaning and allowed
    values."""
    docs = class_docs(cls)
    infos = []
    for field in dataclasses.fields(cls):
        if field.name in skip:
            continue
        meaning, allowed = split_allowed(docs.get(field.name, ""))
        default = field.default
        if default is dataclasses.MISSING and field.default_factory is not dataclasses.MISSING:
            default = field.default_factory()
        infos.append(FieldInfo(field.name, type_name(field), format_default(default)
                               if default is not None else "None", allowed,
                               field.name in traced, meaning or "(undocumented)"))
    return infos


def field_table(infos: list[FieldInfo]) -> str:
    return aligned([FIELD_HEADER, *(info.row() for info in infos)]) if infos else "  (none)"


def describe_defense(name: str) -> str:
    from ladsg_jax.defenses import DEFENSES

    cls = DEFENSES[name]
    value = cls()
    lines = [f"defense {name}: {cls.summary}",
             f"  class: {cls.__module__}.{cls.__qualname__}",
             f"  knob: {cls.knob or '-'} (the field that sets its strength)",
             f"  needs of the batch: {value.needs}",
             f"  draws randomness in: {', '.join(sorted(value.draws)) or 'nothing'}",
             f"  applies to: {'binary tasks only' if cls.binary_only else 'any task'}",
             "  options: --defense.FIELD VALUE; traced fields can be a --grid of one program",
             "", field_table(fields_of(cls, cls.hyper))]
    return "\n".join(lines)


def describe_attack(name: str) -> str:
    from ladsg_jax.attacks.registry import ATTACKS
    from ladsg_jax.attacks.settings import AttackSettings, MixMatchConfig
    from ladsg_jax.app.listing import attack_setting

    attack = ATTACKS[name]
    lines = [f"attack {name}: {attack.description}",
             f"  metric: {attack.metric}",
             f"  reads: {', '.join(attack.reads)}",
             f"  setting: {attack_setting(attack)} (training {attack.training}, top model "
             f"{attack.top_model}{', binary tasks only' if attack.binary_only else ''})",
             f"  table: run {attack.group}, column {attack.column!r}",
             "", "the attacker's settings (AttackSettings; flags --FIELD-NAME):",
             field_table(fields_of(AttackSettings, skip=("mixmatch",)))]
    if attack.metric == "completion":
        lines += ["", "model completion's MixMatch (MixMatchConfig; flags --mc-FIELD-NAME):",
                  field_table(fields_of(MixMatchConfig))]
    return "\n".join(lines)


def describe_dataset(name: str) -> str:
    from ladsg_jax import data as datasets
    from ladsg_jax.data.catalog import SPECS
    from ladsg_jax.presets import KNOWN_LABELS, PRESETS

    kind, options, description = datasets.DATASETS[name]
    lines = [f"dataset {name}: {description}", f"  kind: {kind}"]
    spec = SPECS.get(name)
    if spec is not None:
        shape = "x".join(map(str, spec.shape))
        lines += [f"  samples: {shape} {getattr(spec.dtype, '__name__', spec.dtype)}, "
                  f"{spec.num_classes} classes",
                  "  source: " + ("ships with scikit-learn" if spec.source is None
                                  else spec.source.needs())]
        defaults = dict(spec.options)
    else:
        from ladsg_jax.data.synthetic import make_synthetic
        defaults = loader_defaults(make_synthetic) if name == "synthetic" else {}
    lines.append("  options (--data-option KEY=VALUE): " + (", ".join(
        f"{key}={format_default(defaults[key]) if key in defaults else '...'}"
        for key in options) or "none"))
    preset = PRESETS.get(name, {})
    lines.append("  preset: " + (", ".join(f"{key}={format_default(value)}"
                                           for key, value in preset.items())
                                 or "TrainConfig's defaults"))
    known = KNOWN_LABELS.get(name)
    lines.append(f"  attacker's known labels: {known if known is not None else '4 per class'}")
    return "\n".join(lines)


def loader_defaults(loader) -> dict:
    return {name: p.default for name, p in inspect.signature(loader).parameters.items()
            if p.default is not inspect.Parameter.empty}


def registries() -> dict[str, dict]:
    from ladsg_jax import data as datasets
    from ladsg_jax.attacks.registry import ATTACKS
    from ladsg_jax.defenses import DEFENSES

    return {"defense": DEFENSES, "attack": ATTACKS, "dataset": datasets.DATASETS}


def describe(name: str, kind: str | None = None) -> str:
    """The description of `name`: a defense (or a chain `A+B`: each member), an attack or a data
    set; `kind` picks one where a name is registered as more than one."""
    from ladsg_jax.defenses.registry import CHAIN

    found = registries()
    if kind is not None and kind not in KINDS:
        raise unknown("kind", kind, KINDS)
    if CHAIN in name and kind in (None, "defense"):
        return "\n\n".join(describe(member, "defense") for member in name.split(CHAIN))
    kinds = [k for k in KINDS if name in found[k] and kind in (None, k)]
    if not kinds:
        names = sorted({n for k in KINDS if kind in (None, k) for n in found[k]})
        raise unknown(kind or "name", name, names)
    if len(kinds) > 1:
        raise ConfigError("kind", f"{name!r} is a {' and a '.join(kinds)}; pick one with "
                                  f"--kind ({', '.join(kinds)})")
    return {"defense": describe_defense, "attack": describe_attack,
            "dataset": describe_dataset}[kinds[0]](name)
