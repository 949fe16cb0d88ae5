"""The command line starts at once (issue 28): importing it, `--help` and argument errors load
neither JAX, Flax, scikit-learn nor TFDS; `list` and the registries load neither scikit-learn nor
TFDS. Each check runs in a fresh interpreter, whose `sys.modules` is what the command loaded."""
import json
import subprocess
import sys

import pytest

HEAVY = ("jax", "flax", "optax", "sklearn", "tensorflow_datasets", "tensorflow")
NOT_FOR_LISTS = ("sklearn", "tensorflow_datasets", "tensorflow")


def loaded_after(code: str) -> tuple[list[str], str]:
    """The heavy modules a fresh interpreter holds after running `code`, and its stderr."""
    probe = (f"import sys\n{code}\nimport json\n"
             f"print(json.dumps([m for m in {list(HEAVY)!r} if m in sys.modules]))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stderr


def test_importing_the_cli_loads_no_heavy_library():
    loaded, _ = loaded_after("import ladsg_jax.app.cli")
    assert loaded == []


def test_the_packages_and_the_configs_load_without_jax():
    loaded, _ = loaded_after("import ladsg_jax.defenses, ladsg_jax.models, ladsg_jax.data\n"
                             "from ladsg_jax.config import TrainConfig\n"
                             "from ladsg_jax.attacks.settings import AttackSettings\n"
                             "TrainConfig(); AttackSettings()")
    assert loaded == []


@pytest.mark.parametrize("argv", [["--help"], ["train", "--help"], ["attack", "--help"],
                                  ["sweep", "--help"], ["demo", "--help"]])
def test_help_loads_no_heavy_library(argv):
    loaded, _ = loaded_after("from ladsg_jax.app.cli import main\n"
                             f"try:\n    main({argv!r})\nexcept SystemExit as e:\n"
                             "    assert e.code == 0, e.code")
    assert loaded == []


@pytest.mark.parametrize("argv", [["train", "--epochz", "3"], ["train", "--epochs", "x"],
                                  ["frobnicate"], ["train", "--seeds", "0"]])
def test_argument_errors_exit_2_before_loading_a_heavy_library(argv):
    loaded, stderr = loaded_after("from ladsg_jax.app.cli import main\n"
                                  f"try:\n    code = main({argv!r})\nexcept SystemExit as e:\n"
                                  "    code = e.code\nassert code == 2, code")
    assert loaded == []
    assert "error" in stderr


@pytest.mark.parametrize("kind", ["defenses", "attacks", "datasets"])
def test_lists_need_neither_scikit_learn_nor_tfds(kind):
    loaded, _ = loaded_after(f"from ladsg_jax.app.cli import main\nassert main(['list', {kind!r}]) == 0")
    assert not set(loaded) & set(NOT_FOR_LISTS), loaded


def test_lazy_exports_are_the_modules_objects():
    from ladsg_jax import defenses, models
    from ladsg_jax.defenses.composite import chain
    from ladsg_jax.defenses.registry import DEFENSES
    from ladsg_jax.models.factory import make_bottom

    assert defenses.chain is chain and defenses.DEFENSES is DEFENSES
    assert models.make_bottom is make_bottom
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        defenses.nothing  # noqa: B018


def test_an_export_may_not_share_a_submodules_name():
    from ladsg_jax.lazy import lazy_exports

    with pytest.raises(ValueError, match="chain"):
        lazy_exports("ladsg_jax.defenses", {"chain": ("chain",)})
