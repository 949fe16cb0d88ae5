"""A defense table as a config file, run row by row (DESIGN §6): what `ladsg-jax demo` and
`experiments/defense_table.py` run.

    {"description": "...", "datasets": ["breast_cancer", "digits"], "seeds": 5,
     "plugins": ["examples/plugins/rotation.py"],
     "settings": {"none": ["none", {}], "ladsg (default)": ["ladsg", {}],
                  "rotation": ["rotation", {"angle": 1.0}]}}

`train` (optional) changes the preset's `TrainConfig` fields for every row (e.g. `{"epochs":
5}`; not top_model, defense or record_wire, which each run sets), and `attacks` (optional)
keeps only these attacks (default: every one that fits the data set). Each setting is a label
and a registered defense (a plugin's too) with its options; the row
of every (data set, setting) is `attack_table.defense_row`: the three runs of the defense and
every attack that fits the data set. The rows go to one JSON file, rewritten atomically after
each row (a rerun adds only the missing ones), then the Markdown tables beside it.
"""
from __future__ import annotations

import dataclasses
import json
import os
import sys
import time

from tqdm.auto import tqdm

from ladsg_jax.app.attack_table import AttackContexts, add_comparisons, defense_row
from ladsg_jax.attacks.registry import ATTACKS
from ladsg_jax.config import TrainConfig
from ladsg_jax.defenses import make_defense
from ladsg_jax.errors import ConfigError, one_of, require
from ladsg_jax.results import read_records, write_records, write_text_atomic
from ladsg_jax.app.table_render import markdown_tables

KEYS = ("description", "datasets", "seeds", "plugins", "settings", "train", "attacks")
ROW_FIELDS = ("top_model", "defense", "record_wire")     # each run of a row sets its own


@dataclasses.dataclass(frozen=True)
class TableConfig:
    """The rows of a defense table: data sets × settings (label -> (defense, options))."""

    datasets: tuple
    settings: dict
    seeds: int = 5
    plugins: tuple = ()
    description: str = ""
    train: dict = dataclasses.field(default_factory=dict)
    attacks: tuple = ()

    def __post_init__(self):
        require(isinstance(self.seeds, int) and self.seeds > 0, "table.seeds",
                f"must be a positive integer, got {self.seeds!r}")
        require(len(self.datasets) > 0, "table.datasets", "needs at least one data set")
        require("none" in self.settings, "table.settings",
                "needs a setting labelled 'none' (the undefended row every row is compared "
                "with)")
        for label, entry in self.settings.items():
            require(isinstance(entry, (list, tuple)) and len(entry) == 2
                    and isinstance(entry[0], str) and isinstance(entry[1], dict),
                    f"table.settings[{label!r}]", f"must be [DEFENSE, {{OPTIONS}}], got "
                                                  f"{entry!r}")
        fields = [f.name for f in dataclasses.fields(TrainConfig) if f.name not in ROW_FIELDS]
        for name in self.train:
            one_of("table.train", name, fields)

    def defense(self, label: str):
        name, options = self.settings[label]
        try:
            return make_defense(name, **dict(options))
        except ConfigError as err:
            raise ConfigError(f"table.settings[{label!r}]", str(err)) from None

    def check(self, only: list[str] | None = None) -> None:
        """Every setting makes its defense and every attack is registered (after the plugins
        are loaded); `only` names settings of the table."""
        for label in self.settings:
            self.defense(label)
        for name in self.attacks:
            one_of("table.attacks", name, ATTACKS)
        for label in only or ():
            one_of("only", label, self.settings)


DEMO = TableConfig(datasets=("breast_cancer", "digits"), seeds=3,
                   settings={"none": ("none", {}), "ladsg": ("ladsg", {})})
DEMO_LEGEND = (
    "ladsg: LADSG's default configuration (ladsg_jax/defenses/ladsg.py). MP: main-task test "
    "accuracy (top model mlp). strongest: the highest label recovery (top-1 of the training "
    "samples' labels; model completion's from its predictions of them) of the attacks that "
    "read the VFL run, named in the last column; raw floor: the better raw-feature "
    "baseline's recovery (ladsg_jax/app/ranking.py). "
    "Attack success (`ladsg-jax list attacks`): direct/argmin: top-1 "
    "on one epoch's messages (top model none; --direct-epoch, default the first, as Fu et al. "
    "read them); avg-argmin: the adaptive attack, argmin of each sample's messages averaged "
    "over the epochs; direct max: the strongest of every direct reading (first, last, minimum "
    "and averaged epoch); msg-clf/combined: the adaptive classifiers learned from the known "
    "labels (top model none; top-1 on the training samples): of the messages over every "
    "epoch, and their best combination with the attacker's own features; "
    "passive/active/raw: model completion "
    "with MixMatch, F1 (binary) or top-1 on the test set, raw = fresh bottom on raw features; "
    "raw-lr: logistic regression of the raw features, scored as raw (the floor is the better); "
    "norm/direction: leak AUC per batch; clust-emb/clust-msg: k-means top-1; invert(+head): "
    "gradient inversion top-1.")

