"""`ladsg-jax`: train VFL runs over seeds, attack them, sweep a defense's knobs, run the demo.

    ladsg-jax train --dataset digits --parties 2 --epochs 30 --seeds 3
    ladsg-jax attack --attack passive_mc --dataset digits --seeds 5
    ladsg-jax attack --plugin my_defense.py --defense mine --attack direct_argmin
    ladsg-jax demo
    ladsg-jax describe ladsg

The training flags are `TrainConfig`'s fields (`ladsg_jax.app.flags`), the attack flags
`AttackSettings`' and `MixMatchConfig`'s (`--mc-*`); `--plugin PATH_OR_MODULE` (every
subcommand, repeatable; also `$LADSG_JAX_PLUGINS` and installed entry points) registers a
user's defenses and attacks first (`ladsg_jax.app.plugins`). Bad input ends with one line
`ladsg-jax: error: FIELD: ...` on stderr and exit status 2.

Importing this module and building its parser loads neither JAX nor scikit-learn: `--help` and
argument errors answer at once; each command (`cli_commands.py`) imports what it runs. The
shared flags and what they build are `cli_args.py`'s.
"""
from __future__ import annotations

import argparse
import os
import sys

from ladsg_jax import compile_cache
from ladsg_jax import data as datasets
from ladsg_jax.app.cli_args import add_attack_flags, add_training_flags
from ladsg_jax.app.cli_config import COMMANDS as CONFIG_COMMANDS, config_argument, expand
from ladsg_jax.app.cli_commands import (command_attack, command_cache, command_data, command_demo,
                                    command_describe, command_list, command_sweep,
                                    command_table, command_train)
from ladsg_jax.app.cli_session import COMPUTING, compiling
from ladsg_jax.distributed import add_distributed_arguments
from ladsg_jax.errors import ArgumentParser, ConfigError
from ladsg_jax.app.flags import check_args, parse_defense_options
from ladsg_jax.app.plugins import load_plugins, plugin_parser


def build_parser() -> argparse.ArgumentParser:
    common = plugin_parser()
    compile_cache.add_argument(common)
    parser = ArgumentParser(prog="ladsg-jax", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    def command(name: str, handler, help_text: str, training: bool = True,
                attacks: bool = False, **defaults):
        p = sub.add_parser(name, help=help_text, parents=[common])
        if training:
            add_training_flags(p)
            p.add_argument("--name", help="run name (default: the command's, with the time)")
        if attacks:
            add_attack_flags(p)
        if name in CONFIG_COMMANDS:
            config_argument(p)
        p.set_defaults(handler=handler, **defaults)
        return p

    train = command("train", command_train, "train a VFL model over seeds, write results JSON")
    add_distributed_arguments(train)
    train.add_argument("--checkpoint-dir",
                       help="checkpoint every epoch here (orbax); a rerun resumes from it")
    attack = command("attack", command_attack, "train, attack, and score the attacks over "
                     "seeds", attacks=True, seeds=5)
    attack.add_argument("--attack", nargs="+", required=True,
                        help="attack names (`ladsg-jax list attacks`), or hybrid alone")
    sweep = command("sweep", command_sweep, "a grid of a defense's knobs (and the learning "
                    "rate) × seeds as one compiled program per static choice", attacks=True)
    sweep.add_argument("--grid", action="append", required=True, metavar="FIELD=V1,V2,...",
                       help="values of one field of the defense (or learning_rate); "
                            "repeatable: the grid is their product")
    sweep.add_argument("--attack", nargs="+", help="attacks scored at every point and seed, "
                       "each in its own setting (default: the demo's attacks of the setting "
                       "the sweep trains; none: no attack)")
    sweep.add_argument("--plot", metavar="FILE.png", help="draw MP against the strongest "
                                                          "attack, one point per grid point")
    command("demo", command_demo, "the main job on the built-in data, as a table "
            "(none and ladsg, or none and --defense)", attacks=True, seeds=None,
            defense=None)
    listing = command("list", command_list, "the registered defenses, attacks or data sets",
                      training=False)
    listing.add_argument("kind", choices=("defenses", "attacks", "datasets"))
    describe = command("describe", command_describe, "a defense's (or chain's A+B), attack's "
                       "or data set's options: type, default, allowed values, traced, meaning",
                       training=False)
    describe.add_argument("name", help="a name from `ladsg-jax list ...`")
    describe.add_argument("--kind", choices=("defense", "attack", "dataset"),
                          help="which registry, where a name is in more than one")
    data = command("data", command_data, "prepare the data sets from their original files, "
                   "or list what is prepared", training=False)
    data_sub = data.add_subparsers(dest="action", required=True)
    prepare = data_sub.add_parser("prepare", help="read a data set's original file once into "
                                                  "array_record files")
    prepare.add_argument("name", help=f"one of {', '.join(datasets.DATASETS)}")
    prepare.add_argument("--manual-dir", help="folder holding the original file "
                                              "(default DATA_DIR/downloads/manual)")
    prepare.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                         help="data set option, e.g. max_rows=20000 (criteo)")
    data_list = data_sub.add_parser("list", help="every data set: prepared where, or what it "
                                                 "needs")
    for sub_parser in (prepare, data_list):
        sub_parser.add_argument("--data-dir", help="where prepared data sets live")
    table = command("table", command_table, "gather result files (train, attack, sweep) "
                    "into one table ranked by the strongest attack; --plot draws it",
                    training=False)
    table.add_argument("paths", nargs="+", metavar="RUN_OR_FOLDER",
                       help="result files, or folders searched for result.json")
    table.add_argument("--markdown", metavar="FILE.md", help="also write the Markdown here")
    table.add_argument("--csv", metavar="FILE.csv", help="also write the table as CSV here")
    table.add_argument("--plot", metavar="FILE.png", help="draw MP against the strongest "
                                                          "attack: a line per sweep")
    cache = command("cache", command_cache, "the persistent compilation cache: where it is "
                    "and its size (info), or empty it (clear)", training=False)
    cache.add_argument("action", choices=("info", "clear"))
    return parser


def command_parsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """{command: its subparser}."""
    return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = None
    try:
        parser = build_parser()
        expanded, args_config = expand(argv, command_parsers(parser))
        load_plugins(plugin_parser().parse_known_args(expanded)[0].plugin)  # before the flags
        args, extra = parser.parse_known_args(expanded)
        args.defense_options = parse_defense_options(extra)
        args.argv, args.config_file = argv, args_config
        check_args(args)
        if args.command not in COMPUTING:
            return args.handler(args)
        with compiling(args):
            return args.handler(args)
    except ConfigError as err:
        print(f"ladsg-jax: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        resume = getattr(args, "checkpoint_dir", None)
        print("ladsg-jax: interrupted; no result file was written"
              + (f"; the same command resumes from {resume}" if resume else ""),
              file=sys.stderr)
        return 130


def run() -> None:
    """The console script: `main`'s exit status; after Ctrl-C (130) the process ends at once,
    without the interpreter's teardown, which can crash while XLA's threads still run."""
    code = main()
    if code == 130:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(130)
    sys.exit(code)


if __name__ == "__main__":
    run()
