"""`ladsg-jax describe`: every option of every defense documented, each stated range held
against the class's own checks, and the command's output and errors."""
from __future__ import annotations

import dataclasses
import re

import pytest

from ladsg_jax.app import cli
from ladsg_jax.attacks.settings import AttackSettings, MixMatchConfig
from ladsg_jax.defenses import DEFENSES
from ladsg_jax.app.describe import class_docs, describe, fields_of, split_allowed
from ladsg_jax.errors import ConfigError

NUMBER = r"-?\d+(?:\.\d+)?(?:e-?\d+)?"
INTERVAL = re.compile(rf"^([\[(])({NUMBER}), ({NUMBER})([\])])")
BOUND = re.compile(rf"^(integer )?(>=|>) ({NUMBER})(, or None)?")
CHOICES = re.compile(r"^one of ([\w, ]+?)(?:;.*)?$")
OUTSIDE = 1e-3      # how far past a stated end a value is taken


def documented_classes():
    return [*DEFENSES.values(), AttackSettings, MixMatchConfig]


def checks(allowed: str):
    """(accepted values, rejected values) that `allowed` states, or None for words only."""
    match = INTERVAL.match(allowed)
    if match:
        left, low, high, right = match.group(1), float(match.group(2)), float(match.group(3)), \
            match.group(4)
        accepted = [(low + high) / 2] + ([low] if left == "[" else []) + \
            ([high] if right == "]" else [])
        rejected = [low - OUTSIDE, high + OUTSIDE] + ([low] if left == "(" else []) + \
            ([high] if right == ")" else [])
        return accepted, rejected
    match = BOUND.match(allowed)
    if match:
        integer, sign, low = match.group(1), match.group(2), float(match.group(3))
        if integer:
            first = int(low) if sign == ">=" else int(low) + 1
            return [first, first + 3] + ([None] if match.group(4) else []), \
                [first - 1, first + 0.5]
        return [low + 1.0] + ([low] if sign == ">=" else []), \
            [low - OUTSIDE] + ([low] if sign == ">" else [])
    match = CHOICES.match(allowed)
    if match:
        return [c.strip() for c in match.group(1).split(",")], ["not_a_choice"]
    return None


def stated_ranges():
    for cls in documented_classes():
        for field, doc in class_docs(cls).items():
            allowed = split_allowed(doc)[1]
            if allowed and field in {f.name for f in dataclasses.fields(cls)}:
                yield pytest.param(cls, field, allowed, id=f"{cls.__name__}.{field}")


def test_every_defense_field_has_a_meaning():
    for name, cls in DEFENSES.items():
        docs = class_docs(cls)
        missing = [f.name for f in dataclasses.fields(cls) if not split_allowed(
            docs.get(f.name, ""))[0]]
        assert not missing, f"{name}: no `Attributes:` entry for {missing}"


@pytest.mark.parametrize("cls, field, allowed", list(stated_ranges()))
def test_stated_range_is_the_checked_one(cls, field, allowed):
    stated = checks(allowed)
    if stated is None:
        assert allowed.startswith("depends"), f"unreadable Allowed: {allowed!r}"
        return
    accepted, rejected = stated
    for value in accepted:
        cls(**{field: value})
    for value in rejected:
        with pytest.raises(ConfigError, match=field):
            cls(**{field: value})


def test_describe_defense_shows_each_field(capsys):
    assert cli.main(["describe", "laplace"]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("scale "))
    assert row.split()[:5] == ["scale", "float", "0.01", ">=", "0"] and " yes " in row
    assert "needs of the batch: batch_cut" in out and "draws randomness in: cut" in out
    ladsg = describe("ladsg")
    rows = {line.split()[0]: line for line in ladsg.splitlines()[9:]}
    assert set(rows) == {f.name for f in dataclasses.fields(DEFENSES["ladsg"])}
    assert " yes " in rows["rho"] and " no " in rows["mode"]     # traced knob, static choice
    assert "one of decoy, cosine, flsg" in rows["mode"]
    assert "binary tasks only" in describe("marvell")


def test_describe_chain_attack_and_dataset():
    chained = describe("laplace+compression")
    assert chained.startswith("defense laplace") and "\ndefense compression" in chained
    passive = describe("passive_mc")
    assert "reads: features, bottom, known_labels" in passive and "MixMatchConfig" in passive
    assert "ema_decay" in passive and "[0, 1)" in passive
    assert "MixMatchConfig" not in describe("direct_argmin")
    digits = describe("digits", "dataset")
    assert "10 classes" in digits and "known labels: 40" in digits and "epochs=30" in digits
    assert "num_classes=2" in describe("synthetic")


def test_fields_of_reads_member_docs():
    infos = {info.name: info for info in fields_of(DEFENSES["dcae"])}
    assert "(undocumented)" not in {info.meaning for info in infos.values()}
    assert infos["bins"].meaning == split_allowed(class_docs(DEFENSES["discrete_sgd"])
                                                  ["bins"])[0]


@pytest.mark.parametrize("argv, message", [
    (["describe", "nope"], "name: unknown value 'nope'; allowed: active_mc, bhi, "),
    (["describe", "digits", "--kind", "defense"], "defense: unknown value 'digits'"),
    (["describe", "laplace+nope"], "defense: unknown value 'nope'"),
])
def test_describe_errors(argv, message, capsys):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_a_name_in_two_registries_needs_kind(monkeypatch):
    monkeypatch.setitem(DEFENSES, "digits", DEFENSES["laplace"])
    with pytest.raises(ConfigError, match=r"'digits' is a defense and a dataset; pick one "
                                          r"with --kind"):
        describe("digits")
    assert describe("digits", "dataset").startswith("dataset digits")
