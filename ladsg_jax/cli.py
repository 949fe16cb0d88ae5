"""`ladsg-jax`: train VFL runs over seeds, attack them, sweep a defense's knobs, run the demo.

    ladsg-jax train --dataset digits --parties 2 --epochs 30 --seeds 3
    ladsg-jax attack --attack passive_mc --dataset digits --seeds 5
    ladsg-jax attack --plugin my_defense.py --defense mine --attack direct_argmin
    ladsg-jax demo

The training flags are `TrainConfig`'s fields (`ladsg_jax.flags`), the attack flags
`AttackSettings`' and `MixMatchConfig`'s (`--mc-*`); `--plugin PATH_OR_MODULE` (every
subcommand, repeatable; also `$LADSG_JAX_PLUGINS` and installed entry points) registers a
user's defenses and attacks first (`ladsg_jax.plugins`). Bad input ends with one line
`ladsg-jax: error: FIELD: ...` on stderr and exit status 2.

Importing this module and building its parser loads neither JAX nor scikit-learn: `--help` and
argument errors answer at once; each command imports what it runs.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

from ladsg_jax import compile_cache
from ladsg_jax import data as datasets
from ladsg_jax.attacks.settings import AttackSettings, MixMatchConfig
from ladsg_jax.cli_report import attack_report_lines, seeds_line, warn
from ladsg_jax.cli_session import COMPUTING, compiling, run_provenance
from ladsg_jax.config import TrainConfig
from ladsg_jax.data.options import parse_data_options
from ladsg_jax.distributed import add_distributed_arguments
from ladsg_jax.errors import ArgumentParser, ConfigError, unknown
from ladsg_jax.flags import add_fields, check_args, given, parse_defense_options
from ladsg_jax.plugins import load_plugins, plugin_parser
from ladsg_jax.presets import known_labels_for, preset_config
from ladsg_jax.results import mean_std, write_result

CONFIG_SKIP = ("num_parties", "defense", "record_wire")    # flags of their own, or internal
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
                             "(a chain's: --defense.MEMBER.NAME VALUE)")
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


def command_train(args: argparse.Namespace) -> int:
    import jax

    from ladsg_jax.distributed import initialize_from_args
    from ladsg_jax.session import train_seeds

    initialize_from_args(args)         # before anything touches a device
    config = config_from_args(args)
    data = load_data(args)
    record = train_seeds(config, data, args.seeds, args.seed,
                         progress=progress(args, f"train {data.name}"),
                         checkpoint_dir=args.checkpoint_dir)
    name = args.name or f"{data.name}-k{data.num_parties}-{time.strftime('%Y%m%d-%H%M%S')}"
    if jax.process_index() != 0:        # every process trained the same model; one writes it
        return 0
    record["provenance"] = run_provenance(args)
    path = write_result(os.path.join(args.runs_dir, name, "result.json"), record)
    warn(f"train {data.name}", record["per_seed"]["diverged"])
    print(f"{data.name}: test accuracy {mean_std(record['test_accuracy'], 4)} over "
          f"{seeds_line(record['test_accuracy'])} ({record['timing']['wall_s']:.1f} s, "
          f"{record['strategy']['loop']}/{record['strategy']['seeds']}); wrote {path}")
    return 0


def command_attack(args: argparse.Namespace) -> int:
    """Without `--top-model`, each attack runs in its own setting (`run_attacks_by_setting`);
    with it, every attack runs in that one, and one that cannot is an error."""
    from ladsg_jax.attack_table import run_attacks_by_setting
    from ladsg_jax.attacks.registry import ATTACKS, HYBRID, hybrid_attacks
    from ladsg_jax.attacks.suite import run_attacks
    from ladsg_jax.session import config_record

    names, hybrid = args.attack, args.attack == [HYBRID]
    for name in names if not hybrid else ():
        if name not in ATTACKS:
            raise (ConfigError("attack", "hybrid runs alone (it is every attack on the "
                                         "malicious run)") if name == HYBRID else
                   unknown("attack", name, [*ATTACKS, f"{HYBRID} (alone)"]))
    top_given = getattr(args, CONFIG_DEST + "top_model") is not None
    config = config_from_args(args)
    data = load_data(args)
    if hybrid:
        names = hybrid_attacks(config.top_model, data.num_classes)
    settings = attack_settings(args, data)
    start = time.perf_counter()
    bar = progress(args, f"attack {data.name}")
    if top_given or hybrid:
        report = run_attacks(config, data, names, args.seeds, args.seed, settings,
                             hybrid=hybrid, progress=bar)
        report["config"] = config_record(config)
    else:
        report = run_attacks_by_setting(config, data, names, args.seeds, args.seed, settings,
                                        progress=bar)
    report.update(dataset=data.name, num_seeds=args.seeds,
                  finetune_bottom=settings.mixmatch.finetune_bottom,
                  wall_s=time.perf_counter() - start,
                  timing={"wall_s": time.perf_counter() - start,
                          **args.compile_stats.record()},
                  provenance=run_provenance(args))
    name = args.name or f"attack-{data.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    path = write_result(os.path.join(args.runs_dir, name, "result.json"), report)
    for line in attack_report_lines(report, data.name, hybrid):
        print(line)
    print(f"{args.seeds} seeds, {report['known_labels']} known labels, "
          f"{report['wall_s']:.1f} s; wrote {path}")
    return 0


def command_sweep(args: argparse.Namespace) -> int:
    from ladsg_jax.session import config_record
    from ladsg_jax.sweep import grid_points, parse_grid, run_sweep

    points = grid_points(args.defense, getattr(args, "defense_options", {}),
                         parse_grid(args.grid))              # every point checked first
    config = config_from_args(args)
    data = load_data(args)
    settings = attack_settings(args, data) if args.attack else None
    record = run_sweep(config, data, points, args.seeds, args.seed, args.attack, settings,
                       progress=progress(args, f"sweep {data.name}"))
    record.update(dataset=data.name, defense=args.defense, config=config_record(config),
                  provenance=run_provenance(args))
    name = args.name or f"sweep-{data.name}-{args.defense}-{time.strftime('%Y%m%d-%H%M%S')}"
    path = write_result(os.path.join(args.runs_dir, name, "result.json"), record)
    for i, point in enumerate(record["grid"]):
        values = " ".join(f"{k}={v}" for k, v in point["values"].items())
        for run, reasons in point["diverged"].items():
            warn(f"sweep point {i} ({values}), {run}", reasons)
        mp = "".join(f"  MP {setting} {mean_std(r, 3, '±')}"
                     for setting, r in point["main_task_by_setting"].items())
        attacks = "".join(f"  {a} ({r['setting']}) {mean_std(r, 3, '±')}"
                          for a, r in point["attacks"].items())
        print(f"  {values:<24}{mp}{attacks}")
    timing = record["timing"]
    print(f"{len(record['grid'])} points × {args.seeds} seeds in {timing['wall_s']:.1f} s, "
          f"{timing['compilations']} compilations; wrote {path}")
    return 0


def command_demo(args: argparse.Namespace) -> int:
    """The table code of `experiments/defense_table.py` on the demo's rows."""
    from ladsg_jax.attack_table import AttackContexts
    from ladsg_jax.table_render import terminal_table
    from ladsg_jax.table_config import DEMO, DEMO_LEGEND, demo_table, run_table

    args.seeds = args.seeds or DEMO.seeds
    table = demo_table(args.seeds, args.defense, getattr(args, "defense_options", {}))
    overrides = {**given(args, TrainConfig, CONFIG_DEST), "num_parties": args.parties}
    overrides.pop("top_model", None)                   # each run of a row sets its own
    contexts = AttackContexts(load=lambda name: load_data(args, name),
                              settings=lambda data: attack_settings(args, data),
                              overrides=overrides)
    start, provenance = time.perf_counter(), run_provenance(args)
    path = os.path.join(args.runs_dir, args.name or "demo", "result.json")
    rows = run_table(table, path, contexts, progress=not args.no_progress, seed=args.seed,
                     resume=False, header=lambda: {"provenance": provenance, "timing": {
                         "wall_s": time.perf_counter() - start, **args.compile_stats.record()}})
    for row in rows:
        for run, reasons in row.get("diverged", {}).items():
            warn(f"demo {row['dataset']} {row['setting']}, {run} training", reasons)
    print(terminal_table(rows))
    print(f"\n{args.parties} parties, mean±std over {args.seeds} seeds; {DEMO_LEGEND} "
          f"{time.perf_counter() - start:.1f} s in all; wrote {path} (and its .md tables)")
    return 0


