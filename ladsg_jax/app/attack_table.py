"""Every attack against one defense, scored and compared (DESIGN §6): the rows of the tables
that `experiments/ladsg_ablation.py` and `experiments/defense_table.py` write.

A row is the demo's three runs of one defense on one data set (top model mlp: main task, model
completion, scoring, clustering; top model none: the direct attacks and inversion; party 0 on
Fu et al.'s malicious optimizer: active model completion), over seeds. The direct attacks'
readings (first, last, minimum and averaged epoch; `attacks/direct.py`) give one more entry,
`direct_strongest`: the strongest of them. `add_comparisons` ranks the row by its strongest
attack of all, by label recovery, beside the attacker's raw-feature floor (`ladsg_jax.app.ranking`:
`strongest`, also per setting in `strongest_by_setting`, `floor`, `excess`, and two defense
capability scores at the strongest attack: `dcs`, VFLAIR's, `get_dcs` of data_process.py with
ideal attack performance 0, and `dcs_chance`, ours, ideal the chance level), and adds per
attack the relative reduction against the undefended row, the excess over the floor and both
DCS (their means: `dcs_mean`). A seed whose training diverged (`ladsg_jax.divergence`) is left
out of every mean; a row says how many (`diverged`, per training run), and a score with no seed
left is None, shown as "diverged". The tables as text (Markdown, the terminal's) are
`ladsg_jax.app.table_render`'s.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from ladsg_jax import metrics
from ladsg_jax.app import ranking
from ladsg_jax.attacks.registry import attack_groups, is_baseline
from ladsg_jax.attacks.suite import AttackRunner, AttackSettings
from ladsg_jax.data import load
from ladsg_jax.data.arrays import VFLData
from ladsg_jax.defenses import Defense
from ladsg_jax.presets import known_labels_for, preset_config

STRONGEST_DIRECT = "direct_strongest"
DIRECT_FAMILY = ("direct", "direct_argmin", "direct_averaged")   # what it is the strongest of

class AttackContexts:
    """Per data set, loaded once: the data (`load(name)`), the attacker's settings
    (`settings(data)`; default DESIGN §7's known labels) and an `AttackRunner` whose compiled
    attacks every row of that data set reuses, for the preset with `overrides` (the rows'
    config changes)."""

    def __init__(self, load: Callable[[str], VFLData] = load,
                 settings: Callable[[VFLData], AttackSettings] | None = None,
                 overrides: dict | None = None):
        self._load, self._settings, self._loaded = load, settings or default_settings, {}
        self.overrides = dict(overrides or {})

    def __call__(self, dataset: str) -> tuple[VFLData, AttackSettings, AttackRunner]:
        if dataset not in self._loaded:
            data = self._load(dataset)
            settings = self._settings(data)
            self._loaded[dataset] = (data, settings,
                                     AttackRunner(preset_config(dataset, **self.overrides),
                                                  data, settings))
        return self._loaded[dataset]


def default_settings(data: VFLData) -> AttackSettings:
    return AttackSettings(known_labels=known_labels_for(data.name, data.num_classes))


def defense_row(data: VFLData, defense: Defense, label: str, seeds: int,
                runner: AttackRunner, settings: AttackSettings, seed: int = 0,
                attacks: tuple | None = None, checkpoint_dir: str | None = None,
                **overrides) -> dict:
    """One defense against every attack that fits the data set (or those of `attacks`), mean ±
    std over seeds; runs no attack needs are not trained. `overrides` change
    the preset (e.g. epochs); with `checkpoint_dir` each training run checkpoints per epoch
    in a folder of its own there and resumes when interrupted."""
    return defense_rows(data, defense, [label], seeds, runner, settings, seed, attacks,
                        checkpoint_dir, **overrides)[0]


def defense_rows(data: VFLData, defense: Defense, labels: list[str], seeds: int,
                 runner: AttackRunner, settings: AttackSettings, seed: int = 0,
                 attacks: tuple | None = None, checkpoint_dir: str | None = None,
                 points: list[Defense] | None = None, **overrides) -> list[dict]:
    """`defense_row` for each of `points` (defenses that differ from `defense` only in numeric
    hyperparameters; None: `defense` itself), one row per point labelled by `labels`: one
    `experiment.run_experiment` with the attacks placed by table group, every point in the
    same compiled programs (a vmapped or sequential grid, `Runner.fit`)."""
    from ladsg_jax.app.experiment import Experiment, run_experiment
    from ladsg_jax.app.sweep import GridPoint

    config = preset_config(data.name, top_model="mlp", defense=defense, **overrides)
    names = tuple(name for group in attack_groups(data.num_classes).values() for name in group
                  if attacks is None or name in attacks)
    grid = None if not points or points == [defense] else tuple(
        GridPoint(values={}, defense=point) for point in points)
    record = run_experiment(Experiment(config, data, seeds, seed, grid, names, settings,
                                       placement="table", checkpoint_dir=checkpoint_dir),
                            attack_runner=runner)
    rows = [table_row(data, label, point, seeds, entry)
            for label, point, entry in zip(labels, points or [defense], record["grid"])]
    for row in rows:
        add_strongest_direct(row)
    return rows


def table_row(data: VFLData, label: str, defense: Defense, seeds: int, entry: dict) -> dict:
    """A grid point's experiment record as a table row: its runs by table group ("none": the
    sum-top runs, "mlp": the honest runs with the top model, "malicious": party 0 on the
    malicious optimizer) in `main_task`, `configs`, `diverged` ("GROUP/KIND") and
    `defense_metrics`."""
    row = {"dataset": data.name, "setting": label, "defense": repr(defense), "seeds": seeds,
           "attacks": dict(entry["attacks"]), "main_task": {}, "chance": chance_levels(data)}
    group_of = lambda kind, setting: ("malicious" if kind == "malicious"
                                      else setting.removeprefix("top_"))
    for run, reasons in entry.get("diverged", {}).items():
        kind, setting = run.split(" ")
        group = group_of(kind, setting)
        row.setdefault("diverged", {})[f"{group}/{kind}"] = reasons
        row.setdefault("configs", {})[group] = entry["configs"][setting]
        row["main_task"][group if kind == "malicious" else setting] = (
            entry["main_task_malicious"][setting] if kind == "malicious"
            else entry["main_task_by_setting"][setting])
    for setting, by_kind in entry.get("defense_metrics", {}).items():
        for kind, values in by_kind.items():
            row.setdefault("defense_metrics", {}).setdefault(group_of(kind, setting), {})[
                kind] = values
    return row


def add_strongest_direct(row: dict) -> None:
    """Adds `direct_strongest` to the row's attacks: of the direct attacks' means and of every
    reading they report (`attacks/direct.py`), the highest, with `from` naming it (None when
    every seed diverged). Nothing is added when the row ran no direct attack."""
    candidates = []
    for name in DIRECT_FAMILY:
        record = row["attacks"].get(name)
        if record is None:
            continue
        candidates.append((f"{name}:{record.get('reading', 'as run')}", record))
        candidates += [(f"{name}:{k}", r) for k, r in record.get("readings", {}).items()]
    if not candidates:
        return
    scored = [(source, r) for source, r in candidates if r["mean"] is not None]
    source, best = max(scored, key=lambda c: c[1]["mean"]) if scored else (None, candidates[0][1])
    row["attacks"][STRONGEST_DIRECT] = {"metric": "top1", "mean": best["mean"],
                                        "std": best["std"], "n": best.get("n"),
                                        "per_seed": best.get("per_seed"), "from": source}


def chance_levels(data: VFLData) -> dict:
    """An attack's ideal score (DCS's AP*) on the training labels (`metrics.chance_levels`)."""
    return metrics.chance_levels(data.train_y)


def add_comparisons(rows: list[dict], baseline: str = "none") -> None:
    """Adds to each attack of each row: `reduction` against the row labelled `baseline` of the
    same data set, `excess` of its label recovery over the raw-feature floor's
    (`ladsg_jax.app.ranking`; not for leak AUCs), `dcs` (VFLAIR's: ideal attack performance 0) and
    `dcs_chance` (ideal: the attack's chance level). To each row: its `strongest` attack and
    `floor` (label recovery, `from` naming them), `excess` = strongest − floor, `dcs` and
    `dcs_chance` at the strongest attack (what ranks the defense), and `dcs_mean` /
    `dcs_mean_chance`, the means over its attacks (VFLAIR's average; the direct ones counted
    once, by `direct_strongest` when the row has it). The DCS use the row's main task with
    the top model (without one when it has none). Scores of runs that all diverged (mean
    None) get None; a mean DCS is over the attacks that were scored (None if none)."""
    for row in rows:
        base = next(r for r in rows
                    if r["dataset"] == row["dataset"] and r["setting"] == baseline)
        row["strongest"], row["floor"] = ranking.strongest(row["attacks"]), ranking.floor(
            row["attacks"])
        row["excess"] = ranking.excess(row["strongest"], row["floor"])
        row["strongest_by_setting"] = ranking.strongest_by_setting(row["attacks"])
        floor = (row["floor"] or {}).get("mean")
        main = "top_mlp" if "top_mlp" in row["main_task"] else "top_none"
        mp, mp_star = row["main_task"][main]["mean"], base["main_task"][main]["mean"]
        known_mp = mp is not None and mp_star is not None
        baseline_names = set(filter(is_baseline, row["attacks"]))
        ranked = set(row["attacks"]) - baseline_names
        if STRONGEST_DIRECT in row["attacks"]:
            ranked -= set(DIRECT_FAMILY)
        scores = {"dcs": [], "dcs_chance": []}
        for name, attack in row["attacks"].items():
            before, ap = base["attacks"].get(name, {}).get("mean"), attack["mean"]
            scored = ap is not None
            attack["reduction"] = (metrics.reduction(before, ap) if before and scored
                                   else None)
            recovered = (ranking.recovery(attack) or {}).get("mean")
            attack["excess"] = (None if name in baseline_names or floor is None
                                or recovered is None else metrics.excess(recovered, floor))
            if name in baseline_names:
                continue
            ideals = {"dcs": 0.0, "dcs_chance": row["chance"][attack["metric"]]}
            for kind, ideal in ideals.items():
                attack[kind] = (metrics.dcs(ap, mp, ideal, mp_star) if scored and known_mp
                                else None)
                if name in ranked and attack[kind] is not None:
                    scores[kind].append(attack[kind])
        for kind, values in scores.items():
            row[kind.replace("dcs", "dcs_mean")] = float(np.mean(values)) if values else None
        row.update(ranking.dcs_at(row["strongest"], mp, mp_star, row["chance"]["top1"]))
