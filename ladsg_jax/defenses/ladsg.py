"""LADSG: label anonymization with semantically aligned substitute gradients
(arXiv 2506.06742), as DESIGN §3 fixes its equations: `chain(la, nd, sg)` of its three stages
(`anonymize.py`, `norm_detection.py`, `substitute.py`), each switched on alone by `stages`.

The chain applies norm detection's screen before substitution builds its contexts, as the
paper's active party screens the embeddings it receives before it answers them (the decoy's
pullback is taken at the screened embeddings). Its members draw disjoint streams of one init
key (the teacher, random classes, decoy choices, noise directions: `jax.random.split(key, 4)`),
so with stages la and sg in decoy mode the substitution's candidate sets are exactly the label
anonymization's (the same teacher).

The defaults are the measured trade-off of `experiments/ladsg_sweep.py` (issue 4): stages la and
sg, k = min(3, classes), ε = 0.3, cosine substitution ρ = 0.5 with per-step noise and the true
message's norm at full rate. Norm detection is off by default: substitution honestly inflates the
passive embeddings (up to 14.6× the active party's on digits), so the ratio rule then blocks an
honest party for most steps (82% on digits with a top model); alone it flags 0.3–3.7% of an
honest run's steps and catches a party whose embeddings explode. Per-sample noise resists the
averaging attacker better but costs 5.5–10 points of main-task accuracy with a top model on
digits (ρ 0.5–0.9).
"""
from __future__ import annotations

import dataclasses
from functools import cached_property
from typing import ClassVar

from ladsg_jax.defenses.anonymize import LabelAnonymization
from ladsg_jax.defenses.composite import Composite, build_stages
from ladsg_jax.defenses.norm_detection import NormDetection
from ladsg_jax.defenses.substitute import (SubstituteGradients, cosine_substitute,
                                           flsg_substitute)
from ladsg_jax.errors import one_of

STAGES = ("la", "sg", "nd")


@dataclasses.dataclass(frozen=True)
class LADSG(Composite):
    """LADSG with every constant a field; `stages` switches each stage on alone (the ablation).
    The fields are its stages' (`LabelAnonymization`, `SubstituteGradients`, `NormDetection`).

    Attributes:
        stages: the stages switched on, a tuple of names (or one name); they run as la, nd, sg.
            Allowed: one of la, sg, nd; for each entry.
        k: size of the candidate set of label anonymization and the decoy; None takes
            min(3, classes). That is 3, DESIGN §3's default, and 2 for binary tasks.
            Allowed: integer >= 2, or None; also at most the number of classes.
    """

    name: ClassVar[str] = "ladsg"
    summary: ClassVar[str] = ("label anonymization, substitute gradients, norm detection "
                              "(arXiv 2506.06742)")
    knob: ClassVar[str] = "rho"
    hyper: ClassVar[tuple] = ("epsilon", "rho", "mix", "prob", "threshold", "warmup", "kappa",
                              "ratio", "decay")
    field_sources: ClassVar[tuple] = (SubstituteGradients, LabelAnonymization, NormDetection)

    stages: tuple = ("la", "sg")
    k: int | None = None
    epsilon: float = 0.3
    weighting: str = "uniform"
    teacher_epochs: int = 10
    mode: str = "cosine"
    decoy: str = "per_step"
    candidates: str = "teacher"
    rho: float = 0.5
    noise: str = "per_step"
    noise_space: str = "free"
    norm: str = "keep"
    mix: float = 1.0
    prob: float = 1.0
    flsg_samples: int = 16
    neighbours: int = 4
    threshold: float = 0.5
    warmup: int = 20
    kappa: float = 3.0
    ratio: float = 5.0
    decay: float = 0.99

    def __post_init__(self):
        stages = (self.stages,) if isinstance(self.stages, str) else tuple(self.stages)
        object.__setattr__(self, "stages", stages)
        for stage in stages:
            one_of("defense.ladsg.stages", stage, STAGES)
        build_stages(self.name, self.stage_defenses)   # every stage's checks, on or not

    def stage_defenses(self) -> dict:
        """Each stage as its own defense, built from the fields."""
        fields = self.options
        pick = lambda cls: cls(**{f.name: fields[f.name]                      # noqa: E731
                                  for f in dataclasses.fields(cls)})
        return {"la": pick(LabelAnonymization), "nd": pick(NormDetection),
                "sg": pick(SubstituteGradients)}

    @cached_property
    def members(self) -> tuple:
        stages = self.stage_defenses()
        return tuple(stages[s] for s in ("la", "nd", "sg") if s in self.stages)

    def member_keys(self, key, hook):
        return [key] * len(self.members)       # disjoint streams of one key (module docstring)


__all__ = ["LADSG", "STAGES", "cosine_substitute", "flsg_substitute"]
