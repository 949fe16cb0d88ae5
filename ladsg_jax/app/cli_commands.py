"""What each `ladsg-jax` command does once its flags are parsed (`cli.py` parses them): each
handler imports what it runs, so the parser and `--help` load neither JAX nor scikit-learn."""
from __future__ import annotations

import argparse
import dataclasses
import os
import time

from ladsg_jax import compile_cache
from ladsg_jax import data as datasets
from ladsg_jax.app.cli_args import (CONFIG_DEST, attack_settings, config_from_args, load_data,
                                progress)
from ladsg_jax.app.cli_report import attack_report_lines, message_norm_line, seeds_line, warn
from ladsg_jax.app.cli_session import run_provenance
from ladsg_jax.config import TrainConfig
from ladsg_jax.data.options import parse_data_options
from ladsg_jax.errors import ConfigError, unknown
from ladsg_jax.app.flags import given
from ladsg_jax.results import mean_std, write_result


def command_train(args: argparse.Namespace) -> int:
    import jax

    from ladsg_jax.distributed import initialize_from_args
    from ladsg_jax.app.session import train_seeds

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
    if record["message_norm"]:
        print(message_norm_line(record["message_norm"]).strip())
    return 0


def command_attack(args: argparse.Namespace) -> int:
    """Without `--top-model`, each attack runs in the setting it needs (placement "own"); with
    it, every attack runs in that one, and one that cannot is an error."""
    from ladsg_jax.attacks.registry import ATTACKS, HYBRID, hybrid_attacks
    from ladsg_jax.app.experiment import Experiment, run_experiment

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
    record = run_experiment(Experiment(config, data, args.seeds, args.seed, attacks=tuple(names),
                                       settings=settings, hybrid=hybrid,
                                       placement="given" if top_given or hybrid else "own"),
                            progress=progress(args, f"attack {data.name}"))
    point = record["grid"][0]
    report = {**point, "config": next(iter(point["configs"].values())),
              "attacks": {name: point["attacks"][name] for name in names},   # in the order asked
              "known_labels": record["known_labels"], "chance": record["chance"],
              "hybrid": hybrid, "dataset": data.name,
              "num_seeds": args.seeds, "seed": args.seed,
              "finetune_bottom": settings.mixmatch.finetune_bottom,
              "mixmatch": dataclasses.asdict(settings.mixmatch),
              "wall_s": record["timing"]["wall_s"],
              "timing": {**record["timing"], **args.compile_stats.record()},
              "provenance": run_provenance(args)}
    del report["values"]
    name = args.name or f"attack-{data.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    path = write_result(os.path.join(args.runs_dir, name, "result.json"), report)
    for line in attack_report_lines(report, data.name, hybrid):
        print(line)
    print(f"{args.seeds} seeds, {report['known_labels']} known labels, "
          f"{report['wall_s']:.1f} s; wrote {path}")
    return 0


def command_sweep(args: argparse.Namespace) -> int:
    from ladsg_jax.app.session import config_record
    from ladsg_jax.app.sweep import grid_points, parse_grid, run_sweep, sweep_attacks

    points = grid_points(args.defense, getattr(args, "defense_options", {}),
                         parse_grid(args.grid))              # every point checked first
    config = config_from_args(args)
    data = load_data(args)
    names = sweep_attacks(args.attack, config.top_model, data.num_classes)
    settings = attack_settings(args, data) if names else None
    record = run_sweep(config, data, points, args.seeds, args.seed, names, settings,
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
    if args.plot:
        from ladsg_jax.app.gather import add_scores, plot, rows_of

        rows = rows_of(path, record)
        add_scores(rows)
        print(f"drew {plot(rows, args.plot)}")
    return 0


def command_table(args: argparse.Namespace) -> int:
    from ladsg_jax.app.gather import csv_text, gather, markdown, plot
    from ladsg_jax.results import write_text_atomic

    rows = gather(args.paths)
    text = markdown(rows)
    print(text, end="")
    for path, content in ((args.markdown, text), (args.csv, csv_text(rows) if args.csv else "")):
        if path:
            print(f"wrote {write_text_atomic(path, content)}")
    if args.plot:
        print(f"drew {plot(rows, args.plot)}")
    return 0


def command_demo(args: argparse.Namespace) -> int:
    """The table code of `experiments/defense_table.py` on the demo's rows."""
    from ladsg_jax.app.attack_table import AttackContexts
    from ladsg_jax.app.table_render import terminal_table
    from ladsg_jax.app.table_config import DEMO, DEMO_LEGEND, demo_table, run_table

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
    from ladsg_jax.app.listing import HEADERS, aligned, list_rows

    print(aligned([HEADERS[args.kind], *list_rows(args.kind)]))
    return 0


def command_describe(args: argparse.Namespace) -> int:
    from ladsg_jax.app.describe import describe

    print(describe(args.name, args.kind))
    return 0


def command_data(args: argparse.Namespace) -> int:
    from ladsg_jax.app.listing import aligned, data_rows

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
