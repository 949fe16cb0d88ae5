"""Defenses by name: a registry for configs and the CLI (DESIGN §2).

Every registered defense is a `Defense` value (`base.py`); composites are chains of smaller
ones (`composite.py`): LADSG is `chain(la, nd, sg)`, DCAE `chain(cae, discrete_sgd)`; KDk is
label anonymization with the teacher's weighting and FLSG substitution in its rejection mode.
The registry and the defenses are imported on first use (`ladsg_jax.lazy`): the contract
(`Defense` and what a defense may need) loads without JAX.
"""
from __future__ import annotations

from ladsg_jax.defenses.base import BATCH_CUT, NEEDS, PER_SAMPLE, WHOLE_BATCH, Defense
from ladsg_jax.lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, {
    "registry": ("DEFENSES", "register_defense", "defense_problem", "knob_default",
                 "make_defense", "cast_option", "hyper_fields"),
    "anonymize": ("KDk", "LabelAnonymization"),
    "cae": ("CAE", "DCAE"),
    "composite": ("Chain", "chain"),
    "dcor": ("DistanceCorrelation",),
    "labels": ("LabelDP",),
    "ladsg": ("LADSG",),
    "norm_detection": ("NormDetection",),
    "substitute": ("FLSG", "SubstituteGradients"),
    "marvell": ("MaxNorm", "Marvell"),
    "noise": ("GaussianDP", "LaplaceNoise"),
    "quantize": ("DiscreteSGD", "SignSGD"),
    "sparsify": ("PPDL", "GradientCompression"),
})

__all__ = ["register_defense", "BATCH_CUT", "Chain", "Defense", "DEFENSES", "LADSG",
           "LabelAnonymization", "NEEDS", "NormDetection", "PER_SAMPLE", "SubstituteGradients",
           "WHOLE_BATCH", "chain", "hyper_fields", "knob_default", "make_defense"]
