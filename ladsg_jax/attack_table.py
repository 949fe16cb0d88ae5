"""Every attack against one defense, scored and compared (DESIGN §6): the rows of the tables
that `experiments/ladsg_ablation.py` and `experiments/defense_table.py` write.

A row is the demo's three runs of one defense on one data set (top model mlp: main task, model
completion, scoring, clustering; top model none: the direct attacks and inversion; party 0 on
Fu et al.'s malicious optimizer: active model completion), over seeds. The direct attacks'
readings (first, last, minimum and averaged epoch; `attacks/direct.py`) give one more entry,
`direct_strongest`: the strongest of them, which ranks the defense. `add_comparisons` adds, per
attack, the relative reduction against the undefended row, the excess over the attacker's
raw-feature floor, and two defense capability scores: `dcs`, VFLAIR's (`get_dcs` of
data_process.py, ideal attack performance 0), and `dcs_chance`, ours (ideal: the attack's
chance level). A seed whose training
diverged (`ladsg_jax.divergence`) is left out of every mean; a row says how many (`diverged`,
per training run), and a score with no seed left is None, shown as "diverged". The tables as
text (Markdown, the terminal's) are `ladsg_jax.table_render`'s.
"""
from __future__ import annotations

import os
from typing import Callable

import numpy as np

