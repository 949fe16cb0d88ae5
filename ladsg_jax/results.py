"""Writing results: JSON written atomically, so a killed run never leaves half a file."""
from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile

import numpy as np


def to_jsonable(value):
    """Arrays and numpy scalars as lists and numbers; tuples as lists; NaN and infinities as
    None (JSON null: a record says why, e.g. a run's `diverged` reason); everything else as
    is."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if hasattr(value, "tolist"):
        return to_jsonable(np.asarray(value).tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# The layout of the result files (`write_result`, `write_records`): 2 since ladsg_jax 0.2.0
# (attacks scored by the suite, the direct attacks' `readings` and `direct_strongest`, `dcs` as
# VFLAIR's beside `dcs_chance`); a file with no `schema` is 0.1's (CHANGELOG.md).
RECORD_SCHEMA = 2


def check_schema(path: str, payload: dict) -> None:
    """Raises `ConfigError` naming `path` unless its records are of `RECORD_SCHEMA`."""
    from ladsg_jax.errors import ConfigError

    found = payload.get("schema", 1) if isinstance(payload, dict) else None
    if found != RECORD_SCHEMA:
        raise ConfigError(path, f"records of schema {found}; this ladsg_jax reads schema "
                                f"{RECORD_SCHEMA} (CHANGELOG.md): write them to a new file")


def read_records(path: str) -> list[dict]:
    """The `records` of a results file written by a resumable sweep; [] when there is none.
    A file of another record schema is a `ConfigError` naming it (`check_schema`)."""
    if not os.path.exists(path):
        return []
    with open(path) as f:
        payload = json.load(f)
    check_schema(path, payload)
    return payload["records"]


def write_records(path: str, records: list, header: dict | None = None) -> str:
    """A resumable sweep's results file: `header`, the record schema and `records`."""
    return write_json_atomic(path, {"schema": RECORD_SCHEMA, **(header or {}),
                                    "records": records})


def write_result(path: str, record: dict) -> str:
    """One command's result file: `record` with the record schema."""
    return write_json_atomic(path, {"schema": RECORD_SCHEMA, **record})


def sweep_arguments(parser, default_out: str, default_seeds: int):
    """The options every resumable sweep script shares: data sets, seeds, output, --table."""
    parser.add_argument("--datasets", nargs="+", default=["digits", "breast_cancer"])
    parser.add_argument("--seeds", type=int, default=default_seeds)
    parser.add_argument("--out", default=default_out,
                        help="results JSON; settings already in it are not run again")
    parser.add_argument("--table", action="store_true",
                        help="print the Markdown table(s) of --out and exit")
    return parser


@contextlib.contextmanager
def replace_atomic(path: str):
    """Yields a temporary path beside `path`; when the block ends without error the file
    written there is synced and renamed over `path`, so a reader (or a kill) sees the old file
    or the new one, never half of one. On error the temporary file is removed."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=os.path.splitext(path)[1])
    os.close(fd)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)        # mkstemp makes 0600; results are ordinary files
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_text_atomic(path: str, text: str) -> str:
    """Writes `text` to `path` atomically (see `replace_atomic`)."""
    with replace_atomic(path) as tmp:
        with open(tmp, "w") as f:
            f.write(text)
    return path


def write_csv_atomic(path: str, rows: list[dict]) -> str:
    """Writes `rows` (dicts with the same keys) as CSV with a header, atomically."""
    import csv
    import io

    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]) if rows else [])
    writer.writeheader()
    writer.writerows(rows)
    return write_text_atomic(path, out.getvalue())


def emit_json_line(record: dict, path: str | None = None) -> None:
    """Prints `record` as one JSON line and, with `path`, appends the line there (the
    benchmarks' records: a killed run keeps every line it printed)."""
    line = json.dumps(record)
    print(line, flush=True)
    if path:
        with open(path, "a") as f:
            f.write(line + "\n")


def write_json_atomic(path: str, payload: dict) -> str:
    """Writes `payload` as JSON to `path` atomically (see `write_text_atomic`)."""
    return write_text_atomic(path, json.dumps(to_jsonable(payload), indent=2, allow_nan=False))


def summary(values) -> dict:
    """Mean and standard deviation (over seeds) of a list of numbers. None entries (a diverged
    run's) and non-finite ones are left out; `missing` counts them when there are any, and
    with nothing left the mean and std are None."""
    kept = [float(v) for v in np.asarray(values, dtype=object).reshape(-1)
            if v is not None and math.isfinite(float(v))]
    missing = int(np.size(values)) - len(kept)
    out = ({"mean": float(np.mean(kept)), "std": float(np.std(kept))} if kept else
           {"mean": None, "std": None})
    out["n"] = len(kept)
    if missing:
        out["missing"] = missing
    return out


def mean_std(record: dict, digits: int = 3, sep: str = " ± ") -> str:
    """A `summary` as 'mean ± std', or 'diverged' when every run of it diverged (mean None)."""
    if record["mean"] is None:
        return "diverged"
    return f"{record['mean']:.{digits}f}{sep}{record['std']:.{digits}f}"


def check_writable_dir(field: str, path: str) -> None:
    """Raises `ConfigError(field, ...)` unless `path` is a folder, or can be made as one, that
    this process may write in: checked before any training, so no compute is lost to a bad
    path. Nothing is created."""
    from ladsg_jax.errors import ConfigError

    path = os.path.abspath(os.path.expanduser(path))
    if os.path.exists(path) and not os.path.isdir(path):
        raise ConfigError(field, f"{path} exists and is not a folder")
    parent = path
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        raise ConfigError(field, f"{path} cannot be made: {parent} is not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(field, f"{path}: {parent} is not writable")


def check_run_name(name: str | None) -> None:
    """A run's name is one folder name inside the runs folder (no separators, not '.' or
    '..')."""
    from ladsg_jax.errors import ConfigError

    if name is not None and (not name.strip() or name in (".", "..") or "/" in name
                             or (os.sep in name) or (os.altsep and os.altsep in name)):
        raise ConfigError("name", f"must be one folder name inside --runs-dir, got {name!r}")
