"""JAX's persistent compilation cache, on by default in every entry point (never on import).

A study is dozens of commands that compile the same small programs; with the cache a second
run loads them from disk instead (https://docs.jax.dev/en/latest/persistent_compilation_cache.html).
The folder is `$LADSG_JAX_CACHE_DIR`, else `~/.cache/ladsg_jax/xla`; every program is cached
whatever its compile time or size, and the folder is kept under `MAX_BYTES`: `enable` drops
the least recently used programs once, when a command starts. (JAX's own bound,
`jax_compilation_cache_max_size`, lists and reads the whole folder on every program it writes:
with 3,000 cached programs that added about 0.2 s to each compilation, and most of the test
suite's compilations are of small programs, so it stays off.) A cached executable is the compiled program itself, so a run
gives the same numbers from a cold cache, a warm one or none.

    enable(cache_dir())                  # at the start of a command, before anything compiles
    ladsg-jax cache clear                # empties the folder
"""
from __future__ import annotations

import os
import shutil

ENV = "LADSG_JAX_CACHE_DIR"
MAX_BYTES = 2 * 1024 ** 3
SUFFIX = "-cache"                   # a cached program's file name ends so in JAX's folder
NO_HIT_HINT = ("on some CPUs jax rejects every cached executable on reload and says so only "
               "in its log (jax-ml/jax#38445); --no-compile-cache turns the cache off")


def cache_dir(environ=os.environ) -> str:
    """The cache folder: `$LADSG_JAX_CACHE_DIR`, else ~/.cache/ladsg_jax/xla."""
    return environ.get(ENV) or os.path.join(os.path.expanduser("~"), ".cache", "ladsg_jax",
                                            "xla")


def enable(path: str, max_bytes: int = MAX_BYTES) -> str:
    """Switches JAX's persistent compilation cache on in `path` for this process, for every
    program (no minimum compile time or size), after pruning the folder to `max_bytes`
    (`prune`). Call it before the first compilation: JAX reads these settings when it first
    uses the cache."""
    import jax

    os.makedirs(path, exist_ok=True)
    prune(path, max_bytes)
    jax.config.update("jax_enable_compilation_cache", True)
    jax.config.update("jax_compilation_cache_dir", path)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
    jax.config.update("jax_compilation_cache_max_size", -1)     # no scan per write (module doc)
    return path


def prune(path: str, max_bytes: int) -> int:
    """Deletes the least recently used cached programs until the folder's programs take at most
    `max_bytes`; returns how many it deleted. Recency is a file's last access or modification
    time, whichever is later (an access time the file system keeps coarsely still orders
    programs unused for days). A file another process deletes meanwhile is skipped."""
    programs = []
    for name in os.listdir(path):
        if name.endswith(SUFFIX):
            try:
                stat = os.stat(os.path.join(path, name))
            except OSError:
                continue
            programs.append((max(stat.st_atime, stat.st_mtime), name, stat.st_size))
    total = sum(size for _, _, size in programs)
    deleted = 0
    for _, name, size in sorted(programs):
        if total <= max_bytes:
            break
        for stale in (name, name[:-len(SUFFIX)] + "-atime"):    # JAX's recency file, if any
            try:
                os.remove(os.path.join(path, stale))
            except OSError:
                pass
        total -= size
        deleted += 1
    return deleted


def disable() -> None:
    """No persistent cache for this process (`--no-compile-cache`)."""
    import jax

    jax.config.update("jax_enable_compilation_cache", False)


def entries(path: str) -> int:
    """How many cached programs the folder holds (0 when it does not exist)."""
    if not os.path.isdir(path):
        return 0
    return sum(1 for name in os.listdir(path) if name.endswith(SUFFIX))


def folder_bytes(path: str) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.path.getsize(os.path.join(root, name))
            except OSError:
                pass
    return total


def clear(path: str) -> tuple[int, int]:
    """Empties the cache folder; returns (cached programs, bytes) it held."""
    held = entries(path), folder_bytes(path)
    if os.path.isdir(path):
        shutil.rmtree(path)
    return held


def no_hit_line(timing: dict) -> str | None:
    """One line when a run that found cached programs at its start loaded none of them."""
    if timing.get("cache_entries_at_start", 0) and timing.get("cache_requests", 0) \
            and not timing.get("cache_hits", 0):
        return (f"compile cache: {timing['cache_entries_at_start']} programs were cached in "
                f"{timing.get('cache_dir')}, but none of this run's {timing['cache_requests']} "
                f"came from it (new code or settings need new programs; {NO_HIT_HINT})")
    return None


def add_argument(parser) -> None:
    """`--no-compile-cache` for an entry point's parser."""
    parser.add_argument("--no-compile-cache", action="store_true",
                        help=f"compile everything afresh: no persistent compilation cache "
                             f"(default: on, in ${ENV} or ~/.cache/ladsg_jax/xla)")


def from_args(args) -> str | None:
    """The cache as an entry point's arguments ask (`add_argument`): on in `cache_dir()`, or
    off; returns the folder, or None when off."""
    if getattr(args, "no_compile_cache", False):
        disable()
        return None
    return enable(cache_dir())
