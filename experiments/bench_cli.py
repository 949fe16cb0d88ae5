"""What a user waits for at the command line (issue 28): whole `ladsg-jax` commands timed as
processes, one JSON line per case with the median, minimum and maximum wall time over its runs
and the machine's 1-minute load average before and after.

A case marked "first" runs with an empty compilation cache every time (the folder is emptied
before each run); its "second" partner runs right after a "first" run of the same command, so
its cache holds what that run compiled. The cache folder is a temporary one
(`$LADSG_JAX_CACHE_DIR`), never the user's.

    python experiments/bench_cli.py --out experiments/results/bench_cli_cpu_DATE.jsonl
    python experiments/bench_cli.py --cases help list_defenses bad_flag --runs 5
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from ladsg_jax.results import emit_json_line

CLI = [sys.executable, "-m", "ladsg_jax.app.cli"]
# name: (arguments, runs by default, whether it compiles, so is timed cold then warm)
CASES = {
    "help": (["--help"], 5, False),
    "list_defenses": (["list", "defenses"], 5, False),
    "bad_flag": (["train", "--epochz", "3"], 5, False),
    "train": (["train", "--dataset", "breast_cancer", "--seeds", "2", "--no-progress"], 5, True),
    "sweep": (["sweep", "--dataset", "digits", "--defense", "ladsg", "--grid",
               "rho=0.1,0.5,0.9", "--seeds", "2", "--attack", "none", "--no-progress"], 5,
              True),
    "demo": (["demo", "--no-progress"], 3, True),
}


def load_1m() -> float:
    return os.getloadavg()[0]


def timed(args: list[str], env: dict, runs_dir: str) -> tuple[float, int]:
    """Wall seconds and exit status of one run of `ladsg-jax ARGS`."""
    extra = ["--runs-dir", runs_dir] if args[0] in ("train", "sweep", "demo", "attack") else []
    start = time.perf_counter()
    done = subprocess.run(CLI + args + extra, env=env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)
    return time.perf_counter() - start, done.returncode


def stats(values: list[float]) -> dict:
    return {"median_s": statistics.median(values), "min_s": min(values), "max_s": max(values),
            "runs": len(values), "each_s": [round(v, 3) for v in values]}


def bench_case(name: str, runs: int, work: str) -> list[dict]:
    args, _, compiles = CASES[name]
    cache = os.path.join(work, "xla-cache")
    env = {**os.environ, "LADSG_JAX_CACHE_DIR": cache}
    runs_dir = os.path.join(work, "runs")
    first, second, codes = [], [], set()
    load_before = load_1m()
    for _ in range(runs):
        shutil.rmtree(cache, ignore_errors=True)
        wall, code = timed(args, env, runs_dir)
        first.append(wall)
        codes.add(code)
        if compiles:
            wall, code = timed(args, env, runs_dir)
            second.append(wall)
            codes.add(code)
    base = {"command": "ladsg-jax " + " ".join(args), "exit_status": sorted(codes),
            "load_1m_before": round(load_before, 2), "load_1m_after": round(load_1m(), 2),
            "cpus": os.cpu_count()}
    if not compiles:
        return [{"what": name, **base, **stats(first)}]
    return [{"what": f"{name} first", **base, **stats(first)},
            {"what": f"{name} second", **base, **stats(second),
             "second_over_first": statistics.median(second) / statistics.median(first)}]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", choices=list(CASES), default=list(CASES))
    parser.add_argument("--runs", type=int, help="runs per case (default 5, the demo 3)")
    parser.add_argument("--label", default="", help="recorded in every line (e.g. before)")
    parser.add_argument("--out", help="also append the JSON lines to this file")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="ladsg-bench-cli-") as work:
        for name in args.cases:
            for record in bench_case(name, args.runs or CASES[name][1], work):
                emit_json_line({**record, "label": args.label}, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
