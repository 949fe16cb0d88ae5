"""The paper's experiments (issue 7), one command each, at two sizes: `smoke` (the built-in
data, minutes on 2 CPU cores) and `paper` (the real data sets and models of DESIGN §7, for a
GPU; prepare them first with `ladsg-jax data prepare NAME`).

    python experiments/figures.py effectiveness --size smoke   # Figure 1: none vs LADSG
    python experiments/figures.py tradeoff --size smoke        # Figure 2: MP vs attack, per knob
    python experiments/figures.py cost --size smoke            # Figure 3: seconds per epoch
    python experiments/figures.py ablation --size smoke        # Figure 4: LADSG's stages
    python experiments/figures.py tsne --size smoke            # Figure 5: t-SNE of embeddings
    python experiments/figures.py all --size smoke

Each experiment's settings are `experiments/configs/<experiment>.json` (`--config` takes
another file of the same form, which may name the defenses and attacks of `--plugin` files,
with their registry labels in the figures). Results go to `runs/<experiment>/<size>/`: `results.json`
(every record, rewritten atomically after each one), `results.csv`, `results.md` (the table
behind the figure) and `<experiment>.png`. Every number is mean ± std over the seeds, run by
the seeds strategy `auto` picks (one vmapped call on a GPU); the strongest of the figure's
attacks by label recovery (`ladsg_jax.app.ranking`) and DCS (VFLAIR) at it sit beside each defense. A killed run resumes: finished records are not run again, and the training run that
was interrupted continues from its last orbax checkpoint (under `checkpoints/`).
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import time

import jax
import numpy as np
from tqdm.auto import tqdm

from ladsg_jax import compile_cache
from ladsg_jax.app import plots
from ladsg_jax.app.attack_table import AttackContexts, add_comparisons, defense_row, defense_rows
from ladsg_jax.attacks.registry import ATTACKS
from ladsg_jax.compilation import count_compilations
from ladsg_jax.data import load
from ladsg_jax.defenses import DEFENSES, LADSG, Defense, make_defense
from ladsg_jax.divergence import divergence, kept
from ladsg_jax.errors import ConfigError
from ladsg_jax.models import apply_stateful
from ladsg_jax.app.plugins import load_plugins, plugin_parser
from ladsg_jax.presets import preset_config
from ladsg_jax.app.provenance import provenance
from ladsg_jax.results import (mean_std, read_records, summary, write_csv_atomic,
                               write_records, write_text_atomic)
from ladsg_jax.app.table_render import ranked_cell, score_cell, setting_label
from ladsg_jax.vfl.model import VFLModel
from ladsg_jax.vfl.runner import Runner, seed_keys

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:      # its configs' module beside it, however figures.py was imported
    sys.path.insert(0, HERE)
from figure_configs import EXPERIMENTS, KEYS, SIZES, check_config, load_config  # noqa: E402,F401


def attack_label(name: str) -> str:
    """An attack's name in the figures and tables: its registry label."""
    return ATTACKS[name].label if name in ATTACKS else name


class Records:
    """The results file of one experiment: records keyed by their identifying fields, written
    atomically after each addition (a killed run keeps every finished record)."""

    def __init__(self, out: str, provenance: dict | None = None):
        self.out, self.path = out, os.path.join(out, "results.json")
        self.records = read_records(self.path)
        self.provenance = provenance      # each new record's (`ladsg_jax.app.provenance`)

    def find(self, **key):
        return next((r for r in self.records if all(r.get(k) == v for k, v in key.items())), None)

    def add(self, record: dict) -> None:
        if self.provenance:
            record = {**record, "provenance": self.provenance}
        self.records.append(record)
        write_records(self.path, self.records)

    def checkpoints(self, *parts) -> str:
        return os.path.join(self.out, "checkpoints", *[str(p).replace(" ", "_") for p in parts])


