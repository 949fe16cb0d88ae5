"""Plugins (DESIGN §2): the shipped example through the console script and the defense table,
an installed package's entry points, and the one-line errors of a bad plugin."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

from ladsg_jax.attacks.registry import ATTACKS
from ladsg_jax.app.cli import main
from ladsg_jax.defenses import DEFENSES

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLE = os.path.join(ROOT, "examples", "plugins", "rotation.py")
CONSOLE = shutil.which("ladsg-jax", path=os.path.dirname(sys.executable))
SMALL = ["--dataset", "digits", "--epochs", "1", "--seeds", "1", "--no-progress"]


def run(argv, env=None, cwd=None):
    return subprocess.run(argv, capture_output=True, text=True, cwd=cwd, timeout=600,
                          env={**os.environ, "JAX_PLATFORMS": "cpu", **(env or {})})


@pytest.fixture()
def plugin(tmp_path):
    path = tmp_path / "plugin" / "rotation.py"
    path.parent.mkdir()
    shutil.copy(EXAMPLE, path)
    return str(path)


@pytest.mark.slow
def test_the_example_plugin_attacks_and_sweeps_through_the_console_script(tmp_path, plugin):
    assert CONSOLE, "the console script `ladsg-jax` is installed beside the interpreter"
    runs = str(tmp_path / "runs")
    attack = run([CONSOLE, "attack", "--plugin", plugin, "--defense", "rotation",
                  "--attack", "message_lr", "direct", "--top-model", "none", *SMALL,
                  "--runs-dir", runs, "--name", "a"])
    assert attack.returncode == 0, attack.stderr
    report = json.loads(open(os.path.join(runs, "a", "result.json")).read())
    assert report["config"]["defense"] == {"name": "rotation", "seed": 0, "angle": 1.0}
    scores = report["attacks"]
    # a rotation turns the first-negative rule off; learning from the known labels undoes it
    assert scores["direct"]["mean"] < 0.5 and scores["message_lr"]["mean"] > 0.9
    sweep = run([CONSOLE, "sweep", "--plugin", plugin, "--defense", "rotation",
                 "--grid", "seed=0,1", "--attack", "message_lr", *SMALL, "--runs-dir", runs,
                 "--name", "s"])
    assert sweep.returncode == 0, sweep.stderr
    grid = json.loads(open(os.path.join(runs, "s", "result.json")).read())["grid"]
    assert [p["values"] for p in grid] == [{"seed": 0.0}, {"seed": 1.0}]
    assert all(0.0 <= p["attacks"]["message_lr"]["mean"] <= 1.0 for p in grid)
    listing = run([CONSOLE, "list", "attacks"], env={"LADSG_JAX_PLUGINS": plugin})
    assert listing.returncode == 0 and "message_lr" in listing.stdout


def test_the_defense_table_runs_a_plugin_row_from_its_config(tmp_path, plugin):
    config = tmp_path / "plugin" / "table.json"
    config.write_text(json.dumps({
        "datasets": ["digits"], "seeds": 1, "plugins": ["rotation.py"],   # beside the config
        "train": {"epochs": 1}, "attacks": ["message_lr", "direct_argmin"],
        "settings": {"none": ["none", {}], "rotation 1.0": ["rotation", {"angle": 1.0}]}}))
    out = tmp_path / "table" / "t.json"
    done = run([sys.executable, os.path.join(ROOT, "experiments", "defense_table.py"),
                "--config", str(config), "--out", str(out)])
    assert done.returncode == 0, done.stderr
    rows = json.loads(out.read_text())["records"]
    assert [(r["dataset"], r["setting"]) for r in rows] == [("digits", "none"),
                                                           ("digits", "rotation 1.0")]
    assert set(rows[1]["attacks"]) == {"message_lr", "direct_argmin", "direct_strongest"}
    assert rows[1]["configs"]["none"]["epochs"] == 1
    assert "msg-lr" in (tmp_path / "table" / "t.md").read_text()


@pytest.mark.slow
def test_an_installed_package_registers_through_its_entry_points(tmp_path):
    site = tmp_path / "site"
    (site / "halving").mkdir(parents=True)
    (site / "halving" / "__init__.py").write_text(textwrap.dedent("""
        import dataclasses
        from typing import ClassVar

        from ladsg_jax.attacks.base import Attack
        from ladsg_jax.attacks.direct import run_argmin
        from ladsg_jax.defenses import Defense


        @dataclasses.dataclass(frozen=True)
        class Halve(Defense):
            name: ClassVar[str] = "halve"
            summary: ClassVar[str] = "every message times a factor"
            hyper: ClassVar[tuple] = ("factor",)
            factor: float = 0.5

            def cut(self, hp, g, ctx):
                return g * hp["factor"]


        SECOND_ARGMIN = Attack("second_argmin", "argmin again", run_argmin, "top1",
                               ("wire_last",), top_model="none", group="none")
    """))
    info = site / "halving-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: halving\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[ladsg_jax.defenses]\nhalve = halving:Halve\n\n"
        "[ladsg_jax.attacks]\nsecond_argmin = halving:SECOND_ARGMIN\n")
    env = {"PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    defenses = run([sys.executable, "-m", "ladsg_jax", "list", "defenses"], env=env)
    attacks = run([sys.executable, "-m", "ladsg_jax", "list", "attacks"], env=env)
    assert defenses.returncode == 0 and attacks.returncode == 0, defenses.stderr
    assert "halve" in defenses.stdout and "second_argmin" in attacks.stdout
    attack = run([sys.executable, "-m", "ladsg_jax", "attack", "--defense", "halve",
                  "--defense.factor", "0.25", "--attack", "second_argmin", *SMALL,
                  "--runs-dir", str(tmp_path / "runs"), "--name", "h"], env=env)
    assert attack.returncode == 0, attack.stderr
    assert json.loads((tmp_path / "runs" / "h" / "result.json").read_text())["attacks"][
        "second_argmin"]["mean"] > 0.9               # scaling keeps the argmin


def test_two_plugins_with_one_name_clash_in_one_line(tmp_path, plugin):
    other = tmp_path / "other" / "rotation.py"
    other.parent.mkdir()
    shutil.copy(EXAMPLE, other)
    done = run([CONSOLE, "list", "defenses", "--plugin", plugin, "--plugin", str(other)])
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip().splitlines() == [
        f"ladsg-jax: error: plugin: {other}: defense name 'rotation' is already registered"]


BAD_PLUGINS = {
    "raises.py": ("import math\nmath.sqrt(-1)\n", "does not import: ValueError: math domain "
                                                   "error (raises.py:2)"),
    "empty.py": ("X = 1\n", "defines neither DEFENSES"),
    "old_module.py": ("from ladsg_jax.sweep import run_sweep\n",
                      "No module named 'ladsg_jax.sweep' (old_module.py:1); since ladsg_jax "
                      "0.2.0 ladsg_jax.sweep is ladsg_jax.app.sweep (CHANGELOG.md)"),
    "not_a_list.py": ("DEFENSES = 3\n", "DEFENSES must be a list, got int"),
    "bad_attack.py": ("from ladsg_jax.attacks.base import Attack\nATTACKS = [Attack('x', "
                      "'', print, 'top1', ('wire_everything',))]\n",
                      "attack 'x'.reads: unknown value 'wire_everything'; allowed: bottom"),
    "clash.py": ("from ladsg_jax.attacks.base import Attack\nATTACKS = [Attack('direct', '', "
                 "print, 'top1', ('wire_last',))]\n",
                 "attack name 'direct' is already registered"),
    "no_name.py": ("import dataclasses\nfrom ladsg_jax.defenses import Defense\n"
                   "@dataclasses.dataclass(frozen=True)\nclass Mine(Defense):\n    pass\n"
                   "DEFENSES = [Mine]\n", "Mine needs a class attribute `name`"),
    "half.py": ("import dataclasses\nfrom typing import ClassVar\n"
                "from ladsg_jax.defenses import Defense\n"
                "@dataclasses.dataclass(frozen=True)\nclass Mine(Defense):\n"
                "    name: ClassVar[str] = 'mine'\nDEFENSES = [Mine]\nATTACKS = [Mine]\n",
                "expected a ladsg_jax.attacks.base.Attack, got type"),
}


@pytest.mark.parametrize("name", sorted(BAD_PLUGINS))
def test_a_bad_plugin_is_one_line_naming_it_and_exit_2(tmp_path, capsys, name):
    source, message = BAD_PLUGINS[name]
    path = tmp_path / name
    path.write_text(source)
    before = (dict(DEFENSES), dict(ATTACKS))
    assert main(["list", "attacks", "--plugin", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and len(captured.err.strip().splitlines()) == 1
    assert captured.err.startswith(f"ladsg-jax: error: plugin: {path}: ")
    assert message in captured.err
    assert (dict(DEFENSES), dict(ATTACKS)) == before           # nothing half-registered


def test_a_missing_plugin_file_and_module(tmp_path, capsys):
    assert main(["list", "defenses", "--plugin", str(tmp_path / "nowhere.py")]) == 2
    assert "nowhere.py: no such file" in capsys.readouterr().err
    assert main(["list", "defenses", "--plugin", "no_such_module_here"]) == 2
    assert "no_such_module_here: does not import: ModuleNotFoundError" in capsys.readouterr().err


BAD_CUT = '''
import dataclasses
from typing import ClassVar

from ladsg_jax.defenses import Defense


@dataclasses.dataclass(frozen=True)
class BadCut(Defense):
    name: ClassVar[str] = "bad_cut"
    drop: bool = True

    def cut(self, hp, g, ctx):
        return g[:, :-1] if self.drop else g.astype("int32")


DEFENSES = [BadCut]
'''


def failed_plugin_run(tmp_path, capsys, source: str, name: str, argv: list[str]) -> str:
    """Trains with the plugin `source` (registering defense `name`) and `argv`; asserts exit 2,
    one error line and no traceback, nothing written; returns that line."""
    path = tmp_path / f"{name}.py"
    path.write_text(source)
    try:
        assert main(["train", "--plugin", str(path), *argv, "--runs-dir",
                     str(tmp_path / "runs"), *SMALL]) == 2
    finally:
        DEFENSES.pop(name, None)
    err = capsys.readouterr().err.strip().splitlines()     # (TFDS may first say it prepares)
    assert [line for line in err if "Traceback" in line or "ladsg-jax" in line] == err[-1:]
    assert not (tmp_path / "runs").exists()
    return err[-1]


@pytest.mark.parametrize("drop, got", [("true", "shape (32, 9) and dtype float32"),
                                       ("false", "shape (32, 10) and dtype int32")])
def test_a_plugin_cut_of_the_wrong_shape_or_dtype_is_one_line_naming_the_defense(
        tmp_path, capsys, drop, got):
    line = failed_plugin_run(tmp_path, capsys, BAD_CUT, "bad_cut",
                             ["--defense", "bad_cut", "--defense.drop", drop])
    assert line.startswith("ladsg-jax: error: defense 'bad_cut': its cut returned an array "
                           f"of {got} for a message of shape (32, 10) and dtype float32")


UNDECLARED = '''
import dataclasses
from typing import ClassVar

import jax

from ladsg_jax.defenses import Defense


@dataclasses.dataclass(frozen=True)
class Jitter(Defense):
    """Gaussian noise on the message, drawn from the step's key without declaring it."""

    name: ClassVar[str] = "jitter"
    summary: ClassVar[str] = "noise, draws undeclared"
    in_forward: bool = False

    def forward(self, hp, state, hs, ctx, top_fn):
        if ctx is not None and self.in_forward:
            jax.random.normal(ctx["key"], (1,))
        return super().forward(hp, state, hs, ctx, top_fn)

    def cut(self, hp, g, ctx):
        return g + 1e-3 * jax.random.normal(ctx["key"], g.shape)


