"""Killed runs: training resumes from its orbax checkpoint with the same final numbers, and a
results file is never left half-written."""
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import jax
import numpy as np
import pytest

from ladsg_jax.data import load
from ladsg_jax.errors import ConfigError
from ladsg_jax.presets import preset_config
from ladsg_jax.vfl.runner import Runner, seed_keys

EPOCHS, KILL_GROUP, KILL_EPOCH = 4, 1, 2
RUN = f"""
from ladsg_jax.data import load
from ladsg_jax.presets import preset_config
from ladsg_jax.vfl.runner import Runner, seed_keys
config = preset_config("breast_cancer", epochs={EPOCHS}, seeds="sequential")
"""


def run_env():
    return {**os.environ, "JAX_PLATFORMS": "cpu"}


def test_a_killed_run_resumes_from_its_checkpoint_with_the_same_numbers(tmp_path):
    ckpt = str(tmp_path / "ckpt")
    # A child process trains 2 seeds in sequence and is SIGKILLed (no clean-up) right after
    # the checkpoint of seed 1's epoch 2: seed 0 finished, seed 1 half-way.
    killer = f"""
import os, signal
def on_epoch(group, epoch):
    if (group, epoch) == ({KILL_GROUP}, {KILL_EPOCH}):
        os.kill(os.getpid(), signal.SIGKILL)
Runner(config).fit(load("breast_cancer"), seed_keys(0, 2), checkpoint_dir={ckpt!r},
                   on_epoch=on_epoch)
"""
    child = subprocess.run([sys.executable, "-c", textwrap.dedent(RUN) + killer],
                           env=run_env(), capture_output=True, text=True, timeout=300)
    assert child.returncode == -signal.SIGKILL, child.stderr[-2000:]
    assert sorted(os.listdir(ckpt)) == ["group_0", "group_1", "run.json"]

    config = preset_config("breast_cancer", epochs=EPOCHS, seeds="sequential")
    data = load("breast_cancer")
    runner = Runner(config)
    epochs_run = []
    resumed = runner.fit(data, seed_keys(0, 2), checkpoint_dir=ckpt,
                         on_epoch=lambda g, e: epochs_run.append((g, e)))
    assert epochs_run == [(1, e) for e in range(KILL_EPOCH + 1, EPOCHS + 1)]
    fresh = runner.fit(data, seed_keys(0, 2))
    np.testing.assert_array_equal(resumed.test_accuracy, fresh.test_accuracy)
    np.testing.assert_array_equal(resumed.train_loss, fresh.train_loss)
    for got, want in zip(jax.tree.leaves(resumed.state.params),
                         jax.tree.leaves(fresh.state.params)):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(jax.random.key_data(resumed.state.key),
                                  jax.random.key_data(fresh.state.key))

    # A finished run is read back from its checkpoints without training.
    epochs_run.clear()
    again = runner.fit(data, seed_keys(0, 2), checkpoint_dir=ckpt,
                       on_epoch=lambda g, e: epochs_run.append((g, e)))
    assert epochs_run == []
    np.testing.assert_array_equal(again.test_accuracy, fresh.test_accuracy)
    # Another run's checkpoints are not mistaken for this one's.
    with pytest.raises(ConfigError, match="checkpoint_dir: .* another run"):
        runner.fit(data, seed_keys(1, 2), checkpoint_dir=ckpt)


def test_results_files_are_complete_json_even_when_the_writer_is_killed(tmp_path):
    path = tmp_path / "results.json"
    writer = f"""
from ladsg_jax.results import write_json_atomic
i = 0
while True:
    write_json_atomic({str(path)!r}, {{"round": i, "records": [[float(j)] * 50 for j in range(20000)]}})
    i += 1
"""
    rounds = []
    for delay in (0.9, 1.3, 1.7):
        child = subprocess.Popen([sys.executable, "-c", writer], env=run_env())
        time.sleep(delay)
        while not path.exists():
            time.sleep(0.05)
        time.sleep(0.1)
        child.send_signal(signal.SIGKILL)
        child.wait()
        with open(path) as f:
            content = json.load(f)                  # the whole file parses
        assert len(content["records"]) == 20000
        rounds.append(content["round"])
    assert not [p for p in os.listdir(tmp_path) if not p.startswith(".tmp-")
                and p != "results.json"]