from ladsg_jax import metrics
from ladsg_jax.attacks.registry import ATTACKS, attack_groups, check_fits
from ladsg_jax.attacks.suite import AttackRunner, AttackSettings, attack_grid, run_attacks
from ladsg_jax.data import load
from ladsg_jax.data.arrays import VFLData
from ladsg_jax.defenses import Defense
from ladsg_jax.presets import known_labels_for, preset_config
from ladsg_jax.session import config_record
from ladsg_jax.vfl.train import default_hparams, stack_hparams

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
    hyperparameters; None: `defense` itself), one row per point labelled by `labels`: every
    point trains in the same compiled programs (a vmapped or sequential grid, `Runner.fit`)."""
    points = points or [defense]
    rows = [{"dataset": data.name, "setting": label, "defense": repr(point), "seeds": seeds,
             "attacks": {}, "main_task": {}, "chance": chance_levels(data)}
            for label, point in zip(labels, points)]
    for group, names in attack_groups(data.num_classes).items():
        names = [n for n in names if attacks is None or n in attacks]
        if not names:
            continue
        config = preset_config(data.name, top_model="none" if group == "none" else "mlp",
                               defense=defense, **overrides)
        grid = None if points == [defense] else stack_hparams(
            [default_hparams(config.replace(defense=p)) for p in points])
        reports = attack_grid(config, data, names, seeds, seed, settings=settings,
                              attack_runner=runner, checkpoint_dir=checkpoint_dir and
                              os.path.join(checkpoint_dir, group), hparams=grid)
        for row, report, point in zip(rows, reports, points):
            row.setdefault("configs", {})[group] = config_record(config.replace(defense=point))
            if group == "malicious":
                row["main_task"]["malicious"] = report["main_task_malicious"]
            else:
                row["main_task"][f"top_{group}"] = report["main_task"]
            row["attacks"].update(report["attacks"])
            for kind, reasons in report["diverged"].items():
                row.setdefault("diverged", {})[f"{group}/{kind}"] = reasons
            if report.get("defense_metrics"):
                row.setdefault("defense_metrics", {})[group] = report["defense_metrics"]
    for row in rows:
        add_strongest_direct(row)
    return rows


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


def attack_settings_groups(attacks, config, num_classes: int) -> list[tuple[dict, list | None]]:
    """The settings a set of attacks runs in: (config changes, attack names) per setting,
    the direct attacks (and inversion's sum-top case) with `top_model none`, every other
    attack in `config`'s own setting; `[({}, None)]` for no attacks (training only). Raises
    `ConfigError` for an attack that fits no setting of the data (e.g. binary only)."""
    if not attacks:
        return [({}, None)]
    sum_top = {"top_model": "none", "embed_dim": None} if config.top_model != "none" else {}
    groups = {}
    for name in attacks:
        changes = sum_top if ATTACKS[name].needs_sum_top else {}
        check_fits(name, changes.get("top_model", config.top_model), num_classes)
        groups.setdefault(tuple(sorted(changes.items())), []).append(name)
    return [(dict(changes), names) for changes, names in groups.items()]


def run_attacks_by_setting(config, data: VFLData, attacks: list[str], num_seeds: int,
                           seed: int, settings: AttackSettings, progress=False) -> dict:
    """`run_attacks` with each attack in its own setting (`attack_settings_groups`: the direct
    attacks with `top_model none`, the others in `config`'s), as the demo runs them, so an
    attack's number does not depend on the attacks asked for beside it. The report is
    `run_attacks`' of the first setting (the config's own when an attack runs in it), with
    `config`, that setting's config record, every attack's record naming its `setting`,
    `main_task_by_setting`, `configs` per setting, and with more than one setting, `diverged`
    keyed "KIND top_MODEL"."""
    groups = sorted(attack_settings_groups(attacks, config, data.num_classes),
                    key=lambda group: bool(group[0]))       # the config's own setting first
    merged = None
    for changes, names in groups:
        setting_config = config.replace(**changes)
        setting = f"top_{setting_config.top_model}"
        report = run_attacks(setting_config, data, names, num_seeds, seed, settings,
                             progress=progress)
        for record in report["attacks"].values():
            record["setting"] = setting
        if len(groups) > 1:
            report["diverged"] = {f"{kind} {setting}": why
                                  for kind, why in report["diverged"].items()}
        if merged is None:
            merged = {**report, "config": config_record(setting_config),
                      "main_task_by_setting": {}, "configs": {}}
        else:
            merged["attacks"].update(report["attacks"])
            merged["diverged"].update(report["diverged"])
            if report.get("defense_metrics"):
                merged.setdefault("defense_metrics", {}).update(report["defense_metrics"])
        merged["main_task_by_setting"][setting] = report["main_task"]
        merged["configs"][setting] = config_record(setting_config)
    merged["attacks"] = {name: merged["attacks"][name] for name in attacks
                         if name in merged["attacks"]}                    # in the order asked
    return merged


def chance_levels(data: VFLData) -> dict:
    """An attack's ideal score (DCS's AP*): guessing the majority class for top-1 (and its F1
    for binary model completion), 0.5 for a leak AUC."""
    y = np.asarray(data.train_y)
    majority = float(np.bincount(y).max() / y.size)
    positive = float(np.mean(y == 1))
    return {"top1": majority, "auc": 0.5, "f1": 2 * positive / (1 + positive)}


def add_comparisons(rows: list[dict], baseline: str = "none") -> None:
    """Adds to each attack of each row: `reduction` against the row labelled `baseline` of the
    same data set, `excess` over the raw-feature floor (not for leak AUCs), `dcs` (VFLAIR's:
    ideal attack performance 0) and `dcs_chance` (ideal: the attack's chance level); and to each
    row the means of both over its attacks, the direct ones counted once, by their strongest
    reading (`direct_strongest`) when the row has it. Scores of runs that all diverged (mean
    None) get None, and the row's DCS is the mean over the attacks that were scored (None if
    none)."""
    for row in rows:
        base = next(r for r in rows
                    if r["dataset"] == row["dataset"] and r["setting"] == baseline)
        floor = row["attacks"].get("raw_mc", {}).get("mean")
        main = "top_mlp" if "top_mlp" in row["main_task"] else "top_none"
        mp, mp_star = row["main_task"][main]["mean"], base["main_task"][main]["mean"]
        ranked = {name for name in row["attacks"] if name != "raw_mc"}
        if STRONGEST_DIRECT in row["attacks"]:
            ranked -= set(DIRECT_FAMILY)
        scores = {"dcs": [], "dcs_chance": []}
        for name, attack in row["attacks"].items():
            before, ap = base["attacks"].get(name, {}).get("mean"), attack["mean"]
            scored = ap is not None
            attack["reduction"] = (metrics.reduction(before, ap) if before and scored
                                   else None)
            attack["excess"] = (None if attack["metric"] == "auc" or name == "raw_mc"
                                or floor is None or not scored
                                else metrics.excess(ap, floor))
            if name == "raw_mc":
                continue
            known = scored and mp is not None and mp_star is not None
            ideals = {"dcs": 0.0, "dcs_chance": row["chance"][attack["metric"]]}
            for kind, ideal in ideals.items():
                attack[kind] = metrics.dcs(ap, mp, ideal, mp_star) if known else None
                if name in ranked and attack[kind] is not None:
                    scores[kind].append(attack[kind])
        for kind, values in scores.items():
            row[kind] = float(np.mean(values)) if values else None
