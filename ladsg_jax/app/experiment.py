"""One experiment: a config and data, a grid of the defense's knobs, seeds and attacks, planned
once, trained as one compiled program per static choice and setting, and written as one record
(issue 30; the pure core it calls is `vfl.train.make_train`, as in purejaxrl).

    record = run_experiment(Experiment(config, data, num_seeds=3,
                                       attacks=("direct_argmin", "passive_mc")))

`plan` decides which training runs are needed: per configuration of static choices
(`sweep.static_groups`: grid points that differ only in traced knobs share one program) and per
setting the attacks run in (`PLACEMENTS`), one group; `attacks.suite.attack_grid` trains a
group's honest and/or malicious runs for every point and seed, applies the divergence rule and
has each attack scored. `ladsg-jax sweep` and `attack`, the demo and the table rows
(`attack_table.defense_rows`) are this function with their own experiment.

The record (schema `results.RECORD_SCHEMA`): `grid_fields`, `num_seeds`, `seed`,
`known_labels`, `chance` (each metric's chance level on the training labels), `timing` (wall seconds, compilations, static groups) and `grid`, one entry per
point: `values` (the point's knob values, as cast), `main_task` (final test accuracy summary and
per seed, of the first setting trained: the config's own unless every attack runs in the
sum-top one), `main_task_by_setting` and `configs` per setting ("top_none", "top_mlp", ...),
`main_task_malicious` per setting where a malicious run trained, `attacks` (per attack: metric,
per-seed scores, summary, the `setting` it ran in, and a direct attack's `reading(s)`),
`diverged` ("KIND top_MODEL": each seed's reason or None; a diverged seed is None in every
per-seed list and left out of the means), `message_norm` per setting (the mean per-sample
norm of the messages sent, first and last epoch, of the setting's main run) and, where a
defense reports any, `defense_metrics` per setting and run kind.
"""
from __future__ import annotations

import dataclasses
import time

from ladsg_jax.attacks.settings import AttackSettings
from ladsg_jax.config import TrainConfig
from ladsg_jax.data.arrays import VFLData
from ladsg_jax.errors import require

# Where each attack runs. "own": in the setting it needs (the direct attacks with the sum top,
# `top_model none`; the others in the config's own), so an attack's number does not depend on
# the attacks asked beside it. "table": by its table group (`Attack.group`: inversion joins the
# direct attacks in the sum-top runs). "given": every attack in the config's own setting.
PLACEMENTS = ("own", "table", "given")
SUM_TOP = (("embed_dim", None), ("top_model", "none"))


@dataclasses.dataclass(frozen=True)
class Experiment:
    """What to run. `points`: `sweep.GridPoint`s of the defense's knobs (and learning rate);
    None runs the config's own defense as the one point. `attacks`: registered attack names
    (none: training only). `hybrid`: one run with party 0 on the malicious optimizer, read by
    every attack. `checkpoint_dir`: each training run checkpoints per epoch in a folder of its
    own there (`SETTING/KIND`, `GROUP/` before it with more than one static group) and resumes."""

    config: TrainConfig
    data: VFLData
    num_seeds: int
    seed: int = 0
    points: tuple | None = None
    attacks: tuple[str, ...] = ()
    settings: AttackSettings | None = None      # None: the defaults
    placement: str = "own"
    hybrid: bool = False
    checkpoint_dir: str | None = None

    def __post_init__(self):
        require(self.placement in PLACEMENTS, "placement",
                f"expected one of {', '.join(PLACEMENTS)}, got {self.placement!r}")
        require(isinstance(self.num_seeds, int) and self.num_seeds >= 1, "num_seeds",
                f"expected a positive integer, got {self.num_seeds!r}")


def setting_name(config: TrainConfig) -> str:
    return f"top_{config.top_model}"


def attack_setting(name: str, placement: str, config: TrainConfig) -> tuple:
    """The config changes (as sorted items) attack `name` runs with under `placement`."""
    from ladsg_jax.attacks.registry import attack_spec

    attack = attack_spec(name)                                      # an unknown name: an error
    if placement == "given" or config.top_model == "none":
        return ()
    sum_top = attack.needs_sum_top if placement == "own" else attack.group == "none"
    return SUM_TOP if sum_top else ()


def attack_settings_groups(attacks, config: TrainConfig, num_classes: int,
                           placement: str = "own") -> list[tuple[dict, list | None]]:
    """The settings a set of attacks runs in: (config changes, attack names) per setting, the
    config's own first; `[({}, None)]` for no attacks (training only). Raises `ConfigError` for
    an attack that is unknown or fits no setting of the data (e.g. binary only)."""
    from ladsg_jax.attacks.registry import check_fits

    if not attacks:
        return [({}, None)]
    groups = {}
    for name in attacks:
        changes = attack_setting(name, placement, config)
        check_fits(name, dict(changes).get("top_model", config.top_model), num_classes)
        groups.setdefault(changes, []).append(name)
    ordered = sorted(groups.items(), key=lambda group: bool(group[0]))
    return [(dict(changes), names) for changes, names in ordered]


