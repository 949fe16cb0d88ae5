"""An attack predicts and never sees the labels it is scored on: nothing handed to its run
function holds them, the suite scores its predictions, and an attack written for the old
interface (returning a number) gets one line saying what changed."""
import dataclasses
import types

import jax
import numpy as np
import pytest

from ladsg_jax.attacks.base import Attack
from ladsg_jax.attacks.predictions import MISS, Predictions, score
from ladsg_jax.attacks.registry import ATTACKS
from ladsg_jax.attacks.suite import AttackSettings, run_attacks
from ladsg_jax.errors import ConfigError
from ladsg_jax.presets import preset_config


def reachable_arrays(root, limit: int = 12) -> list:
    """Every array reachable from `root` through attributes, fields, containers, a function's
    closure and defaults, and a jitted function's wrapped function (modules and a function's
    globals are not what an attack is given)."""
    found, seen, stack = [], set(), [(root, 0)]
    while stack:
        obj, depth = stack.pop()
        if id(obj) in seen or depth > limit or isinstance(obj, (str, bytes, types.ModuleType)):
            continue
        seen.add(id(obj))
        if isinstance(obj, (np.ndarray, jax.Array)):
            found.append(obj)
            continue
        children = []
        if isinstance(obj, dict):
            children = list(obj.values())
        elif isinstance(obj, (list, tuple, set, frozenset)):
            children = list(obj)
        elif callable(obj) and hasattr(obj, "__code__"):
            children = [c.cell_contents for c in obj.__closure__ or ()
                        if c.cell_contents is not None] + list(obj.__defaults__ or ())
        if hasattr(obj, "__wrapped__"):
            children.append(obj.__wrapped__)
        if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
            children += [getattr(obj, f.name, None) for f in dataclasses.fields(obj)]
        if hasattr(obj, "__dict__") and not isinstance(obj, type):
            children += list(vars(obj).values())
        stack += [(child, depth + 1) for child in children]
    return found


@pytest.fixture
def peek():
    """A plugin attack that collects every array it can reach from what it is given."""
    seen = []

    def run(context, view, key):
        seen.extend(reachable_arrays((context, view, key)))
        return {"score": Predictions(index=np.arange(4), labels=np.zeros(4, int))}

    ATTACKS["peek"] = Attack("peek", "reaches for the labels", run, "top1",
                             ("features", "bottom", "wire_all", "known_labels"))
    yield seen
    del ATTACKS["peek"]


def test_nothing_an_attack_is_given_holds_the_true_labels(peek, breast_cancer):
    config = preset_config("breast_cancer", epochs=1)
    run_attacks(config, breast_cancer, ["peek", "passive_mc"], 1,
                settings=AttackSettings(known_labels=20))      # a compiled piece cached first
    peek.clear()
    run_attacks(config, breast_cancer, ["passive_mc", "peek"], 1,
                settings=AttackSettings(known_labels=20))
    arrays = [np.asarray(a) for a in peek if not jax.dtypes.issubdtype(a.dtype,
                                                                       jax.dtypes.prng_key)]
    assert any(a.shape == breast_cancer.train_x[0].shape for a in arrays)   # it saw the view
    assert any(a.ndim == 1 and a.size == 20 for a in arrays)        # and its 20 known labels
    for labels in (breast_cancer.train_y, breast_cancer.test_y):
        labels = np.asarray(labels)
        assert not any(a.shape == labels.shape and np.array_equal(a, labels) for a in arrays)


def test_an_attack_returning_a_number_gets_one_line_naming_the_change(breast_cancer):
    ATTACKS["old_style"] = Attack("old_style", "0.1 interface",
                                  lambda context, view, key: {"score": 0.5}, "top1",
                                  ("wire_last",), top_model="none", group="none")
    try:
        with pytest.raises(ConfigError, match=r"attack 'old_style': its run returned a float "
                                              r"where Predictions belong: since ladsg_jax "
                                              r"0\.2\.0"):
            run_attacks(preset_config("breast_cancer", top_model="none", epochs=1),
                        breast_cancer, ["old_style"], 1, settings=AttackSettings(known_labels=20))
    finally:
        del ATTACKS["old_style"]


def test_the_suite_scores_predictions_by_hand():
    labels = {"train": np.array([0, 1, 1, 0, 1, 0]), "test": np.array([1, 1, 0])}
    # top-1 over the indexed samples; a miss counts as wrong
    guess = Predictions(index=np.array([1, 2, 3, 4]), labels=np.array([1, MISS, 0, 0]))
    assert score(guess, "top1", labels, 2) == ("top1", 0.5)
    # leak AUC per batch: batch 0 ranks its positive first (1.0), batch 1 last (0.0)
    per_batch = Predictions(index=np.array([[0, 1], [2, 3]]),
                            scores=np.array([[0.1, 0.9], [0.2, 0.8]]))
    assert score(per_batch, "auc", labels, 2) == ("auc", 0.5)
    # completion on two classes: F1 of class 1 on the test split
    completion = Predictions(index=np.arange(3), scores=np.array([[0.2, 0.8], [0.9, 0.1],
                                                                  [0.6, 0.4]]), split="test")
    metric, f1 = score(completion, "completion", labels, 2)
    assert metric == "f1" and f1 == pytest.approx(2 * 1 / (2 * 1 + 1 + 0))
    with pytest.raises(ConfigError, match="predictions.split"):
        Predictions(index=np.arange(2), labels=np.zeros(2), split="validation")
    with pytest.raises(ConfigError, match="give labels or scores"):
        Predictions(index=np.arange(2))
