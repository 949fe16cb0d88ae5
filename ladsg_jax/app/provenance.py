"""Where a result came from: the package and its git commit, the libraries' versions, the
devices, the command line, the base seed and the start time, recorded in every result file so
that a number can be traced to the code and machine that made it."""
from __future__ import annotations

import datetime
import importlib.metadata
import os
import platform
import shlex
import subprocess
import sys

LIBRARIES = ("jax", "jaxlib", "flax", "optax", "numpy")


def version_of(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def git_state(folder: str) -> dict | None:
    """The commit of the checkout holding `folder` and whether its tracked or untracked files
    differ from it (`dirty`); None outside a git checkout or without git."""
    def git(*args):
        return subprocess.run(["git", "-C", folder, *args], capture_output=True, text=True,
                              timeout=10)
    try:
        commit = git("rev-parse", "HEAD")
        if commit.returncode != 0:
            return None
        status = git("status", "--porcelain", "--untracked-files=normal")
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit.stdout.strip(),
            "dirty": bool(status.stdout.strip()) if status.returncode == 0 else None}


def provenance(argv: list[str] | None = None, seed: int | None = None,
               started: datetime.datetime | None = None) -> dict:
    """The record of where a run came from (imports JAX: call it where the run computes)."""
    import jax

    devices = jax.devices()
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))     # ladsg_jax/
    return {
        "package": {"name": "ladsg-jax", "version": version_of("ladsg-jax"),
                    "path": package, "git": git_state(package)},
        "versions": {"python": platform.python_version(),
                     **{name: version_of(name) for name in LIBRARIES}},
        "backend": jax.default_backend(),
        "devices": {"kind": devices[0].device_kind, "count": len(devices),
                    "local_count": jax.local_device_count()},
        "process_count": jax.process_count(),
        "platform": platform.platform(),
        "seed": seed,
        "command": shlex.join(sys.argv[:1] + list(sys.argv[1:] if argv is None else argv)),
        "started": (started or datetime.datetime.now(datetime.timezone.utc)).isoformat(
            timespec="seconds"),
    }
