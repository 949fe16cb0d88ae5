"""Bad and hostile inputs (issue 16): each ends with one line naming the field, exit status 2,
no traceback, and nothing written; run in-process through `ladsg_jax.app.cli.main`."""
from __future__ import annotations

import os

import numpy as np
import pytest

from ladsg_jax.app.cli import main
from ladsg_jax.config import TrainConfig
from ladsg_jax.data import from_arrays
from ladsg_jax.defenses import make_defense
from ladsg_jax.errors import ConfigError
from ladsg_jax.vfl.runner import Runner, seed_keys

TRAIN = ["train", "--dataset", "digits", "--epochs", "1", "--seeds", "1", "--no-progress"]
ATTACK = ["attack", "--dataset", "digits", "--epochs", "1", "--seeds", "1", "--no-progress"]
SYNTHETIC = ["train", "--dataset", "synthetic", "--epochs", "1", "--seeds", "1"]
SWEEP = ["sweep", "--dataset", "digits", "--epochs", "1", "--seeds", "1", "--no-progress",
         "--defense", "ladsg"]

# (command line, the start of the message after "ladsg-jax: error: "); FILE is a plain file,
# TMP/empty.csv an empty one, TMP the test's folder and RUNS its runs folder
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
    'parties zero': (TRAIN + ['--parties', '0'],
        'num_parties: must be a positive integer, got 0'),
    'parties word': (TRAIN + ['--parties', 'two'],
        "--parties: invalid int value: 'two'"),
    'shares negative': (TRAIN + ['--shares', '-1', '2'],
        'shares: every share must be positive, got [-1.0, 2.0]'),
    'shares zero': (TRAIN + ['--shares', '0', '1'],
        'shares: every share must be positive, got [0.0, 1.0]'),
    'shares nan': (TRAIN + ['--shares', 'nan', '1'],
        'shares: every share must be positive, got [nan, 1.0]'),
    'seeds negative': (TRAIN + ['--seeds', '-2'],
        'seeds: must be a positive integer, got -2'),
    'seeds word': (TRAIN + ['--seeds', 'many'],
        "--seeds: invalid int value: 'many'"),
    'seed word': (TRAIN + ['--seed', 'x'],
        "--seed: invalid int value: 'x'"),
    'bottom unknown': (TRAIN + ['--bottom', 'transformer'],
        "bottom: unknown value 'transformer'; allowed: cnn, hashed_mlp, mlp, re"),
    'bottom hidden zero': (TRAIN + ['--bottom-hidden', '0'],
        'bottom_hidden: must be a tuple of positive integers, got (0,)'),
    'bottom hidden negative': (TRAIN + ['--bottom-hidden', '-4'],
        'bottom_hidden: must be a tuple of positive integers, got (-4,)'),
    'embed dim zero': (TRAIN + ['--embed-dim', '0'],
        'embed_dim: must be a positive integer, got 0'),
    'top model unknown': (TRAIN + ['--top-model', 'huge'],
        "top_model: unknown value 'huge'; allowed: mlp, none"),
    'top hidden negative': (TRAIN + ['--top-hidden', '-1'],
        'top_hidden: must be a tuple of positive integers, got (-1,)'),
    'optimizer unknown': (TRAIN + ['--optimizer', 'lbfgs'],
        "optimizer: unknown value 'lbfgs'; allowed: adam, sgd"),
    'lr zero': (TRAIN + ['--lr', '0'],
        'learning_rate: must be a finite number > 0, got 0.0'),
    'lr negative': (TRAIN + ['--lr', '-0.1'],
        'learning_rate: must be a finite number > 0, got -0.1'),
    'lr word': (TRAIN + ['--lr', 'fast'],
        "--lr/--learning-rate: invalid float value: 'fast'"),
    'momentum negative': (TRAIN + ['--momentum', '-0.5'],
        'momentum: must be a finite number in [0, 1), got -0.5'),
    'momentum nan': (TRAIN + ['--momentum', 'nan'],
        'momentum: must be a finite number in [0, 1), got nan'),
    'weight decay negative': (TRAIN + ['--weight-decay', '-1'],
        'weight_decay: must be a finite number ≥ 0, got -1.0'),
    'lr decay epochs negative': (TRAIN + ['--lr-decay-epochs', '-3'],
        'lr_decay_epochs: must be a tuple of increasing positive epoch numbers,'),
    'lr decay zero': (TRAIN + ['--lr-decay', '0'],
        'lr_decay: must be a finite number in (0, 1], got 0.0'),
    'lr decay above one': (TRAIN + ['--lr-decay', '2'],
        'lr_decay: must be a finite number in (0, 1], got 2.0'),
    'batch size zero': (TRAIN + ['--batch-size', '0'],
        'batch_size: must be a positive integer, got 0'),
    'batch size fraction': (TRAIN + ['--batch-size', '2.5'],
        "--batch-size: invalid int value: '2.5'"),
    'eval batch zero': (TRAIN + ['--eval-batch-size', '0'],
        'eval_batch_size: must be a positive integer, got 0'),
    'epochs negative': (TRAIN + ['--epochs', '-1'],
        'epochs: must be a positive integer, got -1'),
    'epochs word': (TRAIN + ['--epochs', 'ten'],
        "--epochs: invalid int value: 'ten'"),
    'seed strategy unknown': (TRAIN + ['--seed-strategy', 'pmap'],
        "seeds: unknown value 'pmap'; allowed: auto, sequential, vmap"),
    'grid strategy unknown': (TRAIN + ['--grid-strategy', 'x'],
        "grid: unknown value 'x'; allowed: auto, sequential, vmap"),
    'parallel unknown': (TRAIN + ['--parallel', 'fsdp'],
        "parallel: unknown value 'fsdp'; allowed: none, pmap, shard_map"),
    'conv gradients unknown': (TRAIN + ['--conv-gradients', 'x'],
        "conv_gradients: unknown value 'x'; allowed: auto, fast, xla"),
    'num processes zero': (TRAIN + ['--num-processes', '0'],
        'coordinator: a multi-process run needs --coordinator, --num-processes '),
    'process id out of range': (TRAIN + ['--coordinator', 'h:1', '--num-processes', '2',
                                         '--process-id', '5'],
        'process_id: must be an integer in 0..1 (num_processes 2), got 5'),
    'data dir a file': (TRAIN + ['--data-dir', 'FILE'],
        'data-dir: FILE exists and is not a folder'),
    'data option unknown': (TRAIN + ['--data-option', 'colour=red'],
        "dataset option for digits: unknown value 'colour'; allowed: source"),
    'data option twice': (TRAIN + ['--data-option', 'source=a', '--data-option', 'source=b'],
        "data-option: 'source' is given twice"),
    'source missing file': (TRAIN + ['--data-option', 'source=TMP/nope.csv'],
        'source: digits: file TMP/nope.csv not found'),
    'source empty file': (TRAIN + ['--data-option', 'source=TMP/empty.csv'],
        'source: digits: file TMP/empty.csv is empty'),
    'plugin missing': (TRAIN + ['--plugin', 'TMP/nope.py'],
        'plugin: TMP/nope.py: no such file'),
    'plugin not python': (TRAIN + ['--plugin', 'FILE'],
        'plugin: FILE: a plugin file is a Python file (*.py)'),
    'name empty': (TRAIN + ['--name', ''],
        "name: must be one folder name inside --runs-dir, got ''"),
    'name with slash': (TRAIN + ['--name', 'a/b'],
        "name: must be one folder name inside --runs-dir, got 'a/b'"),
    'checkpoint under a file': (TRAIN + ['--checkpoint-dir', 'FILE/x'],
        'checkpoint-dir: FILE/x cannot be made: FILE is not a folder'),
    'ladsg rho above one': (TRAIN + ['--defense', 'ladsg', '--defense.rho', '1.5'],
        'defense.ladsg.rho: must be in [-1, 1], got 1.5'),
    'ladsg k zero': (TRAIN + ['--defense', 'ladsg', '--defense.k', '0'],
        'defense.ladsg.k: must be an integer of at least 2, got 0'),
    'ladsg stages unknown': (TRAIN + ['--defense', 'ladsg', '--defense.stages', 'xx'],
        "defense.ladsg.stages: unknown value 'xx'; allowed: la, nd, sg"),
    'laplace scale negative': (TRAIN + ['--defense', 'laplace', '--defense.scale', '-1'],
        'defense.laplace.scale: must be non-negative, got -1.0'),
    'gaussian dp clip zero': (TRAIN + ['--defense', 'gaussian_dp', '--defense.clip', '0'],
        'defense.gaussian_dp.clip: must be positive, got 0.0'),
    'compression keep zero': (TRAIN + ['--defense', 'compression', '--defense.keep', '0'],
        'defense.compression.keep: must be in (0, 1], got 0.0'),
    'compression keep above one': (TRAIN + ['--defense', 'compression', '--defense.keep', '2'],
        'defense.compression.keep: must be in (0, 1], got 2.0'),
    'discrete bins one': (TRAIN + ['--defense', 'discrete_sgd', '--defense.bins', '1'],
        'defense.discrete_sgd.bins: must be an integer of at least 2, got 1'),
    'discrete bins fraction': (TRAIN + ['--defense', 'discrete_sgd', '--defense.bins', '2.5'],
        "defense.discrete_sgd.bins: expected an integer, got '2.5'"),
    'marvell on ten classes': (TRAIN + ['--defense', 'marvell'],
        'defense.marvell: Marvell protects binary labels; the data set has 10 c'),
    'label dp epsilon negative': (TRAIN + ['--defense', 'label_dp', '--defense.epsilon', '-1'],
        'defense.label_dp.epsilon: must be non-negative, got -1.0'),
    'dcor weight nan': (TRAIN + ['--defense', 'dcor', '--defense.weight', 'nan'],
        'defense.dcor.weight: must be non-negative, got nan'),
    'kdk epsilon above one': (TRAIN + ['--defense', 'kdk', '--defense.epsilon', '1.5'],
        'defense.kdk.epsilon: must be in [0, (k-1)/k); got 1.5'),
    'ppdl upload zero': (TRAIN + ['--defense', 'ppdl', '--defense.upload', '0'],
        'defense.ppdl.upload: must be in (0, 1], got 0.0'),
    'max norm negative': (TRAIN + ['--defense', 'max_norm', '--defense.scale', '-2'],
        'defense.max_norm.scale: must be non-negative, got -2.0'),
    'cae lam negative': (TRAIN + ['--defense', 'cae', '--defense.lam', '-1'],
        'defense.cae.lam: must be non-negative, got -1.0'),
    'defense option for none': (TRAIN + ['--defense.rho', '0.3'],
        "defense.none option: unknown value 'rho'; allowed:"),
    'known labels negative': (ATTACK + ['--attack', 'passive_mc', '--known-labels', '-5'],
        'known_labels: must be a positive integer, got -5'),
    'known labels too many': (ATTACK + ['--attack', 'passive_mc', '--known-labels', '100000'],
        'known_labels: class 0 has 142 training samples, fewer than the 10000 k'),
    'scoring epochs zero': (ATTACK + ['--attack', 'norm_scoring', '--scoring-epochs', '0'],
        'scoring_epochs: must be a positive integer, got 0'),
    'binary attack on digits': (ATTACK + ['--attack', 'norm_scoring'],
        'attack: norm_scoring scores messages for a binary task; the data set h'),
    'inversion steps zero': (ATTACK + ['--attack', 'inversion', '--inversion-steps', '0'],
        'inversion_steps: must be a positive integer, got 0'),
    'inversion lr negative': (ATTACK + ['--attack', 'inversion', '--inversion-learning-rate', '-1'],
        'inversion_learning_rate: must be a finite number > 0, got -1.0'),
    'malicious gamma nan': (ATTACK + ['--attack', 'active_mc', '--malicious-gamma', 'nan'],
        'malicious_gamma: must be a finite number ≥ 0, got nan'),
    'mc steps zero': (ATTACK + ['--attack', 'passive_mc', '--mc-steps', '0'],
        'mixmatch.steps: must be a positive integer, got 0'),
    'mc temperature zero': (ATTACK + ['--attack', 'passive_mc', '--mc-temperature', '0'],
        'mixmatch.temperature: must be positive, got 0.0'),
    'mc alpha negative': (ATTACK + ['--attack', 'passive_mc', '--mc-alpha', '-1'],
        'mixmatch.alpha: must be positive, got -1.0'),
    'mc ema above one': (ATTACK + ['--attack', 'passive_mc', '--mc-ema-decay', '1.5'],
        'mixmatch.ema_decay: must be in [0, 1), got 1.5'),
    'mc batch zero': (ATTACK + ['--attack', 'passive_mc', '--mc-batch-size', '0'],
        'mixmatch.batch_size: must be a positive integer, got 0'),
    'attack missing': (ATTACK,
        'arguments: the following arguments are required: --attack'),
    'attack twice hybrid': (ATTACK + ['--attack', 'hybrid', 'hybrid'],
        'attack: hybrid runs alone (it is every attack on the malicious run)'),
    'sweep no grid': (SWEEP,
        'arguments: the following arguments are required: --grid'),
    'sweep empty value': (SWEEP + ['--grid', 'rho=0.1,'],
        "grid: expected FIELD=V1,V2,... with no empty value, got 'rho=0.1,'"),
    'sweep field twice': (SWEEP + ['--grid', 'rho=0.1', '--grid', 'rho=0.2'],
        "grid: field 'rho' is given twice"),
    'sweep lr zero': (SWEEP + ['--grid', 'learning_rate=0,0.1'],
        "grid.learning_rate: must be a positive number, got '0'"),
    'sweep rho out of range': (SWEEP + ['--grid', 'rho=0.5,7'],
        'defense.ladsg.rho: must be in [-1, 1], got 7.0'),
    'sweep static bad': (SWEEP + ['--grid', 'k=0,2'],
        'defense.ladsg.k: must be an integer of at least 2, got 0'),
    'sweep unknown defense': (['sweep', '--dataset', 'digits', '--defense', 'nope', '--grid',
                               'rho=0.1', '--runs-dir', 'RUNS'],
        "defense: unknown value 'nope'; allowed: cae, compression, dcae, dcor, "),
    'demo unknown defense': (['demo', '--defense', 'nope', '--runs-dir', 'RUNS'],
        "table.settings['nope']: defense: unknown value 'nope'; allowed: cae, c"),
    'demo seeds zero': (['demo', '--seeds', '0', '--runs-dir', 'RUNS'],
        'seeds: must be a positive integer, got 0'),
    'list unknown kind': (['list', 'models'],
        "kind: invalid choice: 'models' (choose from 'defenses', 'attacks', 'da"),
    'data prepare unknown': (['data', 'prepare', 'mnist2'],
        "dataset: unknown value 'mnist2'; allowed: bhi, breast_cancer, cifar10,"),
    'data prepare synthetic': (['data', 'prepare', 'synthetic'],
        'dataset: synthetic is made in memory; nothing to prepare'),
    'data prepare option unknown': (['data', 'prepare', 'digits', '--option', 'colour=1'],
        "dataset option for digits: unknown value 'colour'; allowed: source"),
    'no command': ([],
        'arguments: the following arguments are required: command'),
    'unknown command': (['fly'],
        "command: invalid choice: 'fly' (choose from 'train', 'attack', 'sweep'"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_hostile_command_line_is_one_line_and_exit_2(case, tmp_path, monkeypatch, capsys,
                                                       digits):
    argv, message = CASES[case]
    plain = tmp_path / "plain_file"
    plain.write_text("x")
    (tmp_path / "empty.csv").write_text("")
    runs = tmp_path / "runs"
    fill = lambda s: (s.replace("FILE", str(plain)).replace("RUNS", str(runs))
                      .replace("TMP/", f"{tmp_path}/"))
    argv = [fill(a) for a in argv]
    if "--runs-dir" not in argv and argv[:1] in (["train"], ["attack"], ["sweep"], ["demo"]):
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


def prepared_digits(data_dir) -> str:
    """A prepared copy of digits under `data_dir` (read from scikit-learn's file: no
    download); its version folder."""
    from ladsg_jax.data import prepare

    return prepare("digits", data_dir=str(data_dir))["path"]


BREAKAGES = {
    "info garbage": ("dataset_info.json", lambda p: p.write_text("garbage")),
    "train records cut in half": ("ladsg_digits-train.array_record-00000-of-00001",
                                  lambda p: p.write_bytes(p.read_bytes()[:p.stat().st_size // 2])),
    "test records garbage": ("ladsg_digits-test.array_record-00000-of-00001",
                             lambda p: p.write_text("garbage")),
}


@pytest.mark.parametrize("case", sorted(BREAKAGES))
def test_broken_prepared_data_names_the_file_and_the_command_that_rebuilds_it(case, tmp_path,
                                                                             capsys):
    import shlex
    import subprocess

    data_dir = tmp_path / "data"
    folder = prepared_digits(data_dir)
    name, breaking = BREAKAGES[case]
    breaking(tmp_path / folder / name)
    capsys.readouterr()                                  # what preparing printed
    runs = tmp_path / "runs"
    assert main(TRAIN + ["--data-dir", str(data_dir), "--runs-dir", str(runs)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and not runs.exists(), err
    assert err[0].startswith(f"ladsg-jax: error: dataset digits: the prepared copy cannot be "
                             f"read ({os.path.join(folder, name)}: ")
    rebuild = err[0].split("rebuild it: ")[1]
    assert rebuild == f"rm -r {folder} && ladsg-jax data prepare digits --data-dir {data_dir}"
    # the commands it prints rebuild the copy
    subprocess.run(shlex.split(rebuild.split(" && ")[0]), check=True)
    assert main(shlex.split(rebuild.split(" && ")[1])[1:]) == 0
    assert main(TRAIN + ["--data-dir", str(data_dir), "--runs-dir", str(runs)]) == 0


ARRAYS = dict(train_x=np.ones((8, 4), np.float32), train_y=np.arange(8) % 2,
              test_x=np.ones((4, 4), np.float32), test_y=np.arange(4) % 2, num_classes=2)
API_CASES = {
    "labels as a column": (dict(train_y=(np.arange(8) % 2)[:, None]),
                           r"train.labels: must hold one class index per sample, shape \(N,\), "
                           r"got shape \(8, 1\) \(use y.reshape\(-1\)\)"),
    "test labels as a column": (dict(test_y=(np.arange(4) % 2)[:, None]), "test.labels: must"),
    "string features": (dict(train_x=np.full((8, 4), "a")),
                        "train.features: must be numbers, got dtype <U1"),
    "object features": (dict(test_x=np.full((4, 4), None)), "test.features: must be numbers"),
    "float labels": (dict(train_y=np.arange(8) % 2 + 0.5), "train.labels: labels must be int"),
    "label out of range": (dict(train_y=np.arange(8)), "train.labels: label 2 out of range"),
    "nan feature": (dict(train_x=np.full((8, 4), np.nan)), "train.features: NaN or infinite"),
    "rows and labels differ": (dict(train_y=np.arange(7) % 2), "train: 8 feature rows but 7"),
    "classes a fraction": (dict(num_classes=2.5), "num_classes: must be an integer"),
    "classes a bool": (dict(num_classes=True), "num_classes: must be an integer"),
    "feature widths differ": (dict(test_x=np.ones((4, 5), np.float32)), "test.features: test "),
    "kind unknown": (dict(kind="audio"), "kind: unknown value 'audio'"),
}


@pytest.mark.parametrize("case", sorted(API_CASES))
def test_from_arrays_names_bad_arrays(case):
    from ladsg_jax.data import from_arrays

    changes, message = API_CASES[case]
    with pytest.raises(ConfigError, match=message):
        from_arrays(**{**ARRAYS, **changes})


def test_numpy_scalars_are_accepted_where_numbers_are():
    from ladsg_jax.attacks.suite import AttackSettings
    from ladsg_jax.data import from_arrays

    assert from_arrays(**{**ARRAYS, "num_classes": np.int64(2)}).num_classes == 2
    assert TrainConfig(learning_rate=np.float32(0.5), epochs=np.int64(3)).epochs == 3
    settings = AttackSettings(known_labels=np.int64(12), inversion_learning_rate=np.float32(.1))
    assert settings.known_labels == 12 and type(settings.known_labels) is int
    for field, value, message in (("scoring_epochs", 0, "must be a positive integer"),
                                  ("inversion_steps", 2.5, "must be a positive integer"),
                                  ("inversion_learning_rate", -1.0, "must be a finite number"),
                                  ("malicious_gamma", float("nan"), "must be a finite number")):
        with pytest.raises(ConfigError, match=f"^{field}: {message}"):
            AttackSettings(**{field: value})


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