def demo_table(seeds: int, defense: str | None = None, options: dict | None = None
               ) -> TableConfig:
    """The rows of `ladsg-jax demo`: none and LADSG (or `defense`, with `options`)."""
    settings = dict(DEMO.settings)
    if defense not in (None, "ladsg"):
        settings = {"none": ("none", {}), defense: (defense, {})}
    if options:
        settings[defense or "ladsg"] = (defense or "ladsg", options)
    return TableConfig(datasets=DEMO.datasets, settings=settings, seeds=seeds)


def read_table_config(path: str) -> TableConfig:
    """The `TableConfig` of a JSON file; unknown keys and bad values name the field."""
    try:
        with open(path) as f:
            raw = json.load(f)
    except (OSError, json.JSONDecodeError) as err:
        raise ConfigError("config", f"{path}: {err}") from None
    require(isinstance(raw, dict), "config", f"{path}: expected a JSON object")
    extra = set(raw) - set(KEYS)
    require(not extra, "config", f"{path}: unknown keys {sorted(extra)}; allowed: "
                                 f"{', '.join(KEYS)}")
    require("datasets" in raw and "settings" in raw, "config",
            f"{path}: needs 'datasets' and 'settings'")
    base = os.path.dirname(os.path.abspath(path))
    plugins = tuple(p if not p.endswith(".py") or os.path.isabs(p) else
                    os.path.normpath(os.path.join(base, p)) for p in raw.get("plugins", ()))
    return TableConfig(datasets=tuple(raw["datasets"]), settings=dict(raw["settings"]),
                       seeds=raw.get("seeds", 5), plugins=plugins,
                       description=raw.get("description", ""), train=dict(raw.get("train", {})),
                       attacks=tuple(raw.get("attacks", ())))


def run_table(table: TableConfig, out: str, contexts: AttackContexts | None = None,
              only: list[str] | None = None, progress: bool = True, seed: int = 0,
              resume: bool = True, header=None, provenance: dict | None = None
              ) -> list[dict]:
    """Every (data set, setting) row not yet in `out` (or those labelled in `only`, and
    'none'), each written as it finishes (`resume=False`: every row, `out` rewritten);
    returns all rows of `out`, compared (`add_comparisons`), and writes the Markdown tables
    beside the JSON. `header()`, when given, is called at each write: its dict goes into the
    file beside the records (e.g. the run's timing); `provenance`, when given, goes into each
    row this call computes (a resumed table's rows may come from several sittings)."""
    table.check(only)
    contexts = contexts or AttackContexts(overrides=table.train)
    rows = read_records(out) if resume else []
    wanted = only or list(table.settings)
    todo = [(d, label) for d in table.datasets for label in table.settings
            if label in wanted or label == "none"
            if not any(r["dataset"] == d and r["setting"] == label for r in rows)]
    bar = tqdm(todo, desc="defense table", unit="row", disable=not progress)
    for dataset, label in bar:
        bar.set_postfix(dataset=dataset, setting=label)
        data, settings, runner = contexts(dataset)
        defense = table.defense(label)
        start = time.perf_counter()
        try:
            row = defense_row(data, defense, label, table.seeds, runner, settings, seed=seed,
                              attacks=table.attacks or None, **contexts.overrides)
        except ConfigError as err:            # e.g. Marvell on more than two classes
            print(f"{dataset} {label}: not applicable: {err}", file=sys.stderr)
            continue
        row["seconds"] = time.perf_counter() - start
        if provenance:
            row["provenance"] = provenance
        if callable(getattr(defense, "epsilon", None)):     # Gaussian DP's accountant
            row["epsilon"] = defense.epsilon(runner.config.epochs)
        rows.append(row)
        write_records(out, rows, header() if header else None)     # survives a kill
    add_comparisons(rows)
    write_records(out, rows, header() if header else None)
    write_text_atomic(os.path.splitext(out)[0] + ".md",
                      markdown_tables(rows, list(table.settings)))
    return rows
