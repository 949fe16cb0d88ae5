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

from ladsg_jax.config import TrainConfig
from ladsg_jax.data.arrays import VFLData
from ladsg_jax.defenses import DEFENSES, Chain, Defense, make_defense
from ladsg_jax.defenses.registry import CHAIN, flat_option, member_field
from ladsg_jax.errors import ConfigError, require, unknown

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
            if field != LEARNING_RATE and flat_option(defense_name, DEFENSES[defense_name],
                                                      field) not in fields:
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


NO_ATTACK = "none"


def sweep_attacks(asked: list[str] | None, top_model: str, num_classes: int) -> tuple:
    """The attacks a sweep scores: those asked for; without `--attack`, the demo's attacks of
    the one setting the sweep trains (the table group of its top model: the sum-top group's
    with `top_model none`, else the honest top-model group's) that fit the task; `none`: no
    attack."""
    from ladsg_jax.attacks.registry import attack_groups
    from ladsg_jax.errors import ConfigError

    if asked is None:
        return attack_groups(num_classes)["none" if top_model == "none" else "mlp"]
    if NO_ATTACK in asked:
        if len(asked) > 1:
            raise ConfigError("attack", "none runs alone (the sweep then scores no attack)")
        return ()
    return tuple(asked)


def run_sweep(config: TrainConfig, data: VFLData, points: list[GridPoint], num_seeds: int,
              seed: int = 0, attacks: list[str] | None = None, settings=None,
              progress: bool | str = False) -> dict:
    """Trains every (point, seed) and, with `attacks`, scores each attack per point and seed,
    each in the setting it needs: `experiment.run_experiment` over `points`, whose docstring
    describes the record."""
    from ladsg_jax.app.experiment import Experiment, run_experiment

    return run_experiment(Experiment(config, data, num_seeds, seed, tuple(points),
                                     tuple(attacks or ()), settings), progress=progress)
