"""LADSG: label anonymization with semantically aligned substitute gradients
(arXiv 2506.06742), as DESIGN §3 fixes its equations: `chain(la, nd, sg)` of its three stages
(`anonymize.py`, `norm_detection.py`, `substitute.py`), each switched on alone by `stages`.

The chain applies norm detection's screen before substitution builds its contexts, as the
paper's active party screens the embeddings it receives before it answers them (the decoy's
pullback is taken at the screened embeddings). Each stage draws from a key of its own,
`fold_in(key, STREAMS[stage])` in `init` and in the cut, so adding or removing a stage changes
no other stage's numbers. The teacher is label anonymization's (its stream), trained once: in
decoy mode with the teacher's candidates the substitution reads the same candidate sets, with
or without the `la` stage.

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

import jax

from ladsg_jax.defenses.anonymize import LabelAnonymization
from ladsg_jax.defenses.base import call_hook
from ladsg_jax.defenses.composite import Composite, build_stages
from ladsg_jax.defenses.norm_detection import NormDetection
from ladsg_jax.defenses.substitute import (SubstituteGradients, cosine_substitute,
                                           flsg_substitute)
from ladsg_jax.errors import one_of

STAGES = ("la", "sg", "nd")
STREAMS = {"la": 0, "nd": 1, "sg": 2}      # each stage's key: fold_in(key, STREAMS[stage])


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
        return [jax.random.fold_in(key, STREAMS[m.name]) for m in self.members]

    def init(self, key, data, config, hp):
        """Each stage's state from its own key; the teacher is trained once, in label
        anonymization's stream, and its candidate sets go to a decoy substitution that reads
        them (trained for it alone when the `la` stage is off)."""
        stages = self.stage_defenses()
        sg = stages["sg"]
        reads_teacher = ("sg" in self.stages and "init" in sg.draws and sg.mode == "decoy"
                         and sg.candidates == "teacher")
        teacher = None
        if "la" in self.stages or reads_teacher:
            teacher = call_hook(stages["la"], "init",
                                jax.random.fold_in(key, STREAMS["la"]), data, config, None)
        keys = self.member_keys(key, "init")
        states = []
        for member, member_key, member_hp in zip(self.members, keys, hp):
            if member.name == "la":
                states.append(teacher)
            elif member.name == "sg" and reads_teacher:
                states.append(call_hook(member, "init", member_key, data, config, member_hp,
                                        teacher.others))
            else:
                states.append(call_hook(member, "init", member_key, data, config, member_hp))
        return tuple(states)


__all__ = ["LADSG", "STAGES", "STREAMS", "cosine_substitute", "flsg_substitute"]
