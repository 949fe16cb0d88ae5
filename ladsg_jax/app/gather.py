"""`ladsg-jax table`: result files of `train`, `attack` and `sweep` gathered into one table, one
row per run (and per point of a sweep) and setting, each defense ranked by its strongest attack.

A row holds the main task (MP) of its setting, every attack scored there (mean ± std over the
seeds that did not diverge), the strongest attack and the raw-feature floor beside it, and two
defense capability scores at the strongest attack (VFLAIR's DCS, Zou et al. 2024: `dcs` with
ideal attack performance 0, `dcs_chance` with top-1's chance level; DESIGN §6).

The strongest attack and the floor are `ladsg_jax.app.ranking`'s: the highest label recovery (top-1
of the training labels) among the attacks that read the VFL run, a direct attack's readings
each a candidate, beside the better of the raw-feature baselines (`raw_mc`,
`raw_classifier`); leak AUCs keep their own columns. A defense is as good as the strongest
attack tried against it, so this is the column to rank by. The DCS needs the undefended MP of
the same data set and setting: a `defense none` row among the files gathered (else "–").
"""
from __future__ import annotations

import csv
import io
import json
import os

from ladsg_jax.errors import ConfigError
from ladsg_jax.results import RECORD_SCHEMA, mean_std

def result_files(paths: list[str]) -> list[str]:
    """The result files named in `paths`: files as they are, folders searched for
    `result.json` (sorted); a path that does not exist, or a folder holding none, is an error."""
    found = []
    for path in paths:
        if os.path.isfile(path):
            found.append(path)
        elif os.path.isdir(path):
            mine = sorted(os.path.join(root, "result.json") for root, _, files in os.walk(path)
                          if "result.json" in files)
            if not mine:
                raise ConfigError("table", f"{path}: no result.json below this folder")
            found += mine
        else:
            raise ConfigError("table", f"{path}: no such file or folder")
    return list(dict.fromkeys(found))


def read_result(path: str) -> dict:
    try:
        with open(path) as handle:
            record = json.load(handle)
    except (OSError, json.JSONDecodeError) as err:
        raise ConfigError(path, f"not a readable result file: {err}") from None
    if not isinstance(record, dict):
        raise ConfigError(path, "not a result file: expected a JSON object")
    if record.get("schema", 1) != RECORD_SCHEMA:
        raise ConfigError(path, f"records of schema {record.get('schema', 1)}; this ladsg_jax "
                                f"reads schema {RECORD_SCHEMA} (CHANGELOG.md)")
    return record


def run_label(path: str) -> str:
    """A run's name: its folder's (`runs/NAME/result.json`), else the file's."""
    folder, name = os.path.split(os.path.abspath(path))
    return os.path.basename(folder) if name == "result.json" else name


def defense_label(defense: dict, values: dict) -> str:
    """The defense's name with the options that differ from its defaults, and a sweep point's
    values."""
    from ladsg_jax.defenses import DEFENSES

    name = defense.get("name", "?")
    options = {k: v for k, v in defense.items() if k != "name"}
    cls = DEFENSES.get(name)
    if cls is not None and name != "chain":
        defaults = cls().options
        plain = lambda v: tuple(v) if isinstance(v, list) else v            # noqa: E731
        options = {k: v for k, v in options.items() if plain(v) != plain(defaults.get(k, v))}
    options.update(values)                      # a sweep point's knob values
    return name + "".join(f" {k}={v}" for k, v in options.items())


def diverged_in(point: dict, setting: str) -> int:
    """The most seeds any training run of `setting` lost to divergence."""
    return max((sum(r is not None for r in reasons) for run, reasons in
                point.get("diverged", {}).items() if run.endswith(f" {setting}")), default=0)


def point_rows(base: dict, point: dict, config: dict) -> list[dict]:
    """One row per setting of a grid point (or of an `attack` result)."""
    rows = []
    for setting, mp in point["main_task_by_setting"].items():
        attacks = {name: a for name, a in point.get("attacks", {}).items()
                   if a.get("setting", setting) == setting}
        rows.append({**base, "setting": setting, "mp": mp, "attacks": attacks,
                     "defense": defense_label(point.get("configs", {}).get(setting, config)
                                              .get("defense", {}), point.get("values", {})),
                     "values": dict(point.get("values", {})),
                     "diverged": diverged_in(point, setting)})
    return rows


def rows_of(path: str, record: dict) -> list[dict]:
    """The table rows of one result file (train, attack or sweep)."""
    base = {"run": run_label(path), "path": path, "dataset": record.get("dataset", "?"),
            "seeds": record.get("num_seeds"), "chance": record.get("chance"), "sweep": None}
    config = record.get("config", {})
    if "grid" in record:
        return [{**row, "sweep": path} for point in record["grid"]
                for row in point_rows(base, point, config)]
    if "main_task_by_setting" in record:
        return point_rows(base, record, config)
    if "test_accuracy" in record:
        reasons = record.get("per_seed", {}).get("diverged", [])
        return [{**base, "setting": f"top_{config.get('top_model', '?')}",
                 "mp": record["test_accuracy"], "attacks": {}, "values": {},
                 "defense": defense_label(config.get("defense", {}), {}),
                 "diverged": sum(r is not None for r in reasons)}]
    raise ConfigError(path, "not a result of train, attack or sweep (no main task in it)")


