"""An attack as a value (DESIGN §2, §4): its run function and what it declares about itself.

The registry (`registry.py`) holds one `Attack` per name; the suite, the tables, the demo, the
figures and `ladsg-jax list attacks` read these fields and nothing else, so a new attack (or a
plugin's, `ladsg_jax.app.plugins`) is one file holding its run function plus one entry.
"""
from __future__ import annotations

import dataclasses
from typing import Callable

from ladsg_jax.errors import ConfigError, one_of

# what of party 0's holdings an attack may read (`AttackerView.restricted` hides the rest);
# "defense": the run's defense as configured, public (Kerckhoffs), never its state;
# "embeddings_sent": the embeddings party 0 sent at each recorded step (its own forward passes)
READS = ("features", "bottom", "wire_last", "wire_all", "known_labels", "defense",
         "embeddings_sent")
METRICS = ("top1", "auc", "completion")     # completion: top-1, F1 (binary) or top-5 by classes
TRAININGS = ("honest", "malicious", "none")
TOP_MODELS = ("any", "mlp", "none")
GROUPS = ("mlp", "none", "malicious")       # the table's runs: honest with that top model, or
                                            # party 0 on the malicious optimizer


@dataclasses.dataclass
class AttackContext:
    """What an attack's run function gets besides the attacker's view: the run's `config`,
    the attacker's `settings`, its `bottom` module, the task's `num_classes` and `num_train`
    (training samples), and `cached(name, build)` for compiled pieces reused across seeds. It
    holds no labels: those stay with the `AttackRunner`, which scores the predictions."""

    config: object
    settings: object
    bottom: object
    num_classes: int
    num_train: int
    compiled: dict = dataclasses.field(default_factory=dict)

    def cached(self, name: str, build: Callable):
        """`build()`'s value, built once per context under `name`."""
        if name not in self.compiled:
            self.compiled[name] = build()
        return self.compiled[name]


@dataclasses.dataclass(frozen=True)
class Attack:
    """One label inference attack.

    `run(context, view, key) -> {"score": Predictions, ["train_score": Predictions],
    ["readings": {name: Predictions}, "reading": name], ["subsets": {name: Predictions}],
    ["choice": str]}` predicts against one run (`choice`: what the attack chose by itself,
    e.g. by cross-validation, recorded per seed; `subsets`: samples the attack picked itself,
    e.g. those it certified, scored apart as top-1 precision and coverage, never ranked):
    `context`
    is the `AttackContext` of the model and task, `view` the `AttackerView` holding only what
    `reads` names, `key` a PRNG key. The attack never sees the true labels; the suite scores its
    `Predictions` (`attacks/predictions.py`) by `metric`. `training`: what run it reads ("honest", "malicious": party 0 trained
    with the malicious optimizer, "none": a baseline that reads no VFL signal). `top_model`:
    the setting it needs ("none": the logits are the sum of the parties' outputs). `group` and
    `column`: the table run it is scored on and its column's heading; `label` its name in
    figures.
    """

    name: str
    description: str
    run: Callable
    metric: str
    reads: tuple
    training: str = "honest"
    top_model: str = "any"
    binary_only: bool = False
    group: str = "mlp"
    column: str = ""
    label: str = ""

    def __post_init__(self):
        field = f"attack {self.name!r}" if isinstance(self.name, str) else "attack"
        if not isinstance(self.name, str) or not self.name.isidentifier():
            raise ConfigError(field, f"name must be an identifier, got {self.name!r}")
        if not callable(self.run):
            raise ConfigError(field, f"run must be a function (context, view, key) -> dict, "
                                     f"got {self.run!r}")
        for name, value, allowed in (("metric", self.metric, METRICS),
                                     ("training", self.training, TRAININGS),
                                     ("top_model", self.top_model, TOP_MODELS),
                                     ("group", self.group, GROUPS)):
            one_of(f"{field}.{name}", value, allowed)
        if not isinstance(self.reads, tuple) or not self.reads:
            raise ConfigError(f"{field}.reads", f"a non-empty tuple of {', '.join(READS)}; "
                                                f"got {self.reads!r}")
        for item in self.reads:
            one_of(f"{field}.reads", item, READS)
        if self.top_model == "none" and self.group != "none":
            raise ConfigError(f"{field}.group", "an attack that needs top_model 'none' is "
                                                "scored on the table's 'none' run")
        if (self.training == "malicious") != (self.group == "malicious"):
            raise ConfigError(f"{field}.group", "the table's 'malicious' run is the one "
                                                "whose attacks need training 'malicious'")
        if not self.column:
            object.__setattr__(self, "column", self.name)
        if not self.label:
            object.__setattr__(self, "label", self.column)

    @property
    def needs_sum_top(self) -> bool:
        return self.top_model == "none"
