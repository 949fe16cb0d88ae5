"""A refactor moves no number: the fixed-seed slice of the demo table and of the defense table
(`tests/number_slice.py`) equals the numbers stored before the defenses became composable values
(issue 14): the demo's rows and a defense of each kind (noise, top-k, quantization, soft
labels, a chain, a loss term, LADSG's norm detection and decoys); `python tests/number_slice.py`
recomputes every defense's row."""
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
import number_slice  # noqa: E402


def test_the_slice_equals_the_stored_numbers():
    with open(number_slice.PATH) as f:
        stored = json.load(f)
    numbers = number_slice.compute(number_slice.TESTED)
    assert set(numbers) == set(number_slice.TESTED) <= set(stored)
    for label in number_slice.TESTED:
        expected = stored[label]
        for section in ("main_task", "attacks"):
            assert set(numbers[label][section]) == set(expected[section]), label
            for name, values in expected[section].items():
                np.testing.assert_allclose(numbers[label][section][name], values, atol=1e-6,
                                           err_msg=f"{label} {section} {name}")