def run_rows(records: Records, todo: list, cfg: dict, progress: bool) -> None:
    """`defense_row` for each (data set, label, defense) not yet in `records`."""
    contexts = AttackContexts()
    overrides = {"epochs": cfg["epochs"]} if cfg.get("epochs") else {}
    bar = tqdm(todo, unit="row", disable=not progress, desc=os.path.basename(records.out))
    for dataset, label, make, extra in bar:
        if records.find(dataset=dataset, setting=label):
            continue
        bar.set_postfix(dataset=dataset, setting=label)
        data, settings, runner = contexts(dataset)
        ckpt = records.checkpoints(dataset, label)
        start = time.perf_counter()
        try:
            row = defense_row(data, make(), label, cfg["seeds"], runner, settings,
                              attacks=tuple(cfg["attacks"]), checkpoint_dir=ckpt, **overrides)
        except ConfigError as err:                  # e.g. Marvell on more than two classes
            row = {"dataset": dataset, "setting": label, "skipped": str(err)}
        records.add({**row, **extra, "seconds": time.perf_counter() - start})
        shutil.rmtree(ckpt, ignore_errors=True)


def run_grids(records: Records, groups: list, cfg: dict, progress: bool) -> None:
    """`defense_rows` for each (data set, defense, knob values) whose rows are not all in
    `records`: one grid per defense over its knob."""
    contexts = AttackContexts()
    overrides = {"epochs": cfg["epochs"]} if cfg.get("epochs") else {}
    bar = tqdm(groups, unit="defense", disable=not progress, desc=os.path.basename(records.out))
    for dataset, name, values in bar:
        knob = DEFENSES[name].knob
        labels = [knob_label(name, v) for v in values]
        if all(records.find(dataset=dataset, setting=label) for label in labels):
            continue
        bar.set_postfix(dataset=dataset, defense=name)
        data, settings, runner = contexts(dataset)
        ckpt = records.checkpoints(dataset, name)
        start = time.perf_counter()
        points = [make_defense(name, **({knob: v} if knob and v is not None else {}))
                  for v in values]
        try:
            rows = defense_rows(data, points[0], labels, cfg["seeds"], runner, settings,
                                attacks=tuple(cfg["attacks"]), checkpoint_dir=ckpt,
                                points=points, **overrides)
        except ConfigError as err:                  # e.g. Marvell on more than two classes
            rows = [{"dataset": dataset, "setting": label, "skipped": str(err)}
                    for label in labels]
        seconds = time.perf_counter() - start
        for row, value in zip(rows, values):
            if not records.find(dataset=dataset, setting=row["setting"]):
                records.add({**row, "defense": name, "knob_value": value,
                             "seconds": seconds / len(rows)})
        shutil.rmtree(ckpt, ignore_errors=True)


def scored(records: Records) -> list[dict]:
    rows = [r for r in records.records if "skipped" not in r]
    add_comparisons(rows)
    return rows


def attack_csv_rows(rows: list[dict], extra: tuple = ()) -> list[dict]:
    out = []
    for r in rows:
        base = {"dataset": r["dataset"], "setting": r["setting"],
                **{k: r.get(k) for k in extra}, "dcs": r["dcs"],
                "dcs_chance": r.get("dcs_chance"),
                "strongest": (r.get("strongest") or {}).get("from"),
                "strongest_mean": (r.get("strongest") or {}).get("mean"),
                "floor_mean": (r.get("floor") or {}).get("mean")}
        for run, mp in r["main_task"].items():
            out.append({**base, "measure": f"main_task_{run}", "mean": mp["mean"],
                        "std": mp["std"], "reduction": None})
        for name, a in r["attacks"].items():
            out.append({**base, "measure": name, "mean": a["mean"], "std": a["std"],
                        "reduction": a.get("reduction")})
    return out


