"""What the command line does around every command that computes (`COMPUTING`): JAX's
persistent compilation cache switched on (`compile_cache.py`), the programs counted for the
result's `timing` (`compilation.py`), and the result's `provenance`."""
from __future__ import annotations

import argparse
import contextlib
import datetime
import sys

from ladsg_jax import compile_cache

COMPUTING = ("train", "attack", "sweep", "demo")     # the commands that compile programs


@contextlib.contextmanager
def compiling(args: argparse.Namespace):
    """Around a command that computes: JAX's persistent compilation cache switched on (unless
    --no-compile-cache) and the command's programs counted (`args.compile_stats`, for its
    record's `timing`); afterwards one line if a warm cache served nothing."""
    from ladsg_jax.compilation import count_compilations

    args.started = datetime.datetime.now(datetime.timezone.utc)
    compile_cache.from_args(args)
    with count_compilations() as stats:
        args.compile_stats = stats
        yield stats
    line = compile_cache.no_hit_line(stats.record())
    if line:
        print(f"ladsg-jax: {line}", file=sys.stderr)


def run_provenance(args: argparse.Namespace) -> dict:
    """Where this command's result comes from (`ladsg_jax.app.provenance`); called after training,
    since a multi-process run must initialize before anything touches a device."""
    from ladsg_jax.app.provenance import provenance

    record = provenance(args.argv, args.seed, args.started)
    if getattr(args, "config_file", None):
        record["config_file"] = args.config_file
    return record
