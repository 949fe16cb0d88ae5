"""`--config FILE` for train, attack and sweep: the file's options become flags, the command
line's own flags win, the file is stored in the result, and each bad file is one line, exit 2."""
from __future__ import annotations

import json

import pytest

from ladsg_jax.app import cli
from ladsg_jax.app.cli import build_parser, command_parsers
from ladsg_jax.app.cli_config import expand


def parsed(argv):
    expanded, record = expand(argv, command_parsers(build_parser()))
    args, extra = build_parser().parse_known_args(expanded)
    return args, extra, record


def write(tmp_path, content, name="run.json"):
    path = tmp_path / name
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return str(path)


def test_file_options_become_flags_and_flags_win(tmp_path):
    path = write(tmp_path, {"dataset": "breast_cancer", "seeds": 4, "learning_rate": 0.02,
                            "attacks": ["direct_argmin", "passive_mc"], "mc_steps": 50,
                            "defense": {"name": "ladsg", "rho": 0.3, "stages": ["la", "sg"]},
                            "no_progress": True, "data_option": {"source": "x.csv"}})
    args, extra, record = parsed(["attack", "--config", path, "--seeds", "2"])
    assert (args.dataset, args.seeds, args.config_learning_rate) == ("breast_cancer", 2, 0.02)
    assert args.attack == ["direct_argmin", "passive_mc"] and args.mc_steps == 50
    assert args.no_progress and args.data_option == ["source=x.csv"]
    assert args.defense == "ladsg"
    assert extra == ["--defense.rho", "0.3", "--defense.stages", "la,sg"]
    assert record["content"]["seeds"] == 4 and record["path"].endswith("run.json")
    # the command line's --defense drops the file's defense and its options
    args, extra, _ = parsed(["attack", "--config", path, "--defense", "laplace"])
    assert args.defense == "laplace" and extra == []


def test_sweep_grid_from_the_file_is_replaced_by_the_command_lines(tmp_path):
    path = write(tmp_path, {"defense": "ladsg", "grid": {"rho": [0.1, 0.5], "mix": [1.0]}})
    args, _, _ = parsed(["sweep", f"--config={path}"])
    assert args.grid == ["rho=0.1,0.5", "mix=1.0"]
    args, _, _ = parsed(["sweep", "--config", path, "--grid", "rho=0.9"])
    assert args.grid == ["rho=0.9"]


def test_train_records_the_file_in_its_result(tmp_path):
    path = write(tmp_path, {"dataset": "synthetic", "seeds": 1, "epochs": 2,
                            "data_option": {"num_train": 64, "num_test": 32},
                            "defense": {"name": "laplace", "scale": 0.001}, "no_progress": True})
    runs = tmp_path / "runs"
    assert cli.main(["train", "--config", path, "--runs-dir", str(runs), "--name", "r",
                     "--epochs", "1"]) == 0
    result = json.loads((runs / "r" / "result.json").read_text())
    assert result["config"]["epochs"] == 1                       # the flag won
    assert result["config"]["defense"] == {"name": "laplace", "scale": 0.001, "rescale": "none"}
    assert result["provenance"]["config_file"]["content"] == json.loads(open(path).read())


# a value of the right type is checked where the flag's is, and named as the flag's field
@pytest.mark.parametrize("content, message", [
    ("{\"seeds\": 2,", "run.json: not valid JSON at line 1 column 13"),
    ("[1, 2]", "run.json: expected a JSON object of options, got list"),
    ({"sedes": 2}, "run.json: key: unknown value 'sedes'; allowed: "),
    ({"seeds": "two"}, "run.json: seeds: expected an integer, got 'two'"),
    ({"learning_rate": True}, "run.json: learning_rate: expected a number, got True"),
    ({"no_progress": "yes"}, "run.json: no_progress: expected true or false, got 'yes'"),
    ({"top_model": "deep"}, "top_model: unknown value 'deep'; allowed: mlp, none"),
    ({"defense": {"rho": 0.3}}, "run.json: defense: expected a defense name or an object"),
    ({"defense": {"name": "ladsg", "rho": {"a": 1}}}, "run.json: defense.rho: expected a"),
    ({"defense": {"name": "ladsg", "rho": 7}}, "defense.ladsg.rho: must be in [-1, 1]"),
])
def test_a_bad_file_is_one_line_and_exit_2(tmp_path, capsys, content, message):
    path = write(tmp_path, content)
    runs = tmp_path / "runs"
    assert cli.main(["train", "--config", path, "--runs-dir", str(runs)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not runs.exists()                                      # nothing half-written


def test_config_elsewhere_or_missing_is_an_error(tmp_path, capsys):
    assert cli.main(["list", "defenses", "--config", "x.json"]) == 2
    assert "--config is an option of train, attack, sweep" in capsys.readouterr().err
    assert cli.main(["train", "--config", str(tmp_path / "absent.json")]) == 2
    assert "config: cannot read" in capsys.readouterr().err
