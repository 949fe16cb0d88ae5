"""Every attack against every defense (issue 5): the rows of a table config
(`experiments/configs/defense_table.json`: no defense, LADSG's default and each baseline at one
documented strength) on the built-in data sets, with main-task accuracy and DCS.

Each row is `ladsg_jax.app.attack_table.defense_row` (`ladsg_jax.app.table_config.run_table`): the
demo's three runs of the defense over `--seeds` seeds and every attack that fits the data set;
the tables add each attack's reduction against no defense, its excess over the raw-feature
floor and VFLAIR's DCS (β = 0.5, the attack's chance as its ideal, the undefended MP as MP*),
and the mean DCS over the attacks. One JSON file (default under runs/, never over the
committed `experiments/results/defense_table.json`), rewritten atomically after each row; a
rerun adds only the missing rows; the Markdown tables are printed and written beside the JSON.
A config may name plugin defenses (its `plugins`, or `--plugin`).

    python experiments/defense_table.py --seeds 5
    python experiments/defense_table.py --config my_table.json --plugin my_defense.py
    python experiments/defense_table.py --table --out experiments/results/defense_table.json
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys

from ladsg_jax import compile_cache
from ladsg_jax.app.attack_table import add_comparisons
from ladsg_jax.app.table_render import markdown_tables
from ladsg_jax.errors import ConfigError
from ladsg_jax.app.plugins import load_plugins, plugin_parser
from ladsg_jax.app.provenance import provenance
from ladsg_jax.results import read_records
from ladsg_jax.app.table_config import read_table_config, run_table

CONFIG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs",
                      "defense_table.json")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     parents=[plugin_parser()])
    parser.add_argument("--config", default=CONFIG, help="the table's config (JSON)")
    parser.add_argument("--datasets", nargs="+", help="data sets (default: the config's)")
    parser.add_argument("--seeds", type=int, help="seeds (default: the config's)")
    parser.add_argument("--out", default=os.path.join("runs", "defense_table",
                                                      "defense_table.json"),
                        help="results JSON; settings already in it are not run again")
    parser.add_argument("--only", nargs="+", metavar="LABEL",
                        help="run only these settings (labels of the config)")
    parser.add_argument("--table", action="store_true",
                        help="print the Markdown table(s) of --out and exit")
    compile_cache.add_argument(parser)
    args = parser.parse_args(argv)
    compile_cache.from_args(args)
    try:
        table = read_table_config(args.config)
        load_plugins([*table.plugins, *args.plugin])
        table = dataclasses.replace(table, **{k: v for k, v in (
            ("datasets", tuple(args.datasets or ())), ("seeds", args.seeds)) if v})
        if args.table:
            rows = read_records(args.out)
            add_comparisons(rows)
        else:
            rows = run_table(table, args.out, only=args.only,
                             provenance=provenance(sys.argv[1:] if argv is None else argv))
    except ConfigError as err:
        print(f"defense_table: error: {err}", file=sys.stderr)
        return 2
    print(markdown_tables(rows, list(table.settings)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
