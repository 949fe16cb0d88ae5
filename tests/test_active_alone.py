"""The active party alone (`experiments/active_alone.py`): its own slice and labels, no VFL,
scored on the test split: the utility a defense can always fall back to."""
from __future__ import annotations

import importlib
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ladsg_jax.data import load
from ladsg_jax.defenses.teacher import train_teacher
from ladsg_jax.presets import preset_config

EXPERIMENTS = os.path.join(os.path.dirname(__file__), os.pardir, "experiments")


def test_the_teacher_predicts_the_split_it_is_given():
    data, config = load("digits"), preset_config("digits")
    x, y = jnp.asarray(data.train_x[-1]), jnp.asarray(data.train_y)
    key = jax.random.key(0)
    train_logits = train_teacher(key, x, y, 10, config, 5)
    test_logits = train_teacher(key, x, y, 10, config, 5, predict_x=jnp.asarray(data.test_x[-1]))
    assert train_logits.shape == (data.num_train, 10) and test_logits.shape == (360, 10)
    assert np.mean(np.argmax(train_logits, -1) == data.train_y) > 0.85
    assert np.mean(np.argmax(test_logits, -1) == data.test_y) > 0.8   # digits' right half


def test_the_script_reports_each_seed(monkeypatch, capsys):
    monkeypatch.syspath_prepend(EXPERIMENTS)
    script = importlib.import_module("active_alone")
    assert script.main(["--dataset", "breast_cancer", "--seeds", "2"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["dataset"] == "breast_cancer" and report["epochs"] == 30
    assert len(report["per_seed"]) == 2 and report["per_seed"][0] != pytest.approx(0.0)
    assert report["mean"] > 0.9         # the active party's 15 features alone: about 0.97
    assert script.main(["--dataset", "mnist"]) == 2