def attack_markdown(rows: list[dict], attacks: list[str]) -> str:
    lines = []
    for dataset in dict.fromkeys(r["dataset"] for r in rows):
        mine = [r for r in rows if r["dataset"] == dataset]
        lines += [f"### {dataset} ({mine[0]['seeds']} seeds, mean ± std)", "",
                  "| setting | MP top mlp | MP top none | "
                  + " | ".join(attack_label(a) for a in attacks)
                  + " | strongest | DCS | DCS (chance) |", "|---" * (6 + len(attacks)) + "|"]
        for r in mine:
            mp = r["main_task"]
            cells = [mean_std(mp[k]) if k in mp else "–" for k in ("top_mlp", "top_none")]
            for a in attacks:
                at = r["attacks"].get(a)
                cell = "–" if at is None else mean_std(at, 2)
                if at is not None and r["setting"] not in ("none", "no defense") \
                        and at.get("reduction") is not None:
                    cell += f" ({100 * at['reduction']:+.0f}%)"
                cells.append(cell)
            lines.append(f"| {setting_label(r)} | " + " | ".join(cells)
                         + f" | {ranked_cell(r.get('strongest'))} | {score_cell(r['dcs'])}"
                           f" | {score_cell(r.get('dcs_chance'))} |")
        lines.append("")
    return "\n".join(lines)


def attack_panels(rows: list[dict], attacks: list[str]) -> dict:
    panels = {}
    for r in rows:
        groups = panels.setdefault(r["dataset"], {})
        mp = r["main_task"].get("top_mlp", r["main_task"].get("top_none"))
        if mp["mean"] is not None:                   # every seed diverged: nothing to draw
            groups.setdefault("main task", {})[r["setting"]] = (mp["mean"], mp["std"])
        for a in attacks:
            at = r["attacks"].get(a)
            if at is not None and at["mean"] is not None:
                groups.setdefault(attack_label(a), {})[r["setting"]] = (at["mean"],
                                                                                 at["std"])
    return panels


def finish(records: Records, experiment: str, csv_rows: list[dict], markdown: str,
           draw) -> str:
    shutil.rmtree(records.checkpoints(), ignore_errors=True)     # every record is finished
    write_csv_atomic(os.path.join(records.out, "results.csv"), csv_rows)
    write_text_atomic(os.path.join(records.out, "results.md"), markdown)
    draw(os.path.join(records.out, f"{experiment}.png"))
    return markdown


def effectiveness(cfg: dict, out: str, progress: bool = True, provenance: dict | None = None) -> str:
    """Figure 1: each attack's success with no defense and with each setting (LADSG)."""
    records = Records(out, provenance)
    todo = [(d, label, lambda s=spec: make_defense(s[0], **s[1]), {})
            for d in cfg["datasets"] for label, spec in cfg["settings"].items()]
    return bar_experiment(records, "effectiveness", todo, cfg, progress,
                          "no defense vs LADSG (mean ± std over seeds)")


def bar_experiment(records: Records, experiment: str, todo: list, cfg: dict, progress: bool,
                   title: str) -> str:
    """The rows of `todo` against `cfg["attacks"]`, drawn as grouped bars per data set."""
    run_rows(records, todo, cfg, progress)
    rows = scored(records)
    return finish(records, experiment, attack_csv_rows(rows),
                  attack_markdown(rows, cfg["attacks"]),
                  lambda p: plots.grouped_bars(attack_panels(rows, cfg["attacks"]), p,
                                               "accuracy / attack success", title))


def knob_label(defense: str, value) -> str:
    knob = DEFENSES[defense].knob
    return defense if value is None or knob is None else f"{defense} {knob}={value:g}"


