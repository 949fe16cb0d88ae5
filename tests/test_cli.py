"""The command line: results written whole, errors as one named line with a non-zero exit."""
import json
import os

import numpy as np
import pytest

from ladsg_jax.app.cli import main
from ladsg_jax.errors import ConfigError
from ladsg_jax.results import RECORD_SCHEMA, read_records, write_json_atomic, write_records


def assert_provenance(record: dict, seed: int) -> None:
    """A result's `provenance`: the package, its checkout's commit, the libraries, the devices,
    the command line, the base seed and the start time."""
    import jax

    import ladsg_jax

    assert record["package"]["name"] == "ladsg-jax" and record["package"]["version"]
    assert record["package"]["path"] == os.path.dirname(os.path.abspath(ladsg_jax.__file__))
    git = record["package"]["git"]
    if git is not None:                       # run from a checkout
        assert len(git["commit"]) == 40 and isinstance(git["dirty"], bool)
    assert record["versions"]["jax"] == jax.__version__ and record["versions"]["flax"]
    assert record["backend"] == jax.default_backend()
    assert record["devices"]["count"] == jax.device_count() and record["devices"]["kind"]
    assert record["process_count"] == 1 and record["seed"] == seed
    assert record["command"] and record["started"][:2] == "20"


def test_train_writes_a_complete_result_file(tmp_path, capsys):
    code = main(["train", "--dataset", "synthetic", "--data-option", "num_classes=3",
                 "--epochs", "3", "--seeds", "2", "--runs-dir", str(tmp_path), "--name", "t",
                 "--no-progress"])
    assert code == 0
    record = json.loads((tmp_path / "t" / "result.json").read_text())
    assert record["dataset"] == "synthetic" and record["num_seeds"] == 2
    assert len(record["per_seed"]["final_test_accuracy"]) == 2
    assert len(record["per_seed"]["test_accuracy"][0]) == 3
    assert record["config"]["epochs"] == 3 and record["config"]["defense"]["name"] == "none"
    assert record["schema"] == RECORD_SCHEMA
    assert record["timing"]["programs"] >= 1
    assert_provenance(record["provenance"], seed=0)
    assert 0.0 <= record["test_accuracy"]["mean"] <= 1.0
    first, last = (record["message_norm"][k] for k in ("first_epoch", "last_epoch"))
    assert first["n"] == last["n"] == 2 and 0 < last["mean"] and 0 < first["mean"]
    out = capsys.readouterr().out
    assert "synthetic: test accuracy" in out and "message norm per sample: " in out
    assert [p for p in os.listdir(tmp_path / "t") if p.startswith(".tmp")] == []


@pytest.mark.slow
def test_demo_prints_the_table(tmp_path, capsys):
    code = main(["demo", "--epochs", "1", "--seeds", "2", "--mc-steps", "20",
                 "--runs-dir", str(tmp_path), "--no-progress"])
    assert code == 0
    out = capsys.readouterr().out
    header = out.splitlines()[0].split()
    assert header[:7] == ["dataset", "defense", "MP", "strongest", "raw", "floor", "direct"]
    assert "active" in header and header[-2:] == ["strongest", "attack"]
    assert [line.split()[1] for line in out.splitlines()[2:6]] == ["none", "ladsg"] * 2
    assert "breast_cancer" in out and "digits" in out and "±" in out
    record = json.loads((tmp_path / "demo" / "result.json").read_text())
    assert [(r["dataset"], r["setting"]) for r in record["records"]] == [
        ("breast_cancer", "none"), ("breast_cancer", "ladsg"), ("digits", "none"),
        ("digits", "ladsg")]
    assert_provenance(record["provenance"], seed=0)
    assert record["timing"]["programs"] >= 1
    digits = record["records"][2]
    assert "norm_scoring" not in digits["attacks"]            # binary only: n/a on digits
    assert digits["attacks"]["direct"]["mean"] > 0.9
    # ranked by the strongest attack that reads the run, the raw floor beside it
    best, floor = digits["strongest"], digits["floor"]
    assert best["mean"] >= digits["attacks"]["direct"]["mean"] - 1e-9
    assert best["from"].split(":")[0] not in ("raw_mc", "raw_classifier")
    assert floor["from"] in ("raw_mc", "raw_classifier")
    assert digits["excess"] == pytest.approx(best["mean"] - floor["mean"])
    digits_none = [line for line in out.splitlines() if line.startswith("digits")][0]
    assert digits_none.split()[-1] == best["from"]
    assert digits["configs"]["none"]["top_model"] == "none"
    assert digits["configs"]["mlp"]["epochs"] == 1
    assert set(digits["main_task"]) == {"top_none", "top_mlp", "malicious"}


