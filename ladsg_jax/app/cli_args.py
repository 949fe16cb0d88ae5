"""The command line's shared flags and what they make: the training flags (`TrainConfig`'s
fields, the data set, parties and defense), the attacker's (`AttackSettings`', `MixMatchConfig`'s
as `--mc-*`), and the config, data and settings built from them."""
from __future__ import annotations

import argparse

from ladsg_jax import data as datasets
from ladsg_jax.attacks.settings import AttackSettings, MixMatchConfig
from ladsg_jax.config import TrainConfig
from ladsg_jax.data.options import parse_data_options
from ladsg_jax.errors import unknown
from ladsg_jax.app.flags import add_fields, given
from ladsg_jax.presets import known_labels_for, preset_config

# flags of their own, or internal
CONFIG_SKIP = ("num_parties", "defense", "record_wire", "record_embeddings")
CONFIG_DEST, SETTINGS_DEST, MIXMATCH_DEST = "config_", "attack_", "mc_"


def add_training_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", default="digits",
                        help=f"one of {', '.join(datasets.DATASETS)} (default digits)")
    parser.add_argument("--parties", type=int, default=2, help="number of parties K (default 2)")
    parser.add_argument("--shares", type=float, nargs="+",
                        help="each party's share of the columns (default equal)")
    parser.add_argument("--seeds", type=int, default=3, help="number of seeds (default 3)")
    parser.add_argument("--seed", type=int, default=0, help="base PRNG seed (default 0)")
    parser.add_argument("--defense", default="none",
                        help="a registered defense (`ladsg-jax list defenses`; default none), "
                             "or A+B to chain them; its options as --defense.NAME VALUE "
                             "(a chain's, LADSG's or DCAE's: --defense.MEMBER.NAME VALUE)")
    parser.add_argument("--data-dir", help="where prepared data sets live")
    parser.add_argument("--data-option", action="append", default=[], metavar="KEY=VALUE",
                        help="data set option, e.g. source=FILE or num_classes=4 (synthetic)")
    parser.add_argument("--runs-dir", default="runs", help="results go to RUNS_DIR/NAME")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_fields(parser.add_argument_group("training (TrainConfig)"), TrainConfig,
               skip=CONFIG_SKIP, dest_prefix=CONFIG_DEST)


def add_attack_flags(parser: argparse.ArgumentParser) -> None:
    add_fields(parser.add_argument_group("attacker (AttackSettings)"), AttackSettings,
               skip=("mixmatch",), dest_prefix=SETTINGS_DEST)
    add_fields(parser.add_argument_group("model completion (MixMatchConfig)"), MixMatchConfig,
               prefix="mc-", dest_prefix=MIXMATCH_DEST)


def config_overrides(args: argparse.Namespace) -> dict:
    """The config fields set by flags, the defense and the party count."""
    from ladsg_jax.defenses import make_defense

    return {**given(args, TrainConfig, CONFIG_DEST), "num_parties": args.parties,
            "defense": make_defense(args.defense, **getattr(args, "defense_options", {}))}


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    return preset_config(args.dataset, **config_overrides(args))


def load_data(args: argparse.Namespace, dataset: str | None = None):
    name = dataset or args.dataset
    if name not in datasets.DATASETS:
        raise unknown("dataset", name, datasets.DATASETS)
    return datasets.load(name, num_parties=args.parties, shares=args.shares,
                         data_dir=args.data_dir, **parse_data_options(args.data_option))


def attack_settings(args: argparse.Namespace, data) -> AttackSettings:
    fields = given(args, AttackSettings, SETTINGS_DEST)
    fields.setdefault("known_labels", known_labels_for(data.name, data.num_classes))
    return AttackSettings(mixmatch=MixMatchConfig(**given(args, MixMatchConfig, MIXMATCH_DEST)),
                          **fields)


def progress(args: argparse.Namespace, label: str):
    return False if args.no_progress else label
