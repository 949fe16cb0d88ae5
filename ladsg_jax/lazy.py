"""Package attributes imported on first use (PEP 562), so that `import ladsg_jax.app.cli` and the
command line's `--help` load neither JAX nor scikit-learn: a package's `__init__` names what it
exports and the module each comes from, and the module is imported when a name is read."""
from __future__ import annotations

import importlib


def lazy_exports(package: str, modules: dict[str, tuple[str, ...]]):
    """`__getattr__` and `__dir__` for `package`, exporting each name of `modules[MODULE]`
    from `package.MODULE`. A submodule's name must not be one of the exported names (the
    import system binds it on the package and would hide the export)."""
    where = {name: module for module, names in modules.items() for name in names}
    clashes = sorted(set(where) & set(modules))
    if clashes:
        raise ValueError(f"{package}: exported names that are also its submodules: {clashes}")

    def __getattr__(name: str):
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{module}"), name)

    def __dir__():
        return sorted(where)

    return __getattr__, __dir__