def test_attack_writes_scores_and_picks_the_direct_setting(tmp_path, capsys):
    code = main(["attack", "--attack", "direct", "direct_argmin", "--dataset", "digits",
                 "--epochs", "2", "--seeds", "2", "--runs-dir", str(tmp_path), "--name", "a",
                 "--no-progress"])
    assert code == 0
    report = json.loads((tmp_path / "a" / "result.json").read_text())
    assert report["config"]["top_model"] == "none"
    assert report["attacks"]["direct"]["per_seed"] == [1.0, 1.0]
    assert report["attacks"]["direct"]["reading"] == "first/miss"     # Fu et al.'s reading
    assert set(report["attacks"]["direct_argmin"]["readings"]) == {"first", "last", "min",
                                                                   "average"}
    assert_provenance(report["provenance"], seed=0)
    assert report["timing"]["programs"] >= 1
    out = capsys.readouterr().out
    assert "direct_argmin" in out and "read first/miss" in out
    assert set(report["message_norm"]) == {"top_none"}          # the setting it trained
    assert "message norm per sample (top_none): " in out


def test_attacks_of_different_settings_each_run_in_their_own(tmp_path, capsys):
    """`--attack direct_argmin passive_mc` runs the direct attack on the sum-top run and model
    completion on the preset's top model, each number equal to the attack asked for alone."""
    common = ["--dataset", "breast_cancer", "--epochs", "1", "--seeds", "2", "--mc-steps", "20",
              "--runs-dir", str(tmp_path), "--no-progress"]
    assert main(["attack", "--attack", "direct_argmin", "passive_mc", "--name", "both",
                 *common]) == 0
    out = capsys.readouterr().out
    assert main(["attack", "--attack", "passive_mc", "--name", "alone", *common]) == 0
    both = json.loads((tmp_path / "both" / "result.json").read_text())
    alone = json.loads((tmp_path / "alone" / "result.json").read_text())
    assert list(both["attacks"]) == ["direct_argmin", "passive_mc"]
    assert both["attacks"]["direct_argmin"]["setting"] == "top_none"
    assert both["attacks"]["passive_mc"]["setting"] == "top_mlp"
    assert both["attacks"]["passive_mc"]["per_seed"] == alone["attacks"]["passive_mc"]["per_seed"]
    assert both["main_task"] == alone["main_task"]
    assert set(both["main_task_by_setting"]) == {"top_mlp", "top_none"}
    assert both["configs"]["top_none"]["top_model"] == "none"
    assert both["config"]["top_model"] == "mlp"
    assert "(top_none)" in out and "(top_mlp)" in out


