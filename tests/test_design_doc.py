"""The design document a clone carries (`docs/DESIGN.md`): every `DESIGN §N` citation in the
source names one of its sections, nothing points to a design outside the repository, and it
names every part of the defense contract, so the check fails when the contract grows."""
from __future__ import annotations

import ast
import os
import re

import pytest

from ladsg_jax.attacks.base import READS
from ladsg_jax.defenses import base

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DESIGN = os.path.join(ROOT, "docs", "DESIGN.md")
TEXT_SUFFIXES = (".py", ".md", ".json", ".jsonl", ".toml", ".cfg", ".txt")
CITING = ("ladsg_jax", "experiments", "tests", "README.md")
CHECKED = CITING + ("CHANGELOG.md", "examples", "docs")
CITATION = re.compile(r"DESIGN\s+(§\s*\d+(?:\s*(?:,|and|–|-)\s*§\s*\d+)*)")
# built from parts, so that this file does not match itself
OUTSIDE = ("../" + "shared", "shared" + "/DESIGN")


def text_files(tops):
    """(path relative to the root, text) of every text file under `tops` (files or folders)."""
    for top in tops:
        path = os.path.join(ROOT, top)
        if os.path.isfile(path):
            found = [path]
        else:
            found = [os.path.join(folder, name) for folder, dirs, names in os.walk(path)
                     for name in names if "__pycache__" not in folder]
        for name in sorted(found):
            if name.endswith(TEXT_SUFFIXES):
                with open(name, encoding="utf-8", errors="replace") as handle:
                    yield os.path.relpath(name, ROOT), handle.read()


@pytest.fixture(scope="module")
def design() -> str:
    with open(DESIGN, encoding="utf-8") as handle:
        return handle.read()


def sections(design: str) -> set:
    return {int(n) for n in re.findall(r"^## (\d+)\. ", design, flags=re.MULTILINE)}


def test_the_design_has_its_eight_numbered_sections(design):
    assert sections(design) == set(range(1, 9))


def test_every_citation_names_a_section_of_the_design(design):
    have, cited, missing = sections(design), 0, []
    for path, text in text_files(CITING):
        for match in CITATION.finditer(text):
            for number in re.findall(r"§\s*(\d+)", match.group(1)):
                cited += 1
                if int(number) not in have:
                    line = text.count("\n", 0, match.start()) + 1
                    missing.append(f"{path}:{line}: §{number}")
    assert cited >= 50, f"only {cited} citations found: is the pattern still right?"
    assert not missing, "citations of sections docs/DESIGN.md lacks:\n" + "\n".join(missing)


def test_nothing_points_to_a_design_outside_the_repository():
    found = [f"{path}: {needle}" for path, text in text_files(CHECKED)
             for needle in OUTSIDE if needle in text]
    assert not found, "\n".join(found)


def test_the_readme_links_the_design():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as handle:
        assert "docs/DESIGN.md" in handle.read()


def contract_hooks() -> list:
    """Every method of `Defense` (the hooks, `hparams` and `check_data`)."""
    return sorted(name for name, value in vars(base.Defense).items()
                  if callable(value) and not name.startswith("_"))


def contract_attributes() -> list:
    """Every class attribute a defense declares (`name`, `hyper`, `needs`, `draws`, ...)."""
    return sorted(name for name, kind in base.Defense.__annotations__.items()
                  if "ClassVar" in str(kind))


def needs_constants() -> dict:
    """{constant name: value} of every entry of `NEEDS`."""
    named = {name: value for name, value in vars(base).items()
             if name.isupper() and name != "NEEDS" and value in base.NEEDS}
    assert sorted(named.values()) == sorted(base.NEEDS)
    return named


def step_context_keys() -> list:
    """The keys of the step's `ctx` dict, read from `vfl/step.py`'s source."""
    with open(os.path.join(ROOT, "ladsg_jax", "vfl", "step.py"), encoding="utf-8") as handle:
        tree = ast.parse(handle.read())
    for node in ast.walk(tree):
        if (isinstance(node, ast.Assign) and isinstance(node.value, ast.Dict)
                and any(isinstance(t, ast.Name) and t.id == "ctx" for t in node.targets)):
            return [key.value for key in node.value.keys]
    raise AssertionError("vfl/step.py builds no `ctx = {...}`")


def per_sample_context() -> list:
    """`PER_SAMPLE_CONTEXT` of `vfl/parallel.py` (the cut context entries it gathers)."""
    path = os.path.join(ROOT, "ladsg_jax", "vfl", "parallel.py")
    with open(path, encoding="utf-8") as handle:
        tree = ast.parse(handle.read())
    for node in tree.body:
        if (isinstance(node, ast.Assign)
                and [getattr(t, "id", None) for t in node.targets] == ["PER_SAMPLE_CONTEXT"]):
            return list(ast.literal_eval(node.value))
    raise AssertionError("vfl/parallel.py defines no PER_SAMPLE_CONTEXT")


def test_the_design_names_every_part_of_the_defense_contract(design):
    hooks = contract_hooks()
    assert {"init", "targets", "forward", "cut", "update", "penalty", "decode"} <= set(hooks)
    wanted = {"hook": hooks, "class attribute": contract_attributes(),
              "ctx key": step_context_keys(), "gathered context entry": per_sample_context(),
              "attack reads": list(READS)}
    for name, value in needs_constants().items():
        wanted.setdefault("needs", []).extend([name, value])
    missing = [f"{kind} {item}" for kind, items in wanted.items() for item in items
               if f"`{item}`" not in design and f"`{item}(" not in design]
    assert not missing, "docs/DESIGN.md does not name: " + ", ".join(missing)


def test_the_design_says_what_the_data_parallel_step_does_with_each_need(design):
    section = design.split("### 2.6", 1)[1].split("\n### ", 1)[0]
    for name in needs_constants():
        assert f"| `{name}` |" in section, name
