"""Hyperparameter grids of a defense's knobs (and the learning rate) × seeds, trained as one
compiled program per configuration of static choices (issue 14; DESIGN §2).

    points = grid_points("ladsg", {}, {"rho": ["0.1", "0.5"]})        # checked before training
    record = run_sweep(config, data, points, num_seeds=8)

A grid over a traced field (`Defense.hyper`, or `learning_rate`) is one program: every point's
values are arguments of the same jitted functions. A grid over a static field (a mode, a count
that sets a shape: LADSG's `k`, `flsg_samples`, `teacher_epochs`) compiles once per value.
"""
from __future__ import annotations

import dataclasses
import itertools
import math
import time

import jax

from ladsg_jax.compilation import count_compilations
from ladsg_jax.config import TrainConfig
from ladsg_jax.data.arrays import VFLData
from ladsg_jax.defenses import DEFENSES, Chain, Defense, make_defense
from ladsg_jax.defenses.registry import CHAIN, member_field
from ladsg_jax.errors import ConfigError, require, unknown
from ladsg_jax.divergence import divergence, final_accuracy

LEARNING_RATE = "learning_rate"


@dataclasses.dataclass(frozen=True)
class GridPoint:
    """One point of a grid: its values (as given) and the defense and learning rate they make."""

    values: dict
    defense: Defense
    learning_rate: float | None = None


def parse_grid(items: list[str]) -> dict[str, list[str]]:
    """`FIELD=V1,V2,...` items as {field: [values]} (values still strings)."""
    grid = {}
    for item in items:
        field, _, values = item.partition("=")
        field = field.strip().replace("-", "_")
        listed = [v.strip() for v in values.split(",")]
        require(bool(field) and bool(values) and all(listed), "grid",
                f"expected FIELD=V1,V2,... with no empty value, got {item!r}")
        require(field not in grid, "grid", f"field {field!r} is given twice")
        grid[field] = listed
    return grid


def grid_points(defense_name: str, options: dict, grid: dict[str, list]) -> list[GridPoint]:
    """Every point of the cartesian product of `grid` over defense `defense_name` (its other
    fields from `options`). Each point's defense is built, and so checked: an unknown field, a
    malformed or out-of-range value raises `ConfigError` naming the field before anything
    trains."""
    if CHAIN not in defense_name:           # a chain's members check their own fields
        if defense_name not in DEFENSES:
            raise unknown("defense", defense_name, DEFENSES)
        fields = {f.name for f in dataclasses.fields(DEFENSES[defense_name])}
        for field in grid:
            if field != LEARNING_RATE and field not in fields:
                raise unknown(f"grid field of defense {defense_name}", field,
                              sorted(fields) + [LEARNING_RATE])
    points = []
    for combo in itertools.product(*grid.values()):
        values = dict(zip(grid, combo))
        rate = values.get(LEARNING_RATE)
        if rate is not None:
            rate = learning_rate_value(rate)
        knobs = {k: v for k, v in values.items() if k != LEARNING_RATE}
        defense = make_defense(defense_name, **{**options, **knobs})
        points.append(GridPoint(values={k: option_value(defense, k, v)
                                        for k, v in values.items()},
                                defense=defense, learning_rate=rate))
    return points


def learning_rate_value(value) -> float:
    try:
        rate = float(value)
    except ValueError:
        raise ConfigError("grid.learning_rate", f"expected a number, got {value!r}") from None
    require(math.isfinite(rate) and rate > 0, "grid.learning_rate",
            f"must be a positive number, got {value!r}")
    return rate


def option_value(defense: Defense, field: str, given):
    """The value a point's record shows: the defense's field (a chain member's) as cast, or
    the learning rate."""
    if field == LEARNING_RATE:
        return float(given)
    owner, name = member_field(defense, field)
    return getattr(owner, name)