def tradeoff(cfg: dict, out: str, progress: bool = True, provenance: dict | None = None) -> str:
    """Figure 2: main-task accuracy against attack success for every defense and knob value.
    Each defense's knob values are one grid (`defense_rows`): all its points train in the same
    compiled programs (a vmapped grid × seeds where `auto` vmaps)."""
    records = Records(out, provenance)
    groups = [(d, "none", [None]) for d in cfg["datasets"]]
    groups += [(d, name, values) for d in cfg["datasets"] for name, values in cfg["knobs"].items()]
    run_grids(records, groups, cfg, progress)
    rows = scored(records)
    panels = {}
    for a in cfg["attacks"]:
        run = "top_none" if a.startswith("direct") else "top_mlp"
        for r in rows:
            at, mp = r["attacks"].get(a), r["main_task"][run]
            if at is not None and at["mean"] is not None and mp["mean"] is not None:
                curves = panels.setdefault(f"{r['dataset']}: {attack_label(a)}", {})
                curves.setdefault(r["defense"], []).append(
                    (at["mean"], at["std"], mp["mean"], mp["std"], r.get("knob_value")))
    skipped = [f"- {r['dataset']} {r['setting']}: {r['skipped']}" for r in records.records
               if "skipped" in r]
    markdown = attack_markdown(rows, cfg["attacks"]) + ("\nNot applicable:\n" + "\n".join(
        skipped) + "\n" if skipped else "")
    return finish(records, "tradeoff", attack_csv_rows(rows, ("defense", "knob_value")),
                  markdown, lambda p: plots.tradeoff_curves(panels, p))


def timed(fn) -> float:
    start = time.perf_counter()
    jax.block_until_ready(fn())
    return time.perf_counter() - start


def train_epochs(runner: Runner, states: list, data, epochs: int) -> list:
    """`epochs` epochs of every seed group's state, as `Runner.fit` runs them."""
    for _ in range(epochs):
        states = [runner.epoch(state, data)[0] for state in states]
    return states


def cost(cfg: dict, out: str, progress: bool = True, provenance: dict | None = None) -> str:
    """Figure 3: ms per epoch (warm, median over repeats: the epochs alone, as `fit` runs them,
    each with its test evaluation), the jitted initialization apart as `setup` (parameters and
    the defense's own training, e.g. LADSG's teacher, CAE's autoencoder), and compile seconds
    (the first whole run) per defense."""
    records = Records(out, provenance)
    todo = [(d, name) for d in cfg["datasets"] for name in cfg["defenses"]]
    datasets = {}
    for dataset, name in tqdm(todo, unit="defense", disable=not progress, desc="cost"):
        if records.find(dataset=dataset, setting=name):
            continue
        data = datasets.setdefault(dataset, load(dataset))
        try:
            config = preset_config(dataset, epochs=cfg["epochs"], defense=make_defense(name))
            runner = Runner(config)
            keys = seed_keys(0, cfg["seeds"])
            fit = lambda: runner.fit(data, keys).test_accuracy               # noqa: E731
            with count_compilations() as compiles:
                first = timed(fit)
            setups, per_epoch = [], []
            for _ in range(cfg["repeats"]):
                setups.append(timed(lambda: runner.initial_states(data, keys)))
                states = runner.initial_states(data, keys)
                per_epoch.append(1000 * timed(lambda: train_epochs(runner, states, data,
                                                                   cfg["epochs"]))
                                 / cfg["epochs"])
        except ConfigError as err:
            records.add({"dataset": dataset, "setting": name, "skipped": str(err)})
            continue
        setup = statistics.median(setups)
        records.add({"dataset": dataset, "setting": name, "seeds": cfg["seeds"],
                     "epochs": cfg["epochs"], "loop": runner.loop, "seed_strategy": runner.seeds,
                     "backend": jax.default_backend(), "ms_per_epoch": summary(per_epoch),
                     "ms_per_epoch_median": statistics.median(per_epoch),
                     "setup_ms": 1000 * setup,
                     "first_call_s": first, "compile_s": compiles.seconds,
                     "compilations": compiles.count})
    rows = [r for r in records.records if "skipped" not in r]
    lines, csv_rows, panels = [], [], {}
    for dataset in dict.fromkeys(r["dataset"] for r in rows):
        mine = [r for r in rows if r["dataset"] == dataset]
        base = next(r["ms_per_epoch_median"] for r in mine if r["setting"] == "none")
        lines += [f"### {dataset} ({mine[0]['epochs']} epochs, {cfg['repeats']} warm repeats, "
                  f"{mine[0]['backend']}, loop {mine[0]['loop']})", "",
                  "| defense | ms per epoch (median) | mean ± std | × none | setup ms | "
                  "compile s |", "|---|---|---|---|---|---|"]
        for r in mine:
            ratio = r["ms_per_epoch_median"] / base
            ms = r["ms_per_epoch"]
            lines.append(f"| {r['setting']} | {r['ms_per_epoch_median']:.1f} | {ms['mean']:.1f} "
                         f"± {ms['std']:.1f} | {ratio:.2f} | {r['setup_ms']:.1f} | "
                         f"{r['compile_s']:.1f} |")
            csv_rows.append({"dataset": dataset, "defense": r["setting"],
                             "ms_per_epoch_median": r["ms_per_epoch_median"],
                             "ms_per_epoch_mean": ms["mean"], "ms_per_epoch_std": ms["std"],
                             "ratio_vs_none": ratio, "setup_ms": r["setup_ms"],
                             "compile_s": r["compile_s"]})
            panels.setdefault(dataset, {})[r["setting"]] = (ms["mean"], ms["std"],
                                                            r["compile_s"])
        lines.append("")
    return finish(records, "cost", csv_rows, "\n".join(lines),
                  lambda p: plots.cost_bars(panels, p))