DEFENSES = [Jitter]
'''


@pytest.mark.parametrize("defense, options, named, hook", [
    ("jitter", [], "jitter", "cut"),
    ("jitter", ["--defense.in_forward", "true"], "jitter", "forward"),
    ("laplace+jitter", [], "jitter", "cut"),       # in a chain: the member is named
])
def test_a_defense_that_draws_without_declaring_it_is_one_line(tmp_path, capsys, defense,
                                                               options, named, hook):
    line = failed_plugin_run(tmp_path, capsys, UNDECLARED, "jitter",
                             ["--defense", defense, *options])
    assert line.startswith(f"ladsg-jax: error: defense '{named}': its {hook} reads "
                           "ctx['key'] (the step's PRNG key) but its `draws` does not name "
                           "'cut'")


BAD_HOOKS = '''
import dataclasses
from typing import ClassVar

import jax.numpy as jnp

from ladsg_jax.defenses import Defense


@dataclasses.dataclass(frozen=True)
class BadHook(Defense):
    """A defense with a mistake in the hook `broken`."""

    name: ClassVar[str] = "bad_hook"
    summary: ClassVar[str] = "a mistake in one hook"
    broken: str = "targets"

    def targets(self, hp, state, targets, labels, index):
        if self.broken == "targets":
            return jnp.concatenate([targets, targets[:, :1]], axis=1)
        return targets

    def cut(self, hp, g, ctx):
        return g @ jnp.ones((3, 3)) if self.broken == "cut" else g

    def update(self, hp, state, report, messages):
        return state, (jnp.zeros(3, bool) if self.broken == "update" else None), {}


DEFENSES = [BadHook]
'''


@pytest.mark.parametrize("broken, message", [
    ("targets", "its targets returned an array of shape (32, 11) and dtype float32 where "
                "targets of shape (32, 10) and dtype float32 belong"),
    ("cut", "its cut failed: TypeError: dot_general requires contracting dimensions to have "
            "the same shape, got (10,) and (3,)"),
    ("update", "its update returned blocked of shape (3,) and dtype bool where None or a "
               "bool array of shape (1,) (one per passive party) belongs"),
])
def test_a_plugin_hook_that_fails_is_one_line_naming_the_defense_and_hook(tmp_path, capsys,
                                                                         broken, message):
    line = failed_plugin_run(tmp_path, capsys, BAD_HOOKS, "bad_hook",
                             ["--defense", "bad_hook", "--defense.broken", broken])
    assert line.startswith(f"ladsg-jax: error: defense 'bad_hook': {message}"), line
