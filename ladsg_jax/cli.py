"""`ladsg-jax`: train VFL runs over seeds, attack them, and run the demo.

    ladsg-jax train --dataset digits --parties 2 --epochs 30 --seeds 3
    ladsg-jax attack --attack passive_mc --dataset digits --seeds 5
    ladsg-jax demo

Bad input ends with one line `ladsg-jax: error: FIELD: ...` on stderr and exit status 2.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

from ladsg_jax import data as datasets
from ladsg_jax.attack_table import ATTACK_GROUPS, COLUMNS
from ladsg_jax.defenses import DEFENSES, knob_default, make_defense
from ladsg_jax.distributed import add_distributed_arguments
from ladsg_jax.errors import ConfigError, unknown
from ladsg_jax.models import BOTTOMS
from ladsg_jax.presets import known_labels_for, preset_config
from ladsg_jax.results import write_json_atomic
from ladsg_jax.session import config_record, train_seeds

DEMO_DATASETS = ("breast_cancer", "digits")
DEMO_SEEDS = 3
DEMO_DEFENSES = ("none", "ladsg")
# CLI flag -> TrainConfig field, for flags that override the data set's preset.
CONFIG_FLAGS = {
    "bottom": "bottom", "bottom_hidden": "bottom_hidden", "embed_dim": "embed_dim",
    "top_model": "top_model", "top_hidden": "top_hidden", "optimizer": "optimizer",
    "lr": "learning_rate", "momentum": "momentum", "weight_decay": "weight_decay",
    "batch_size": "batch_size", "epochs": "epochs", "loop": "loop", "seed_strategy": "seeds",
    "lr_decay_epochs": "lr_decay_epochs", "lr_decay": "lr_decay", "vocab_size": "vocab_size",
    "parallel": "parallel", "conv_gradients": "conv_gradients",
}


def parse_data_options(items: list[str]) -> dict:
    """`KEY=VALUE` pairs; values that read as numbers become numbers."""
    options = {}
    for item in items:
        if "=" not in item:
            raise ConfigError("data-option", f"expected KEY=VALUE, got {item!r}")
        key, value = item.split("=", 1)
        for cast in (int, float):
            try:
                value = cast(value)
                break
            except ValueError:
                pass
        options[key] = value
    return options


def add_training_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", default="digits",
                        help=f"one of {', '.join(datasets.DATASETS)} (default digits)")
    parser.add_argument("--parties", type=int, default=2, help="number of parties K (default 2)")
    parser.add_argument("--shares", type=float, nargs="+",
                        help="each party's share of the columns (default equal)")
    parser.add_argument("--seeds", type=int, default=3, help="number of seeds (default 3)")
    parser.add_argument("--seed", type=int, default=0, help="base PRNG seed (default 0)")
    parser.add_argument("--bottom", help="bottom model: " + ", ".join(BOTTOMS)
                        + " (default: the data set's preset)")
    parser.add_argument("--bottom-hidden", type=int, nargs="+",
                        help="bottom hidden widths (cnn: channels)")
    parser.add_argument("--embed-dim", type=int, help="bottom output width (default classes)")
    parser.add_argument("--top-model", help="mlp or none")
    parser.add_argument("--top-hidden", type=int, nargs="*", help="top hidden widths")
    parser.add_argument("--optimizer", help="sgd or adam")
    parser.add_argument("--lr", type=float, help="learning rate")
    parser.add_argument("--momentum", type=float, help="SGD momentum")
    parser.add_argument("--weight-decay", type=float, help="L2 weight decay")
    parser.add_argument("--lr-decay-epochs", type=int, nargs="*",
                        help="epochs at whose start the learning rate is multiplied by "
                             "--lr-decay (CIFAR presets: 50 85)")
    parser.add_argument("--lr-decay", type=float, help="step-decay factor (default 0.1)")
    parser.add_argument("--vocab-size", type=int,
                        help="token-id range of the hashed_mlp and text bottoms")
    parser.add_argument("--batch-size", type=int, help="batch size")
    parser.add_argument("--epochs", type=int, help="epochs")
    parser.add_argument("--loop", help="auto, scan or step")
    parser.add_argument("--seed-strategy", help="auto, vmap or sequential")
    parser.add_argument("--parallel", help="none, pmap or shard_map: split every batch over "
                                           "the devices (of every process)")
    parser.add_argument("--conv-gradients", help="auto, xla or fast: how convolutional bottoms "
                                                 "differentiate (auto: fast on the CPU)")
    parser.add_argument("--defense", default="none",
                        help=f"one of {', '.join(DEFENSES)} (default none)")
    parser.add_argument("--data-dir", help="where prepared data sets live")
    parser.add_argument("--data-option", action="append", default=[], metavar="KEY=VALUE",
                        help="data set option, e.g. source=FILE or num_classes=4 (synthetic)")
    parser.add_argument("--runs-dir", default="runs", help="results go to RUNS_DIR/NAME")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def add_attack_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--known-labels", type=int,
                        help="labels the attacker knows (default per data set, DESIGN §7)")
    parser.add_argument("--mc-steps", type=int, default=2000,
                        help="MixMatch fine-tuning steps of model completion (default 2000)")
    parser.add_argument("--finetune-bottom", action="store_true",
                        help="model completion also trains the bottom (default: head only, "
                             "as Fu et al.'s released code runs)")


def config_from_args(args: argparse.Namespace):
    overrides = {}
    for flag, field in CONFIG_FLAGS.items():
        value = getattr(args, flag, None)
        if value is not None:
            overrides[field] = tuple(value) if isinstance(value, list) else value
    overrides["num_parties"] = args.parties
    overrides["defense"] = make_defense(args.defense, **getattr(args, "defense_options", {}))
    return preset_config(args.dataset, **overrides)


def load_data(args: argparse.Namespace, dataset: str | None = None):
    name = dataset or args.dataset
    if name not in datasets.DATASETS:
        raise unknown("dataset", name, datasets.DATASETS)
    return datasets.load(name, num_parties=args.parties, shares=args.shares,
                         data_dir=args.data_dir, **parse_data_options(args.data_option))


def jax_process_index() -> int:
    import jax

    return jax.process_index()


def check_counts(args: argparse.Namespace) -> None:
    if args.seeds < 1:
        raise ConfigError("seeds", f"must be a positive integer, got {args.seeds}")


def command_train(args: argparse.Namespace) -> int:
    from ladsg_jax.distributed import initialize_from_args

    initialize_from_args(args)         # before anything touches a device
    check_counts(args)
    config = config_from_args(args)
    data = load_data(args)
    record = train_seeds(config, data, args.seeds, args.seed,
                         progress=False if args.no_progress else f"train {data.name}",
                         checkpoint_dir=args.checkpoint_dir)
    name = args.name or f"{data.name}-k{data.num_parties}-{time.strftime('%Y%m%d-%H%M%S')}"
    if jax_process_index() != 0:        # every process trained the same model; one writes it
        return 0
    path = write_json_atomic(os.path.join(args.runs_dir, name, "result.json"), record)
    acc = record["test_accuracy"]
    print(f"{data.name}: test accuracy {acc['mean']:.4f} ± {acc['std']:.4f} over {args.seeds} "
          f"seeds ({record['timing']['wall_s']:.1f} s, {record['strategy']['loop']}/"
          f"{record['strategy']['seeds']}); wrote {path}")
    return 0


def attack_settings(args: argparse.Namespace, dataset: str, num_classes: int):
    from ladsg_jax.attacks.completion import MixMatchConfig
    from ladsg_jax.attacks.suite import AttackSettings

    known = args.known_labels or known_labels_for(dataset, num_classes)
    mixmatch = MixMatchConfig(steps=args.mc_steps, finetune_bottom=args.finetune_bottom)
    return AttackSettings(known_labels=known, mixmatch=mixmatch)


def command_attack(args: argparse.Namespace) -> int:
    from ladsg_jax.attacks.registry import ATTACKS, attack_spec
    from ladsg_jax.attacks.suite import hybrid_attacks, run_attacks

    check_counts(args)
    names = args.attack
    hybrid = names == ["hybrid"]
    if not hybrid:
        for name in names:
            attack_spec(name)
    if args.top_model is None and not hybrid and any(ATTACKS[n].needs_sum_top for n in names):
        args.top_model = "none"          # the direct attack's setting, unless told otherwise
    config = config_from_args(args)
    data = load_data(args)
    if hybrid:
        names = hybrid_attacks(config.top_model, data.num_classes)
    settings = attack_settings(args, data.name, data.num_classes)
    start = time.perf_counter()
    report = run_attacks(config, data, names, args.seeds, args.seed, settings, hybrid=hybrid,
                         progress=False if args.no_progress else f"attack {data.name}")
    report.update(dataset=data.name, config=config_record(config), num_seeds=args.seeds,
                  finetune_bottom=args.finetune_bottom, wall_s=time.perf_counter() - start)
    name = args.name or f"attack-{data.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    path = write_json_atomic(os.path.join(args.runs_dir, name, "result.json"), report)
    mp = report["main_task"]
    print(f"{data.name}: main-task accuracy {mp['mean']:.3f} ± {mp['std']:.3f}"
          f"{' (hybrid: party 0 on the malicious optimizer)' if hybrid else ''}")
    for attack, r in report["attacks"].items():
        print(f"  {attack:<20} {r['metric']:<5} {r['mean']:.3f} ± {r['std']:.3f}")
    print(f"{args.seeds} seeds, {report['known_labels']} known labels, "
          f"{report['wall_s']:.1f} s; wrote {path}")
    return 0


def command_sweep(args: argparse.Namespace) -> int:
    from ladsg_jax.sweep import grid_points, parse_grid, run_sweep

    check_counts(args)
    points = grid_points(args.defense, getattr(args, "defense_options", {}),
                         parse_grid(args.grid))              # every point checked first
    config = config_from_args(args)
    data = load_data(args)
    settings = attack_settings(args, data.name, data.num_classes) if args.attack else None
    record = run_sweep(config, data, points, args.seeds, args.seed, args.attack, settings,
                       progress=False if args.no_progress else f"sweep {data.name}")
    record.update(dataset=data.name, defense=args.defense, config=config_record(config))
    name = args.name or f"sweep-{data.name}-{args.defense}-{time.strftime('%Y%m%d-%H%M%S')}"
    path = write_json_atomic(os.path.join(args.runs_dir, name, "result.json"), record)
    for point in record["grid"]:
        values = " ".join(f"{k}={v}" for k, v in point["values"].items())
        mp = "".join(f"  MP {setting} {r['mean']:.3f}±{r['std']:.3f}"
                     for setting, r in point["main_task_by_setting"].items())
        attacks = "".join(f"  {a} ({r['setting']}) {r['mean']:.3f}±{r['std']:.3f}"
                          for a, r in point["attacks"].items())
        print(f"  {values:<24}{mp}{attacks}")
    timing = record["timing"]
    print(f"{len(record['grid'])} points × {args.seeds} seeds in {timing['wall_s']:.1f} s, "
          f"{timing['compilations']} compilations; wrote {path}")
    return 0


def cell(record: dict | None) -> str:
    return "n/a" if record is None else f"{record['mean']:.2f}±{record['std']:.2f}"


def demo_table(rows: list[dict]) -> str:
    width = 12
    header = f"{'dataset':<14}{'defense':<8}{'MP':>{width}}" + "".join(
        f"{label:>{width}}" for _, label in COLUMNS)
    lines = [header, "-" * len(header)]
    for row in rows:
        lines.append(f"{row['dataset']:<14}{row['defense']:<8}{cell(row['main_task']):>{width}}"
                     + "".join(
            f"{cell(row['attacks'].get(name)):>{width}}" for name, _ in COLUMNS))
    return "\n".join(lines)


def command_demo(args: argparse.Namespace) -> int:
    from ladsg_jax.attacks.registry import ATTACKS
    from ladsg_jax.attacks.suite import AttackRunner, run_attacks

    check_counts(args)
    start = time.perf_counter()
    rows = []
    defenses = DEMO_DEFENSES if args.defense is None else ("none", args.defense)
    for dataset in DEMO_DATASETS:
        args.dataset = dataset
        data = load_data(args)
        settings = attack_settings(args, dataset, data.num_classes)
        args.top_model, args.defense = "mlp", "none"
        attack_runner = AttackRunner(config_from_args(args), data, settings)
        for defense in defenses:
            args.defense = defense
            row = {"dataset": dataset, "defense": defense, "attacks": {}, "runs": {}}
            for group, names in ATTACK_GROUPS.items():
                names = [n for n in names
                         if not (ATTACKS[n].binary_only and data.num_classes != 2)]
                args.top_model = "none" if group == "none" else "mlp"
                config = config_from_args(args)
                label = f"demo {dataset} {defense} {group}"
                report = run_attacks(config, data, names, args.seeds, args.seed, settings,
                                     progress=False if args.no_progress else label,
                                     attack_runner=attack_runner)
                row["runs"][group] = {"main_task": report["main_task"],
                                      "config": config_record(config)}
                row["attacks"].update(report["attacks"])
            row["main_task"] = row["runs"]["mlp"]["main_task"]
            rows.append(row)
    wall = time.perf_counter() - start
    path = write_json_atomic(os.path.join(args.runs_dir, args.name or "demo", "result.json"),
                             {"rows": rows, "seeds": args.seeds, "wall_s": wall})
    print(demo_table(rows))
    print(f"\n{args.parties} parties, mean±std over {args.seeds} seeds; ladsg: LADSG's default "
          "configuration (ladsg_jax/defenses/ladsg.py). MP: main-task "
          "test accuracy (top model mlp). Attack success: direct/argmin: top-1 on the last "
          "epoch's messages (top model none); avg-argmin: the adaptive attack, argmin of each "
          "sample's messages averaged over the epochs; passive/active/raw: model completion with "
          "MixMatch, F1 (binary) or top-1 on the test set, raw = fresh bottom on raw features; "
          "norm/direction: leak AUC per batch; clust-emb/clust-msg: k-means top-1; "
          f"invert(+head): gradient inversion top-1. {wall:.1f} s in all; wrote {path}")
    return 0


def list_rows(kind: str) -> list[tuple[str, ...]]:
    """The rows `ladsg-jax list KIND` prints: (name, ..., description)."""
    if kind == "defenses":
        return [(name, cls.knob or "-", "-" if cls.knob is None else str(knob_default(cls)),
                 ",".join(cls.hyper) or "-", cls().needs, cls.summary)
                for name, cls in DEFENSES.items()]
    if kind == "attacks":
        from ladsg_jax.attacks.registry import ATTACKS
        return [(name, spec.metric, spec.description) for name, spec in ATTACKS.items()]
    from ladsg_jax.data import DATASETS
    return [(name, data_kind, description)
            for name, (data_kind, _, description) in DATASETS.items()]


def command_list(args: argparse.Namespace) -> int:
    headers = {"defenses": ("name", "knob", "default", "traced (grid in one program)",
                            "needs of the batch", "description"),
               "attacks": ("name", "metric", "description"),
               "datasets": ("name", "kind", "description")}[args.kind]
    rows = [headers] + list_rows(args.kind)
    widths = [max(len(row[i]) for row in rows) for i in range(len(headers) - 1)]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)) + "  " + row[-1])
    return 0


def data_rows(data_dir: str | None) -> list[tuple[str, ...]]:
    """The rows `ladsg-jax data list` prints: one per prepared copy or unprepared data set."""
    from ladsg_jax.data.catalog import SPECS

    copies = datasets.prepared(data_dir)
    rows = []
    for name, (kind, _, _) in datasets.DATASETS.items():
        mine = [info for info in copies if info["name"] == name]
        for info in mine:
            options = ",".join(f"{k}={v}" for k, v in sorted(info["options"].items()))
            rows.append((name, kind, "yes", str(info["num_train"]), str(info["num_test"]),
                         info["path"] + (f" ({options})" if options else "")))
        if not mine:
            spec = SPECS.get(name)
            needs = ("made in memory, nothing to prepare" if spec is None else
                     "ships with scikit-learn, prepared on first load" if spec.source is None
                     else "needs " + spec.source.needs())
            rows.append((name, kind, "no", "-", "-", needs))
    return rows


def command_data(args: argparse.Namespace) -> int:
    if args.action == "prepare":
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
    rows = [("name", "kind", "prepared", "train", "test", "where / needs")]
    rows += data_rows(args.data_dir)
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)) + "  " + row[-1])
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ladsg-jax", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train a VFL model over seeds, write results JSON")
    add_training_flags(train)
    train.add_argument("--name", help="run name (default DATASET-kK-TIME)")
    add_distributed_arguments(train)
    train.add_argument("--checkpoint-dir",
                       help="checkpoint every epoch here (orbax); a rerun resumes from it")
    train.set_defaults(handler=command_train)
    attack = sub.add_parser("attack", help="train, attack, and score the attacks over seeds")
    add_training_flags(attack)
    add_attack_flags(attack)
    attack.add_argument("--attack", nargs="+", required=True,
                        help="attack names (see `ladsg_jax.attacks.registry`), or hybrid")
    attack.add_argument("--name", help="run name (default attack-DATASET-TIME)")
    attack.set_defaults(handler=command_attack, seeds=5)
    sweep = sub.add_parser("sweep", help="a grid of a defense's knobs (and the learning rate) "
                                         "× seeds as one compiled program per static choice")
    add_training_flags(sweep)
    add_attack_flags(sweep)
    sweep.add_argument("--grid", action="append", required=True, metavar="FIELD=V1,V2,...",
                       help="values of one field of the defense (or learning_rate); "
                            "repeatable: the grid is their product")
    sweep.add_argument("--attack", nargs="+", help="attacks scored at every point and seed, "
                                                   "each in its own setting")
    sweep.add_argument("--name", help="run name (default sweep-DATASET-DEFENSE-TIME)")
    sweep.set_defaults(handler=command_sweep)
    demo = sub.add_parser("demo", help="the main job on the built-in data, as a table")
    add_training_flags(demo)
    add_attack_flags(demo)
    demo.set_defaults(seeds=DEMO_SEEDS, defense=None)
    demo.add_argument("--name", help="run name (default demo)")
    demo.set_defaults(handler=command_demo)
    listing = sub.add_parser("list", help="the registered defenses, attacks or data sets")
    listing.add_argument("kind", choices=("defenses", "attacks", "datasets"))
    listing.set_defaults(handler=command_list)
    data = sub.add_parser("data", help="prepare the data sets from their original files, or "
                                       "list what is prepared")
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
    data.set_defaults(handler=command_data)
    return parser


def parse_defense_options(extra: list[str]) -> dict:
    """`--defense.NAME VALUE` (or `--defense.NAME=VALUE`) pairs, values as strings."""
    options, i = {}, 0
    while i < len(extra):
        token = extra[i]
        if not token.startswith("--defense."):
            raise ConfigError("arguments", f"unrecognized {token!r}; defense options are "
                                           "written --defense.NAME VALUE")
        key = token[len("--defense."):]
        if "=" in key:
            key, value = key.split("=", 1)
            i += 1
        else:
            if i + 1 >= len(extra):
                raise ConfigError(f"defense.{key}", "needs a value")
            value, i = extra[i + 1], i + 2
        options[key.replace("-", "_")] = value
    return options


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    try:
        args.defense_options = parse_defense_options(extra)
        return args.handler(args)
    except ConfigError as err:
        print(f"ladsg-jax: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ladsg-jax: interrupted; no result file was written", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
