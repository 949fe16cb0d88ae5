"""Command-line flags come from the config dataclasses' fields and docstrings."""
import dataclasses

import pytest

from ladsg_jax.attacks.completion import MixMatchConfig
from ladsg_jax.attacks.suite import AttackSettings
from ladsg_jax.app.cli import build_parser, main
from ladsg_jax.app.cli_args import CONFIG_SKIP
from ladsg_jax.config import TrainConfig
from ladsg_jax.errors import ConfigError
from ladsg_jax.app.flags import field_docs, parse_defense_options


@pytest.mark.parametrize("cls, skip", [(TrainConfig, CONFIG_SKIP), (AttackSettings, ("mixmatch",)),
                                       (MixMatchConfig, ())])
def test_every_field_has_a_documented_flag(cls, skip):
    docs = field_docs(cls)
    fields = [f.name for f in dataclasses.fields(cls) if f.name not in skip]
    assert [f for f in fields if not docs.get(f)] == []
    attack = next(a for a in build_parser()._subparsers._group_actions[0].choices.items()
                  if a[0] == "attack")[1]
    dests = {action.dest: action for action in attack._actions}
    prefix = {TrainConfig: "config_", AttackSettings: "attack_", MixMatchConfig: "mc_"}[cls]
    for name in fields:
        action = dests[prefix + name]
        assert action.default is None and docs[name].split()[0] in action.help


def test_a_flag_not_given_leaves_the_preset_and_one_given_sets_the_field(tmp_path):
    from ladsg_jax.app.cli_args import config_from_args

    parser = build_parser()
    args = parser.parse_args(["train", "--dataset", "digits"])
    args.defense_options = {}
    assert config_from_args(args).learning_rate == 0.05                  # digits' preset
    args = parser.parse_args(["train", "--dataset", "digits", "--lr", "0.2", "--epochs", "4"])
    args.defense_options = {}
    config = config_from_args(args)
    assert (config.learning_rate, config.epochs) == (0.2, 4)


def test_defense_options_are_name_value_pairs():
    assert parse_defense_options(["--defense.scale", "0.1", "--defense.bins=3"]) == {
        "scale": "0.1", "bins": "3"}
    with pytest.raises(ConfigError, match="defense.scale: needs a value"):
        parse_defense_options(["--defense.scale"])
    with pytest.raises(ConfigError, match="unrecognized '--bogus'"):
        parse_defense_options(["--bogus"])


def test_zero_known_labels_is_refused(capsys):
    assert main(["attack", "--attack", "passive_mc", "--known-labels", "0", "--epochs", "1",
                 "--seeds", "1", "--no-progress"]) == 2
    assert "known_labels" in capsys.readouterr().err
