"""Killed runs: training resumes from its orbax checkpoint with the same final numbers, and a
results file is never left half-written."""
import json
import shutil
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


@pytest.mark.slow
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
    # the lock of the killed process went with it
    assert sorted(os.listdir(ckpt)) == [".lock", "digests", "group_0", "group_1", "run.json"]

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


@pytest.mark.slow
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


def fit_3(checkpoint_dir=None, data=None, config=None, on_epoch=None):
    config = config or preset_config("breast_cancer", epochs=3)
    return Runner(config).fit(data or load("breast_cancer"), seed_keys(0, 2),
                              checkpoint_dir=checkpoint_dir, on_epoch=on_epoch)


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished 3-epoch run's checkpoint folder (steps 2 and 3 kept) and its fresh numbers."""
    folder = str(tmp_path_factory.mktemp("finished") / "ckpt")
    fit_3(folder)
    return folder, fit_3()


@pytest.mark.slow
def test_each_damaged_checkpoint_file_falls_back_to_the_older_step(finished, tmp_path, capfd):
    folder, fresh = finished
    newest = os.path.join(folder, "group_0", "3")
    files = sorted(os.path.relpath(os.path.join(d, f), newest)
                   for d, _, names in os.walk(newest) for f in names)
    assert len(files) >= 10 and "default/_METADATA" in files
    for name in files:
        copy = str(tmp_path / name.replace("/", "_"))
        shutil.copytree(folder, copy)
        path = os.path.join(copy, "group_0", "3", name)
        with open(path, "r+b") as f:
            f.truncate(os.path.getsize(path) // 2)
        epochs = []
        resumed = fit_3(copy, on_epoch=lambda g, e: epochs.append(e))
        assert epochs == [3], name                   # epoch 3 trained again from step 2
        np.testing.assert_array_equal(resumed.test_accuracy, fresh.test_accuracy)
        lines = capfd.readouterr().err.strip().splitlines()
        assert lines == [f"ladsg-jax: warning: checkpoint_dir: damaged, removed: "
                         f"{os.path.join(copy, 'group_0', '3')}: {name} changed; resuming "
                         "seed group 0 from epoch 2"], name
        shutil.rmtree(copy)


@pytest.mark.slow
def test_no_intact_checkpoint_or_a_broken_run_json_is_one_line(finished, tmp_path):
    folder, _ = finished
    copy = str(tmp_path / "both")
    shutil.copytree(folder, copy)
    for step in ("2", "3"):
        with open(os.path.join(copy, "group_0", step, "default", "_METADATA"), "w") as f:
            f.write("garbage")
    with pytest.raises(ConfigError, match=f"checkpoint_dir: no intact checkpoint of seed group "
                                          f"0 .*_METADATA changed.*; delete {copy} to start "
                                          "over$"):
        fit_3(copy)
    copy = str(tmp_path / "marker")
    shutil.copytree(folder, copy)
    with open(os.path.join(copy, "run.json"), "w") as f:
        f.write('{"config": "trunc')
    with pytest.raises(ConfigError, match=r"run.json is unreadable \(.*\); delete .* to start"):
        fit_3(copy)
    # a save cut short by a kill leaves orbax's temporary folder: the next open removes it
    copy = str(tmp_path / "tmp")
    shutil.copytree(folder, copy)
    stale = os.path.join(copy, "group_0", "4.orbax-checkpoint-tmp-1234")
    os.makedirs(stale)
    fit_3(copy)
    assert not os.path.exists(stale)


def test_a_changed_split_data_option_or_config_is_not_resumed(tmp_path):
    folder = str(tmp_path / "ckpt")
    config = preset_config("breast_cancer", epochs=1)
    fit_3(folder, config=config)
    for data, differs in ((load("breast_cancer", shares=(0.1, 0.9)),
                           "the data .an option, the split or the shares., the parties' "
                           "feature shapes differ"),
                          (load("synthetic"), "the data set, the data .an option")):
        with pytest.raises(ConfigError, match=f"checkpoint_dir: .* another run \\({differs}"):
            fit_3(folder, data=data, config=config)
    synthetic = str(tmp_path / "synthetic")
    fit_3(synthetic, data=load("synthetic"), config=config)
    with pytest.raises(ConfigError, match=r"\(the data \(an option, the split or the shares\) "
                                          r"differ\)"):
        fit_3(synthetic, data=load("synthetic", separation=3.0), config=config)
    with pytest.raises(ConfigError, match=r"\(the training config or the defense differ\)"):
        fit_3(folder, config=config.replace(batch_size=32))


@pytest.mark.slow
def test_ctrl_c_stops_a_checkpointed_run_cleanly_and_the_rerun_resumes(tmp_path):
    # imported before the child starts: importing them between its epoch 3 and the signal took
    # long enough, on a loaded clean clone, for the child to finish all 60 epochs first (now 120:
    # with a warm compile cache 60 were done before the signal once; the signal ends it anyway).
    # EpochCheckpoints imports orbax on first use: a warm child once finished all 120 meanwhile
    import orbax.checkpoint  # noqa: F401

    from ladsg_jax.app.cli import main
    from ladsg_jax.vfl.checkpoint import EpochCheckpoints

    ckpt, runs = tmp_path / "ckpt", tmp_path / "runs"
    args = ["train", "--dataset", "breast_cancer", "--epochs", "120", "--seeds", "1",
            "--checkpoint-dir", str(ckpt), "--runs-dir", str(runs), "--no-progress"]
    child = subprocess.Popen([sys.executable, "-m", "ladsg_jax", *args, "--name", "cut"],
                             env=run_env(), stderr=subprocess.PIPE, text=True)
    digests = ckpt / "digests" / "group_0"

    def saved() -> list[int]:        # the epochs checkpointed (not a digest being written)
        return [int(p.stem) for p in digests.glob("*.json") if p.stem.isdigit()]

    deadline = time.time() + 240
    while not any(epoch >= 3 for epoch in saved()):
        assert child.poll() is None and time.time() < deadline, child.stderr.read()[-2000:]
        time.sleep(0.05)
    # a second run on the same folder meanwhile: one line naming the folder and the first run
    with pytest.raises(ConfigError, match=f"{ckpt} is in use by another run \\(pid {child.pid} "
                                          "on .*ladsg_jax.*train"):
        EpochCheckpoints(str(ckpt), {})
    sent = time.time()
    child.send_signal(signal.SIGINT)
    err = child.communicate(timeout=60)[1]
    assert child.returncode == 130, err[-2000:]
    assert time.time() - sent < 10
    assert err.strip().splitlines()[-1] == (
        f"ladsg-jax: interrupted; no result file was written; the same command resumes from "
        f"{ckpt}")
    assert "Traceback" not in err
    assert not runs.exists()
    assert not list(ckpt.rglob("*orbax-checkpoint-tmp*"))
    done = max(saved())
    assert 3 <= done < 120

    assert main([*args, "--name", "resumed"]) == 0
    assert main([*args[:-5], "--runs-dir", str(runs), "--no-progress", "--name", "fresh"]) == 0
    resumed = json.loads((runs / "resumed" / "result.json").read_text())
    fresh = json.loads((runs / "fresh" / "result.json").read_text())
    assert resumed["per_seed"] == fresh["per_seed"]