def stage_label(stages) -> str:
    return "+".join(stages) if stages else "none"


def stage_defense(stages) -> Defense:
    return LADSG(stages=tuple(stages)) if stages else Defense()


def ablation(cfg: dict, out: str, progress: bool = True, provenance: dict | None = None) -> str:
    """Figure 4: each LADSG stage alone, in pairs and all three."""
    records = Records(out, provenance)
    todo = [(d, stage_label(s), lambda s=s: stage_defense(s), {"stages": list(s)})
            for d in cfg["datasets"] for s in cfg["stage_sets"]]
    return bar_experiment(records, "ablation", todo, cfg, progress,
                          "LADSG's stages (mean ± std over seeds)")


def party0_embeddings(config, data, result, seed: int, x) -> np.ndarray:
    """The attacker's bottom-model outputs (evaluation mode) for `x` under one seed's run."""
    take = lambda tree: jax.tree.map(lambda a: a[seed], tree)         # noqa: E731
    params = take(result.state.params["party_0"]["bottom"])
    stats = take(result.state.batch_stats.get("party_0", {}).get("bottom", {}))
    bottom = VFLModel.from_config(config, data.num_classes).bottom_module()
    return np.asarray(apply_stateful(bottom, params, stats, x, False)[0])


def tsne(cfg: dict, out: str, progress: bool = True, provenance: dict | None = None) -> str:
    """Figure 5: t-SNE (scikit-learn) of party 0's embeddings of training samples, with the
    silhouette of the embeddings by true label (how well the labels cluster: what clustering
    and model completion exploit), mean ± std over seeds."""
    from sklearn.manifold import TSNE
    from sklearn.metrics import silhouette_score

    records = Records(out, provenance)
    todo = [(d, s) for d in cfg["datasets"] for s in cfg["stage_sets"]]
    for dataset, stages in tqdm(todo, unit="setting", disable=not progress, desc="tsne"):
        label = stage_label(stages)
        if records.find(dataset=dataset, setting=label):
            continue
        data = load(dataset)
        overrides = {"epochs": cfg["epochs"]} if cfg.get("epochs") else {}
        config = preset_config(dataset, defense=stage_defense(stages), **overrides)
        ckpt = records.checkpoints(dataset, label)
        result = Runner(config).fit(data, seed_keys(0, cfg["seeds"]), checkpoint_dir=ckpt)
        reasons = divergence(result, data.num_classes)
        good_seeds = [s for s, why in enumerate(reasons) if why is None]
        shutil.rmtree(ckpt, ignore_errors=True)
        if not good_seeds:
            records.add({"dataset": dataset, "setting": label, "diverged": reasons,
                         "skipped": f"every seed diverged ({reasons[0]})"})
            continue
        n = min(cfg["samples"], data.num_train)
        x, y = data.train_x[0][:n], np.asarray(data.train_y[:n])
        embeddings = [party0_embeddings(config, data, result, s, x) for s in good_seeds]
        silhouettes = [float(silhouette_score(e, y)) for e in embeddings]
        coords = TSNE(n_components=2, init="pca", perplexity=min(30, n - 1),
                      random_state=0).fit_transform(embeddings[0])
        records.add({"dataset": dataset, "setting": label, "stages": list(stages),
                     "seeds": cfg["seeds"], "samples": n,
                     "main_task": summary(kept(result.final_test_accuracy, reasons)),
                     "silhouette": {**summary(silhouettes), "per_seed": silhouettes},
                     "diverged": reasons, "tsne": coords.round(3).tolist(),
                     "labels": y.tolist()})
    csv_rows, panels = [], {}
    for r in (r for r in records.records if "skipped" not in r):
        mp, sil = r["main_task"], r["silhouette"]
        csv_rows.append({"dataset": r["dataset"], "setting": r["setting"],
                         "main_task_mean": mp["mean"], "main_task_std": mp["std"],
                         "silhouette_mean": sil["mean"], "silhouette_std": sil["std"]})
        panels[f"{r['dataset']}: {r['setting']}"] = (
            r["tsne"], r["labels"], f"MP {mp['mean']:.3f}, silhouette {sil['mean']:.2f} ± "
                                    f"{sil['std']:.2f}")
    lines = ["| data set | setting | MP (top mlp) | silhouette of party 0's embeddings |",
             "|---|---|---|---|"] + [
        f"| {c['dataset']} | {c['setting']} | {c['main_task_mean']:.3f} ± {c['main_task_std']:.3f}"
        f" | {c['silhouette_mean']:.3f} ± {c['silhouette_std']:.3f} |" for c in csv_rows]
    return finish(records, "tsne", csv_rows, "\n".join(lines) + "\n",
                  lambda p: plots.tsne_grid(panels, p))


