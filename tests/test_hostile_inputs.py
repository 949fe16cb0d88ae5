"""Bad and hostile inputs (issue 16): each ends with one line naming the field, exit status 2,
no traceback, and nothing written; run in-process through `ladsg_jax.cli.main`."""
from __future__ import annotations

import os

import numpy as np
import pytest

from ladsg_jax.cli import main
from ladsg_jax.config import TrainConfig
from ladsg_jax.data import from_arrays
from ladsg_jax.defenses import make_defense
from ladsg_jax.errors import ConfigError
from ladsg_jax.vfl.runner import Runner, seed_keys

TRAIN = ["train", "--dataset", "digits", "--epochs", "1", "--seeds", "1", "--no-progress"]
ATTACK = ["attack", "--dataset", "digits", "--epochs", "1", "--seeds", "1", "--no-progress"]
SYNTHETIC = ["train", "--dataset", "synthetic", "--epochs", "1", "--seeds", "1"]

# (command line, the start of the message after "ladsg-jax: error: "); FILE is a plain file and
# RUNS the test's runs folder
CASES = {
    "defense option none": (TRAIN + ["--defense", "ladsg", "--defense.rho", "none"],
                            "defense.ladsg.rho: expected a number, got 'none'"),
    "defense option word": (TRAIN + ["--defense", "laplace", "--defense.scale", "big"],
                            "defense.laplace.scale: expected a number, got 'big'"),
    "defense option unknown": (TRAIN + ["--defense", "ladsg", "--defense.nope", "1"],
                               "defense.ladsg option: unknown value 'nope'"),
    "defense option no value": (TRAIN + ["--defense", "ladsg", "--defense.rho"],
                                "defense.rho: needs a value"),
    "stray argument": (TRAIN + ["--bogus"], "arguments: unrecognized '--bogus'"),
    "defense unknown": (TRAIN + ["--defense", "nope"], "defense: unknown value 'nope'"),
    "seed overflow": (TRAIN + ["--seed", "99999999999999999999999"], "seed: must be in 0.."),
    "seed negative": (TRAIN + ["--seed", "-1"], "seed: must be in 0.."),
    "seeds zero": (TRAIN + ["--seeds", "0"], "seeds: must be a positive integer"),
    "known labels zero": (ATTACK + ["--attack", "passive_mc", "--known-labels", "0"],
                          "known_labels"),
    "hybrid mixed": (ATTACK + ["--attack", "hybrid", "passive_mc"],
                     "attack: hybrid runs alone"),
    "attack unknown": (ATTACK + ["--attack", "mind_reading"],
                       "attack: unknown value 'mind_reading'"),
    "direct with a top model": (ATTACK + ["--attack", "direct", "--top-model", "mlp"],
                                "top_model: the direct attack needs top_model 'none'"),
    "synthetic classes fraction": (SYNTHETIC + ["--data-option", "num_classes=2.5"],
                                   "synthetic.num_classes: must be an integer ≥ 2, got 2.5"),
    "synthetic classes word": (SYNTHETIC + ["--data-option", "num_classes=abc"],
                               "synthetic.num_classes: must be an integer ≥ 2, got 'abc'"),
    "synthetic seed negative": (SYNTHETIC + ["--data-option", "seed=-1"],
                                "synthetic.seed: must be an integer ≥ 0, got -1"),
    "synthetic separation nan": (SYNTHETIC + ["--data-option", "separation=nan"],
                                 "synthetic.separation: must be a finite number ≥ 0"),
    "data option empty": (TRAIN + ["--data-option", "source="],
                          "data-option: expected KEY=VALUE with both parts, got 'source='"),
    "data option no equals": (TRAIN + ["--data-option", "source"],
                              "data-option: expected KEY=VALUE"),
    "dataset unknown": (TRAIN[:1] + ["--dataset", "cifar"], "dataset: unknown value 'cifar'"),
    "runs dir a file": (TRAIN + ["--runs-dir", "FILE"], "runs-dir: FILE exists and is not a "
                                                        "folder"),
    "runs dir under a file": (TRAIN + ["--runs-dir", "FILE/sub"], "runs-dir: FILE/sub cannot "
                                                                  "be made"),
    "name escapes": (TRAIN + ["--runs-dir", "RUNS", "--name", "../../x"],
                     "name: must be one folder name inside --runs-dir"),
    "name dot dot": (TRAIN + ["--runs-dir", "RUNS", "--name", ".."],
                     "name: must be one folder name"),
    "checkpoint dir a file": (TRAIN + ["--checkpoint-dir", "FILE"],
                              "checkpoint-dir: FILE exists and is not a folder"),
    "learning rate nan": (TRAIN + ["--lr", "nan"], "learning_rate: must be a finite number > 0"),
    "learning rate huge": (TRAIN + ["--lr", "inf"], "learning_rate: must be a finite number"),
    "weight decay inf": (TRAIN + ["--weight-decay", "inf"], "weight_decay: must be a finite"),
    "momentum one": (TRAIN + ["--momentum", "1"], "momentum: must be a finite number in [0, 1)"),
    "epochs zero": (TRAIN + ["--epochs", "0"], "epochs: must be a positive integer"),
    "batch larger than the data": (TRAIN + ["--batch-size", "100000"],
                                   "batch_size: 100000 is larger than the"),
    "one party": (TRAIN + ["--parties", "1"], "num_parties: VFL needs at least 2 parties"),
    "shares for the wrong parties": (TRAIN + ["--shares", "1"], "shares: 1 shares for 2 parties"),
    "loop unknown": (TRAIN + ["--loop", "fast"], "loop: unknown value 'fast'"),
    "sweep grid field unknown": (["sweep", "--dataset", "digits", "--defense", "ladsg",
                                  "--grid", "nope=1,2"],
                                 "grid field of defense ladsg: unknown value 'nope'"),
    "sweep grid not numbers": (["sweep", "--dataset", "digits", "--defense", "ladsg",
                                "--grid", "rho=a,b"], "defense.ladsg.rho: expected a number, "
                                                      "got 'a'"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_hostile_command_line_is_one_line_and_exit_2(case, tmp_path, monkeypatch, capsys,
                                                       digits):
    argv, message = CASES[case]
    plain = tmp_path / "plain_file"
    plain.write_text("x")
    runs = tmp_path / "runs"
    fill = lambda s: s.replace("FILE", str(plain)).replace("RUNS", str(runs))
    argv = [fill(a) for a in argv]
    if "--runs-dir" not in argv and argv[0] != "list":
        argv += ["--runs-dir", str(runs)]
    monkeypatch.chdir(tmp_path)
    before = sorted(os.listdir(tmp_path))
    assert main(argv) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in captured.err, captured.err
    assert lines[0].startswith("ladsg-jax: error: " + fill(message)), lines[0]
    assert sorted(os.listdir(tmp_path)) == before                  # nothing written
    assert plain.read_text() == "x"


def test_the_python_api_names_bad_values():
    with pytest.raises(ConfigError, match="defense.ladsg.rho: expected a number, got None"):
        make_defense("ladsg", rho=None)
    assert make_defense("ladsg", rho=np.float32(0.25)).rho == 0.25
    config = TrainConfig(epochs=1, batch_size=4)
    data = from_arrays(np.ones((8, 4), np.float32), np.arange(8) % 2,
                       np.ones((4, 4), np.float32), np.arange(4) % 2, num_classes=2)
    with pytest.raises(ConfigError, match="keys: must hold at least one key"):
        Runner(config).fit(data, seed_keys(0, 1)[:0])
    with pytest.raises(ConfigError, match="data: must be a VFLData, got NoneType"):
        Runner(config).fit(None, seed_keys(0, 1))