def static_part(defense: Defense) -> Defense:
    """`defense` with its traced fields at their defaults (in each member of a chain): points
    with equal static parts share one compiled program."""
    if isinstance(defense, Chain):
        return dataclasses.replace(defense, parts=tuple(map(static_part, defense.parts)))
    defaults = {f.name: f.default for f in dataclasses.fields(defense) if f.name in defense.hyper}
    return dataclasses.replace(defense, **defaults)


def point_config(config: TrainConfig, point: GridPoint) -> TrainConfig:
    changes = {"defense": point.defense}
    if point.learning_rate is not None:
        changes["learning_rate"] = point.learning_rate
    return config.replace(**changes)


def static_groups(config: TrainConfig, points: list[GridPoint]) -> list[tuple]:
    """(config of the group, the group's point indices) per static configuration, in order."""
    groups: dict = {}
    for i, point in enumerate(points):
        base = config.replace(defense=static_part(point.defense))
        groups.setdefault(base, []).append(i)
    return list(groups.items())


def run_sweep(config: TrainConfig, data: VFLData, points: list[GridPoint], num_seeds: int,
              seed: int = 0, attacks: list[str] | None = None, settings=None,
              progress: bool | str = False) -> dict:
    """Trains every (point, seed) and, with `attacks`, scores each attack per point and seed,
    each attack in its own setting (`attack_table.attack_settings_groups`: the direct attacks
    with `top_model none`, active completion with the malicious optimizer). Returns the JSON
    record: `grid` (per point: its values; `main_task`, the main-task accuracy per seed of the
    first setting trained, the config's own unless every attack needs the sum-top one;
    `main_task_by_setting`; each attack per seed with the setting it ran in; `diverged`, per
    training run, each seed's reason or None: a diverged seed is None in every per-seed list
    and left out of the means) and `timing` (wall seconds, compilations)."""
    from ladsg_jax.attack_table import attack_settings_groups
    from ladsg_jax.attacks.suite import AttackRunner, AttackSettings, attack_grid
    from ladsg_jax.vfl.runner import Runner, seed_keys
    from ladsg_jax.vfl.train import default_hparams, stack_hparams

    for point in points:
        point.defense.check_data(data.num_classes)
    settings = settings or AttackSettings()
    records = [{"values": p.values, "attacks": {}} for p in points]
    start = time.perf_counter()
    groups = static_groups(config, points)
    with count_compilations() as compiles:
        for base, members in groups:
            for setting, names in attack_settings_groups(attacks, base, data.num_classes):
                setting_config = base.replace(**setting)
                grid = stack_hparams([default_hparams(point_config(setting_config, points[i]))
                                      for i in members])
                if names is None:
                    result = Runner(setting_config).fit(data, seed_keys(seed, num_seeds),
                                                        progress=progress, hparams=grid)
                    reasons = divergence(result, data.num_classes)
                    reports = [{"main_task": final_accuracy(result, rows, reasons[rows]),
                                "diverged": {"honest": reasons[rows]}}
                               for rows in (slice(p * num_seeds, (p + 1) * num_seeds)
                                            for p in range(len(members)))]
                else:
                    runner = AttackRunner(setting_config, data, settings)
                    reports = attack_grid(setting_config, data, names, num_seeds, seed,
                                          settings, progress=progress, attack_runner=runner,
                                          hparams=grid)
                for i, report in zip(members, reports):
                    for kind, why in report["diverged"].items():
                        records[i].setdefault("diverged", {})[
                            f"{kind} top_{setting_config.top_model}"] = why
                    records[i].setdefault("main_task", report["main_task"])
                    records[i].setdefault("main_task_by_setting", {})[
                        f"top_{setting_config.top_model}"] = report["main_task"]
                    for name, attack in report.get("attacks", {}).items():
                        records[i]["attacks"][name] = {
                            **attack, "setting": f"top_{setting_config.top_model}"}
        jax.effects_barrier()
    return {"grid_fields": list(points[0].values) if points else [], "grid": records,
            "num_seeds": num_seeds, "seed": seed,
            "timing": {"wall_s": time.perf_counter() - start, **compiles.record(),
                       "static_groups": len(groups)}}