def add_scores(rows: list[dict]) -> None:
    """Adds to each row its strongest attack, its floor and both DCS (module docstring)."""
    from ladsg_jax.app import ranking

    for row in rows:
        row["strongest"] = ranking.strongest(row["attacks"])
        row["floor"] = ranking.floor(row["attacks"])
    for row in rows:            # the raw floor reads no VFL run: the same in every setting
        row["floor"] = row["floor"] or next(
            (r["floor"] for r in rows if r["floor"] and r["path"] == row["path"]
             and r["values"] == row["values"]), None)
    for row in rows:
        base = next((r for r in rows if r["dataset"] == row["dataset"]
                     and r["setting"] == row["setting"] and r["defense"] == "none"), None)
        row.update(ranking.dcs_at(row["strongest"], row["mp"]["mean"],
                                  base and base["mp"]["mean"],
                                  (row.get("chance") or {}).get("top1")))


def gather(paths: list[str]) -> list[dict]:
    """Every row of every result file under `paths`, scored (`add_scores`), by data set and
    setting (the files' order within)."""
    rows = []
    for path in result_files(paths):
        rows += rows_of(path, read_result(path))
    add_scores(rows)
    datasets = list(dict.fromkeys(r["dataset"] for r in rows))
    return sorted(rows, key=lambda r: (datasets.index(r["dataset"]), r["setting"]))


def attack_names(rows: list[dict]) -> list[str]:
    """The attacks scored in any row, in the registry's table order (a plugin's after)."""
    from ladsg_jax.attacks.registry import ATTACKS, is_baseline

    found = {n for r in rows for n in r["attacks"] if not is_baseline(n)}
    return [n for n in ATTACKS if n in found] + sorted(found - set(ATTACKS))


def cells(row: dict, names: list[str]) -> dict[str, str]:
    """The row's columns as text, in table order."""
    text = lambda record: "–" if record is None else mean_std(record, 3, " ± ")  # noqa: E731
    best = row["strongest"]
    number = lambda value: "–" if value is None else f"{value:.3f}"             # noqa: E731
    return {"run": row["run"], "dataset": row["dataset"], "defense": row["defense"],
            "setting": row["setting"],
            "seeds": f"{row['seeds']}" + (f" ({row['diverged']} diverged)"
                                           if row["diverged"] else ""),
            "MP": text(row["mp"]),
            "strongest": "–" if best is None else f"{text(best)} ({best['from']})",
            "raw floor": ("–" if row["floor"] is None else
                          f"{text(row['floor'])} ({row['floor']['from']})"),
            "DCS": number(row["dcs"]),
            "DCS (chance)": number(row["dcs_chance"]),
            **{name: text(row["attacks"].get(name)) for name in names}}


def markdown(rows: list[dict]) -> str:
    names = attack_names(rows)
    table = [cells(r, names) for r in rows]
    head = list(table[0])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(t[h] for h in head) + " |" for t in table]
    return "\n".join(lines) + "\n"


def csv_text(rows: list[dict]) -> str:
    """The rows as CSV: one column per mean and per std, numbers unformatted."""
    names = attack_names(rows)
    out = io.StringIO()
    fields = ["run", "dataset", "defense", "setting", "seeds", "diverged", "mp_mean", "mp_std",
              "strongest", "strongest_mean", "strongest_std", "floor_mean", "floor_std", "dcs",
              "dcs_chance", *(f"{n}_{s}" for n in names for s in ("mean", "std"))]
    writer = csv.DictWriter(out, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for r in rows:
        best, floor = r["strongest"] or {}, r["floor"] or {}
        writer.writerow({"run": r["run"], "dataset": r["dataset"], "defense": r["defense"],
                         "setting": r["setting"], "seeds": r["seeds"],
                         "diverged": r["diverged"], "mp_mean": r["mp"]["mean"],
                         "mp_std": r["mp"]["std"], "strongest": best.get("from"),
                         "strongest_mean": best.get("mean"), "strongest_std": best.get("std"),
                         "floor_mean": floor.get("mean"), "floor_std": floor.get("std"),
                         "dcs": r["dcs"], "dcs_chance": r["dcs_chance"],
                         **{f"{n}_{s}": r["attacks"].get(n, {}).get(s)
                            for n in names for s in ("mean", "std")}})
    return out.getvalue()


def plot(rows: list[dict], path: str) -> str:
    """MP against the strongest attack: a panel per data set and setting, a line per sweep
    (its points in order) and a point per other run, the raw-feature floor dashed
    (`plots.tradeoff_curves`)."""
    from ladsg_jax.app.plots import tradeoff_curves

    panels: dict = {}
    floors: dict = {}
    for row in rows:
        best, mp = row["strongest"], row["mp"]
        if best is None or mp["mean"] is None:
            continue
        title = f"{row['dataset']}, {row['setting']}"
        panel = panels.setdefault(title, {})
        if row["floor"] and row["floor"]["mean"] is not None:
            floors.setdefault(title, row["floor"]["mean"])
        name = (f"{row['run']}: {row['defense'].split(' ')[0]} sweep" if row["sweep"]
                else f"{row['run']}: {row['defense']}")
        panel.setdefault(name, []).append((best["mean"], best["std"], mp["mean"], mp["std"],
                                           None))
    if not panels:
        raise ConfigError("plot", "no row has both a main task and a scored attack to draw")
    return tradeoff_curves(panels, path, floors)