def command_list(args: argparse.Namespace) -> int:
    from ladsg_jax.listing import HEADERS, aligned, list_rows

    print(aligned([HEADERS[args.kind], *list_rows(args.kind)]))
    return 0


def command_data(args: argparse.Namespace) -> int:
    from ladsg_jax.listing import aligned, data_rows

    if args.action == "list":
        print(aligned([("name", "kind", "prepared", "train", "test", "where / needs"),
                       *data_rows(args.data_dir)]))
        return 0
    if args.name not in datasets.DATASETS:
        raise unknown("dataset", args.name, datasets.DATASETS)
    info = datasets.prepare(args.name, data_dir=args.data_dir, manual_dir=args.manual_dir,
                            **parse_data_options(args.option))
    shape = "x".join(map(str, info["shape"]))
    print(f"{info['name']}: {info['num_train']} train / {info['num_test']} test samples of "
          f"{shape} {info['dtype']}, {info['num_classes']} classes"
          f"{', vocab_size ' + str(info['vocab_size']) if info['vocab_size'] else ''}; "
          f"from {info['source']}; prepared in {info['path']}")
    return 0


def command_cache(args: argparse.Namespace) -> int:
    folder = compile_cache.cache_dir()
    if args.action == "clear":
        programs, size = compile_cache.clear(folder)
        print(f"emptied {folder}: {programs} cached programs, {size / 2 ** 20:.1f} MiB")
    else:
        print(f"{folder}: {compile_cache.entries(folder)} cached programs, "
              f"{compile_cache.folder_bytes(folder) / 2 ** 20:.1f} MiB "
              f"(kept under {compile_cache.MAX_BYTES / 2 ** 30:.0f} GiB; ${compile_cache.ENV} "
              "moves it)")
    return 0


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
                                                   "each in its own setting")
    command("demo", command_demo, "the main job on the built-in data, as a table "
            "(none and ladsg, or none and --defense)", attacks=True, seeds=None,
            defense=None)
    listing = command("list", command_list, "the registered defenses, attacks or data sets",
                      training=False)
    listing.add_argument("kind", choices=("defenses", "attacks", "datasets"))
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
    cache = command("cache", command_cache, "the persistent compilation cache: where it is "
                    "and its size (info), or empty it (clear)", training=False)
    cache.add_argument("action", choices=("info", "clear"))
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = None
    try:
        load_plugins(plugin_parser().parse_known_args(argv)[0].plugin)  # before the flags
        args, extra = build_parser().parse_known_args(argv)
        args.defense_options = parse_defense_options(extra)
        args.argv = argv
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