@pytest.mark.parametrize("argv, message", [
    (["--attack", "direct", "--top-model", "mlp"],
     "top_model: the direct attack needs top_model 'none'"),
    (["--attack", "mind_reading"], "attack: unknown value 'mind_reading'; allowed: "),
    (["--attack", "norm_scoring"], "norm_scoring scores messages for a binary task"),
    (["--attack", "passive_mc", "--known-labels", "3"],
     "known_labels: 3 known labels for 10 classes"),
    (["--attack", "passive_mc", "--mc-steps", "0"], "mixmatch.steps: must be a positive"),
    (["--attack", "direct", "--direct-epoch", "fifth"],
     "direct_epoch: unknown value 'fifth'; allowed: average, first, last, min"),
    (["--attack", "direct", "--direct-no-negative", "guess"],
     "direct_no_negative: unknown value 'guess'; allowed: argmin, miss"),
    (["--attack", "active_mc", "--malicious-rule", "torch2"],
     "malicious_rule: unknown value 'torch2'; allowed: fu_torch17, paper"),
])
def test_attack_errors_are_one_line_and_exit_2(tmp_path, capsys, argv, message, digits,
                                               breast_cancer):
    # the data-set fixtures prepare the built-in sets first: preparing prints progress to stderr
    code = main(["attack", "--dataset", "digits", "--epochs", "1", "--seeds", "1",
                 "--runs-dir", str(tmp_path), "--no-progress", *argv])
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and len(err.splitlines()) == 1
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("argv, message", [
    (["--dataset", "mnist"], "dataset: unknown value 'mnist'; allowed: bhi, breast_cancer, cifar10"),
    (["--lr", "-0.1"], "learning_rate: must be a finite number > 0, got -0.1"),
    (["--epochs", "0"], "epochs: must be a positive integer, got 0"),
    (["--batch-size", "0"], "batch_size: must be a positive integer, got 0"),
    (["--parties", "20"], "num_parties: 20 parties but only 8 columns"),
    (["--shares", "1", "2", "3"], "shares: 3 shares for 2 parties"),
    (["--optimizer", "lion"], "optimizer: unknown value 'lion'; allowed: adam, sgd"),
    (["--bottom", "vit"], "bottom: unknown value 'vit'"),
    (["--conv-gradients", "cudnn"],
     "conv_gradients: unknown value 'cudnn'; allowed: auto, fast, xla"),
    (["--defense", "magic"],
     "defense: unknown value 'magic'; allowed: cae, compression, dcae, dcor, "),
    (["--defense", "ladsg", "--defense.epsilon", "0.9"], "defense.ladsg.epsilon: must be in"),
    (["--defense", "ladsg", "--defense.rho", "high"], "defense.ladsg.rho: expected a number"),
    (["--defense.mode"], "defense.mode: needs a value"),
    (["--frobnicate"], "arguments: unrecognized '--frobnicate'"),
    (["--seeds", "0"], "seeds: must be a positive integer, got 0"),
    (["--data-option", "source"], "data-option: expected KEY=VALUE"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, argv, message, digits,
                                          breast_cancer):
    code = main(["train", "--runs-dir", str(tmp_path), "--no-progress", *argv])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.startswith("ladsg-jax: error: ") and message in err
    assert len(err.splitlines()) == 1
    assert not any(tmp_path.iterdir())          # nothing written


def test_atomic_write_leaves_the_old_file_when_serialization_fails(tmp_path):
    path = tmp_path / "r.json"
    write_json_atomic(str(path), {"a": 1})
    with pytest.raises(TypeError):
        write_json_atomic(str(path), {"a": object()})
    assert json.loads(path.read_text()) == {"a": 1}
    assert sorted(os.listdir(tmp_path)) == ["r.json"]


def test_a_resumable_sweep_reads_back_what_it_wrote(tmp_path):
    path = str(tmp_path / "sweep.json")
    assert read_records(path) == []
    write_records(path, [{"setting": "la", "mp": np.float32(0.5)}])
    assert json.loads(open(path).read())["schema"] == RECORD_SCHEMA == 2
    assert read_records(path) == [{"setting": "la", "mp": 0.5}]
    old = str(tmp_path / "old.json")                   # 0.1's files carry no schema
    write_json_atomic(old, {"records": [{"setting": "la"}]})
    with pytest.raises(ConfigError, match=f"{old}: records of schema 1; this ladsg_jax "
                                          "reads schema 2"):
        read_records(old)


def test_a_table_will_not_resume_into_a_file_of_another_schema(tmp_path):
    from ladsg_jax.app.table_config import DEMO, run_table

    out = tmp_path / "old.json"
    old = {"records": [{"dataset": "digits", "setting": "none"}]}
    out.write_text(json.dumps(old))
    with pytest.raises(ConfigError, match="records of schema 1"):      # before any training
        run_table(DEMO, str(out))
    assert json.loads(out.read_text()) == old                           # left as it was