def plan(experiment: Experiment) -> list[tuple]:
    """The training groups: (static group index, its config, its point indices, the setting's
    config, the attacks scored on it or None), in the order they train."""
    from ladsg_jax.app.sweep import static_groups

    config = experiment.config
    static = ([(config, [0])] if experiment.points is None else      # the config's own knobs
              static_groups(config, list(experiment.points)))
    groups = []
    for g, (base, members) in enumerate(static):
        for changes, names in attack_settings_groups(experiment.attacks, base,
                                                     experiment.data.num_classes,
                                                     experiment.placement):
            groups.append((g, base, members, base.replace(**changes), names))
    return groups


def run_experiment(experiment: Experiment, progress: bool | str = False,
                   attack_runner=None) -> dict:
    """Trains and attacks what `plan(experiment)` lists; returns the record (module docstring).
    `attack_runner`: an `AttackRunner` for the same bottom model, data and settings, whose
    compiled attacks are then reused (default: one built here for every setting)."""
    import os

    import jax

    from ladsg_jax.attacks.suite import AttackRunner, attack_grid
    from ladsg_jax.compilation import count_compilations
    from ladsg_jax.divergence import divergence, final_accuracy
    from ladsg_jax.app.session import config_record
    from ladsg_jax.app.sweep import GridPoint, point_config
    from ladsg_jax.vfl.runner import Runner, seed_keys
    from ladsg_jax.vfl.train import default_hparams, stack_hparams

    exp, data, seeds = experiment, experiment.data, experiment.num_seeds
    points = exp.points or (GridPoint(values={}, defense=exp.config.defense),)
    for point in points:
        point.defense.check_data(data.num_classes)
    settings = exp.settings or AttackSettings()
    records = [{"values": dict(p.values), "attacks": {}} for p in points]
    start = time.perf_counter()
    groups = plan(exp)
    num_static = len({g for g, *_ in groups})
    known = None
    with count_compilations() as compiles:
        for g, base, members, setting_config, names in groups:
            setting = setting_name(setting_config)
            grid = None if exp.points is None else stack_hparams(
                [default_hparams(point_config(setting_config, points[i])) for i in members])
            folder = exp.checkpoint_dir and os.path.join(
                exp.checkpoint_dir, *([f"group_{g}"] if num_static > 1 else []), setting)
            if names is None:
                result = Runner(setting_config).fit(data, seed_keys(exp.seed, seeds),
                                                    progress=progress, hparams=grid,
                                                    checkpoint_dir=folder and os.path.join(
                                                        folder, "honest"))
                reasons = divergence(result, data.num_classes)
                reports = [{"main_task": final_accuracy(result, rows, reasons[rows]),
                            "diverged": {"honest": reasons[rows]}}
                           for rows in (slice(p * seeds, (p + 1) * seeds)
                                        for p in range(len(members)))]
            else:
                attack_runner = attack_runner or AttackRunner(exp.config, data, settings)
                reports = attack_grid(setting_config, data, names, seeds, exp.seed, settings,
                                      hybrid=exp.hybrid, progress=progress,
                                      attack_runner=attack_runner, checkpoint_dir=folder,
                                      hparams=grid, defenses=[
                                          point_config(setting_config, points[i]).defense
                                          for i in members])
                known = reports[0]["known_labels"]
            for i, report in zip(members, reports):
                add_report(records[i], report, setting,
                           config_record(point_config(setting_config, points[i])))
        jax.effects_barrier()
    from ladsg_jax.metrics import chance_levels

    return {"grid_fields": list(points[0].values), "grid": records, "num_seeds": seeds,
            "seed": exp.seed, "known_labels": known, "hybrid": exp.hybrid,
            "chance": chance_levels(data.train_y),
            "timing": {"wall_s": time.perf_counter() - start, **compiles.record(),
                       "static_groups": num_static}}


def add_report(record: dict, report: dict, setting: str, config: dict) -> None:
    """Merges one setting's `attack_grid` report of a point into the point's record."""
    for kind, why in report["diverged"].items():
        record.setdefault("diverged", {})[f"{kind} {setting}"] = why
    record.setdefault("main_task", report["main_task"])
    record.setdefault("main_task_by_setting", {})[setting] = report["main_task"]
    record.setdefault("configs", {})[setting] = config
    if "main_task_malicious" in report:
        record.setdefault("main_task_malicious", {})[setting] = report["main_task_malicious"]
    if report.get("defense_metrics"):
        record.setdefault("defense_metrics", {})[setting] = report["defense_metrics"]
    if report.get("message_norm"):
        record.setdefault("message_norm", {})[setting] = report["message_norm"]
    for name, attack in report.get("attacks", {}).items():
        record["attacks"][name] = {**attack, "setting": setting}
