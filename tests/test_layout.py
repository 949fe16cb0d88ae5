"""The package's layout rules: small modules with one job each, and a training core (`vfl/`)
that knows defenses only through their contract (`defenses/base.py`), never a concrete one."""
import ast
import pathlib

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "ladsg_jax"
MAX_LINES = 300
CONTRACT = {"ladsg_jax.defenses", "ladsg_jax.defenses.base"}   # `Defense` and its constants


def imported_modules(path: pathlib.Path) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module)
            modules.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
    return modules


def test_no_module_is_longer_than_300_lines():
    lengths = {str(p.relative_to(PACKAGE)): len(p.read_text().splitlines())
               for p in PACKAGE.rglob("*.py")}
    assert len(lengths) > 50                                   # the walk found the package
    assert {name: n for name, n in lengths.items() if n > MAX_LINES} == {}


def test_the_training_core_imports_no_concrete_defense():
    concrete = {f"ladsg_jax.defenses.{p.stem}" for p in (PACKAGE / "defenses").glob("*.py")
                if p.stem not in ("__init__", "base")}
    assert "ladsg_jax.defenses.ladsg" in concrete
    for path in (PACKAGE / "vfl").glob("*.py"):
        imports = imported_modules(path)
        assert not imports & concrete, path.name
        from_package = {m for m in imports if m.startswith("ladsg_jax.defenses.")}
        names = {m.rsplit(".", 1)[1] for m in from_package - CONTRACT
                 if m.rsplit(".", 1)[0] in CONTRACT}
        assert names <= {"Defense", "BATCH_CUT", "PER_SAMPLE", "WHOLE_BATCH", "NEEDS",
                         "call_hook", "check_returned"}, \
            (path.name, names)


def test_the_core_never_imports_the_application_layer():
    """The core (everything outside `ladsg_jax/app/`) stands without the command line, the
    experiment function, tables and plugins built on it."""
    app = {f"ladsg_jax.app.{p.stem}" for p in (PACKAGE / "app").glob("*.py")} | {"ladsg_jax.app"}
    assert "ladsg_jax.app.cli" in app
    core = [p for p in PACKAGE.rglob("*.py") if "app" not in p.relative_to(PACKAGE).parts
            and p.name != "__main__.py"]
    assert len(core) > 40
    for path in core:
        assert not imported_modules(path) & app, path.relative_to(PACKAGE)
