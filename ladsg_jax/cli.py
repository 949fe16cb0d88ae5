"""`ladsg-jax`: train VFL runs over seeds and run the demo.

    ladsg-jax train --dataset digits --parties 2 --epochs 30 --seeds 3
    ladsg-jax demo

Bad input ends with one line `ladsg-jax: error: FIELD: ...` on stderr and exit status 2.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

from ladsg_jax import data as datasets
from ladsg_jax.defenses import DEFENSES, make_defense
from ladsg_jax.errors import ConfigError, unknown
from ladsg_jax.presets import preset_config
from ladsg_jax.results import write_json_atomic
from ladsg_jax.session import train_seeds

DEMO_DATASETS = ("breast_cancer", "digits")
DEMO_SEEDS = 5

# CLI flag -> TrainConfig field, for flags that override the data set's preset.
CONFIG_FLAGS = {
    "bottom": "bottom", "bottom_hidden": "bottom_hidden", "embed_dim": "embed_dim",
    "top_model": "top_model", "top_hidden": "top_hidden", "optimizer": "optimizer",
    "lr": "learning_rate", "momentum": "momentum", "weight_decay": "weight_decay",
    "batch_size": "batch_size", "epochs": "epochs", "loop": "loop", "seed_strategy": "seeds",
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
    parser.add_argument("--bottom", help="bottom model: mlp or cnn")
    parser.add_argument("--bottom-hidden", type=int, nargs="+",
                        help="bottom hidden widths (cnn: channels)")
    parser.add_argument("--embed-dim", type=int, help="bottom output width (default classes)")
    parser.add_argument("--top-model", help="mlp or none")
    parser.add_argument("--top-hidden", type=int, nargs="*", help="top hidden widths")
    parser.add_argument("--optimizer", help="sgd or adam")
    parser.add_argument("--lr", type=float, help="learning rate")
    parser.add_argument("--momentum", type=float, help="SGD momentum")
    parser.add_argument("--weight-decay", type=float, help="L2 weight decay")
    parser.add_argument("--batch-size", type=int, help="batch size")
    parser.add_argument("--epochs", type=int, help="epochs")
    parser.add_argument("--loop", help="auto, scan or step")
    parser.add_argument("--seed-strategy", help="auto, vmap or sequential")
    parser.add_argument("--defense", default="none",
                        help=f"one of {', '.join(DEFENSES)} (default none)")
    parser.add_argument("--data-dir", help="where prepared data sets live")
    parser.add_argument("--data-option", action="append", default=[], metavar="KEY=VALUE",
                        help="data set option, e.g. source=FILE or num_classes=4 (synthetic)")
    parser.add_argument("--runs-dir", default="runs", help="results go to RUNS_DIR/NAME")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def config_from_args(args: argparse.Namespace):
    overrides = {}
    for flag, field in CONFIG_FLAGS.items():
        value = getattr(args, flag, None)
        if value is not None:
            overrides[field] = tuple(value) if isinstance(value, list) else value
    overrides["num_parties"] = args.parties
    overrides["defense"] = make_defense(args.defense)
    return preset_config(args.dataset, **overrides)


def load_data(args: argparse.Namespace, dataset: str | None = None):
    name = dataset or args.dataset
    if name not in datasets.DATASETS:
        raise unknown("dataset", name, datasets.DATASETS)
    return datasets.load(name, num_parties=args.parties, shares=args.shares,
                         data_dir=args.data_dir, **parse_data_options(args.data_option))


def check_counts(args: argparse.Namespace) -> None:
    if args.seeds < 1:
        raise ConfigError("seeds", f"must be a positive integer, got {args.seeds}")


def command_train(args: argparse.Namespace) -> int:
    check_counts(args)
    config = config_from_args(args)
    data = load_data(args)
    record = train_seeds(config, data, args.seeds, args.seed,
                         progress=False if args.no_progress else f"train {data.name}")
    name = args.name or f"{data.name}-k{data.num_parties}-{time.strftime('%Y%m%d-%H%M%S')}"
    path = write_json_atomic(os.path.join(args.runs_dir, name, "result.json"), record)
    acc = record["test_accuracy"]
    print(f"{data.name}: test accuracy {acc['mean']:.4f} ± {acc['std']:.4f} over {args.seeds} "
          f"seeds ({record['timing']['wall_s']:.1f} s, {record['strategy']['loop']}/"
          f"{record['strategy']['seeds']}); wrote {path}")
    return 0


def demo_table(records: list[dict]) -> str:
    header = f"{'dataset':<14} {'parties':>7} {'epochs':>6} {'seeds':>5}  {'MP (test acc)':<17} {'time':>7}"
    lines = [header, "-" * len(header)]
    for r in records:
        acc = r["test_accuracy"]
        lines.append(f"{r['dataset']:<14} {r['num_parties']:>7} {r['config']['epochs']:>6} "
                     f"{r['num_seeds']:>5}  {acc['mean']:.3f} ± {acc['std']:.3f}     "
                     f"{r['timing']['wall_s']:>6.1f}s")
    return "\n".join(lines)


def command_demo(args: argparse.Namespace) -> int:
    check_counts(args)
    start = time.perf_counter()
    records = []
    for name in DEMO_DATASETS:
        args.dataset = name
        config = config_from_args(args)
        data = load_data(args)
        records.append(train_seeds(config, data, args.seeds, args.seed,
                                   progress=False if args.no_progress else f"demo {name}"))
    wall = time.perf_counter() - start
    path = write_json_atomic(os.path.join(args.runs_dir, args.name or "demo", "result.json"),
                             {"records": records, "wall_s": wall})
    print(demo_table(records))
    print(f"\nno defense, {args.parties} parties; MP = main-task test accuracy, mean ± std over "
          f"seeds; {wall:.1f} s in all; wrote {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ladsg-jax", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train a VFL model over seeds, write results JSON")
    add_training_flags(train)
    train.add_argument("--name", help="run name (default DATASET-kK-TIME)")
    train.set_defaults(handler=command_train)
    demo = sub.add_parser("demo", help="the main job on the built-in data, as a table")
    add_training_flags(demo)
    demo.set_defaults(seeds=DEMO_SEEDS)
    demo.add_argument("--name", help="run name (default demo)")
    demo.set_defaults(handler=command_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except ConfigError as err:
        print(f"ladsg-jax: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ladsg-jax: interrupted; no result file was written", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