RUNNERS = {"effectiveness": effectiveness, "tradeoff": tradeoff, "cost": cost,
           "ablation": ablation, "tsne": tsne}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     parents=[plugin_parser()])
    parser.add_argument("experiment", choices=EXPERIMENTS + ("all",))
    parser.add_argument("--size", default="smoke", choices=SIZES)
    parser.add_argument("--config", help="a config file of the same form (default "
                                         "experiments/configs/<experiment>.json)")
    parser.add_argument("--out", help="results folder (default runs/<experiment>/<size>)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    compile_cache.add_argument(parser)
    args = parser.parse_args(argv)
    compile_cache.from_args(args)
    names = EXPERIMENTS if args.experiment == "all" else (args.experiment,)
    run_provenance = provenance(sys.argv[1:] if argv is None else argv)
    try:
        load_plugins(args.plugin)
        configs = {name: load_config(name, args.size, args.config) for name in names}
        for name, cfg in configs.items():                 # every config checked first
            if args.out:
                out = args.out if len(names) == 1 else os.path.join(args.out, name)
            else:
                out = os.path.join("runs", name, args.size)
            print(RUNNERS[name](cfg, out, progress=not args.quiet, provenance=run_provenance))
            print(f"wrote {out}/results.json, results.csv, results.md, {name}.png",
                  file=sys.stderr)
    except ConfigError as err:
        print(f"figures: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
