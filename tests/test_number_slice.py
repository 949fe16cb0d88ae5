"""The fixed-seed slice of the demo table and of the defense table (`tests/number_slice.py`)
stays within `TOLERANCE` of the numbers stored with it: the demo's rows and a defense of each
kind (noise, top-k, quantization, soft labels, a chain, a loss term, LADSG's norm detection and
decoys).

The stored numbers come from one machine. Training is chaotic: a float rounding that differs
between CPUs (another instruction set, another XLA:CPU code path) can flip a top-k choice or a
tie and send a run elsewhere, so an exact comparison holds only on the machine that wrote the
numbers. Measured on a 2-core AMD EPYC (AVX2) against numbers written on another machine of
that kind: one value of the slice moved, `compression keep 0.02`'s direct_argmin, by one
sample of 448 (0.0022); with XLA_FLAGS=--xla_cpu_max_isa=SSE4_2 and AVX every value equal to
the default's. The tolerance, 0.03, allows about 13 of the 448 training samples an attack
scores, or 3 of the 114 test samples of a main-task accuracy: room for a few flipped choices,
while a change of what a defense or attack computes that moves a number by more fails. For the
exact check of a refactor on one machine: `python tests/number_slice.py --write` before,
`--check` after. Rewritten on 2026-12-07 on the 2-core AMD EPYC when the direct attack began
counting a message with no negative entry as a miss (Fu et al.'s count): LADSG's `direct` moved
from 0.54 to 0.18; every other value was equal before and after on that machine. Then, the
same day, model completion became the best of 3 restarts (issue 29): only the passive, active
and raw model-completion values moved.
"""
import json
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(__file__))
import number_slice  # noqa: E402

TOLERANCE = 0.03

pytestmark = pytest.mark.slow


def test_the_slice_is_within_the_tolerance_of_the_stored_numbers():
    with open(number_slice.PATH) as f:
        stored = json.load(f)
    numbers = number_slice.compute(number_slice.TESTED)
    assert set(numbers) == set(number_slice.TESTED) <= set(stored)
    for label in number_slice.TESTED:
        for section in ("main_task", "attacks"):
            assert set(numbers[label][section]) == set(stored[label][section]), label
    moved = number_slice.differences(numbers, stored)
    assert moved, "nothing compared"
    for label, section, name, diff in moved:
        assert np.isfinite(diff) and diff <= TOLERANCE, (
            f"{label} {section} {name} moved by {diff:.4f} > {TOLERANCE}")


def test_differences_name_the_value_that_moved():
    stored = {"a": {"main_task": {"top_mlp": [0.5, 0.6]}, "attacks": {"direct": [0.9]}}}
    numbers = {"a": {"main_task": {"top_mlp": [0.5, 0.6]}, "attacks": {"direct": [0.8]}}}
    moved = number_slice.differences(numbers, stored)
    assert moved[0][:3] == ("a", "attacks", "direct")
    assert moved[0][3] == pytest.approx(0.1)
    assert moved[1] == ("a", "main_task", "top_mlp", 0.0)
