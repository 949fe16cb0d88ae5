"""Running the registered attacks against trained VFL runs and scoring them (DESIGN §4, §6).

The suite trains the runs the asked attacks need (honest, party 0 on the malicious
optimizer) and loops over them: each `Attack` of the registry reads only what it declares of
what party 0 holds (its feature slices, bottom parameters, received wire, a few known
labels) and returns predictions; `AttackRunner.run` scores them, the one place the true labels
are read.
"""
from __future__ import annotations

import os

import jax
import numpy as np

from ladsg_jax.attacks.base import AttackContext
from ladsg_jax.attacks.known import select_known_labels
from ladsg_jax.attacks.malicious import MaliciousOptimizer
from ladsg_jax.attacks.predictions import score
from ladsg_jax.attacks.registry import ATTACKS, attack_spec, check_fits
from ladsg_jax.attacks.settings import AttackSettings, MixMatchConfig  # noqa: F401 (re-exported)
from ladsg_jax.attacks.view import AttackerView, attacker_view
from ladsg_jax.config import TrainConfig
from ladsg_jax.data.arrays import VFLData
from ladsg_jax.divergence import divergence, final_accuracy, kept, message_norms
from ladsg_jax.errors import ConfigError
from ladsg_jax.results import summary
from ladsg_jax.vfl.model import VFLModel
from ladsg_jax.vfl.runner import Runner, seed_keys


class AttackRunner:
    """Runs and scores the attacks for one model, data set and settings. An attack gets the
    `AttackContext` (no labels) and the attacker's view; its predictions are scored here, the
    one place that reads the true labels. Compiled pieces live in the context, built on first
    use and reused across seeds and calls."""

    def __init__(self, config: TrainConfig, data: VFLData, settings: AttackSettings):
        self.config, self.data, self.settings = config, data, settings
        self.model = VFLModel.from_config(config, data.num_classes)
        self.bottom = self.model.bottom_module()
        self.context = AttackContext(config, settings, self.bottom, data.num_classes,
                                     data.num_train)

    def run(self, name: str, view: AttackerView, key: jax.Array) -> dict:
        """One attack's scores against one run; the attack sees only what it reads."""
        attack = attack_spec(name)
        out = dict(attack.run(self.context, view.restricted(attack.reads), key))
        if "score" not in out:
            raise ConfigError(f"attack {name!r}", "its run function returned no 'score'")
        labels_of = {"train": self.data.train_y, "test": self.data.test_y}
        grade = lambda p: score(p, attack.metric, labels_of, self.data.num_classes,
                                f"attack {name!r}")
        grade_top1 = lambda p: score(p, "top1", labels_of, self.data.num_classes,
                                     f"attack {name!r}")[1]
        metric, value = grade(out["score"])
        scored = {"metric": metric, "score": value}
        recovered = recovered_labels(out, attack.metric)
        if recovered is not None:
            scored["recovery"] = grade_top1(recovered)
        if "train_score" in out:
            scored["train_score"] = grade(out["train_score"])[1]
        if "subsets" in out:           # samples it picked itself, e.g. those it certified
            whole = max(np.size(out["score"].index), 1)
            scored["subsets"] = {
                k: {"precision": grade_top1(p) if np.size(p.index) else None,
                    "coverage": np.size(p.index) / whole} for k, p in out["subsets"].items()}
        if "choice" in out:            # what the attack chose itself, from what it holds
            scored["choice"] = str(out["choice"])
        if "readings" in out:
            scored["reading"] = out["reading"]
            scored["readings"] = {k: grade(p)[1] for k, p in out["readings"].items()}
        return scored


def recovered_labels(out: dict, metric: str):
    """What an attack's label recovery is scored on (`ladsg_jax.app.ranking`): its predictions
    of training samples' labels (its score's, or its `train_score`'s when it scores the test
    split, as model completion does); None for a leak AUC, whose scores name no class."""
    if metric == "auc":
        return None
    if out["score"].split == "train":
        return out["score"]
    return out.get("train_score")


def train_for_attacks(config: TrainConfig, data: VFLData, num_seeds: int, seed: int,
                      malicious: bool, gamma: float = 1.0, progress: bool | str = False,
                      checkpoint_dir: str | None = None, hparams=None, rule: str = "paper",
                      embeddings: bool = False):
    """A run recording every epoch's wire (and the sent embeddings with `embeddings`); party 0
    uses the malicious SGD (`rule`, at the honest parties' learning rate and step decay, a
    grid's traced rate included) when asked. With `hparams` (a grid,
    `vfl.runner.stack_hparams`), one run per (point, seed), point-major."""
    config = config.replace(record_wire="all", record_embeddings=embeddings)
    optimizers = None
    if malicious:
        optimizers = {"party_0": MaliciousOptimizer.for_config(config, gamma, rule)}
    return Runner(config, optimizers).fit(data, seed_keys(seed, num_seeds), progress=progress,
                                          checkpoint_dir=checkpoint_dir, hparams=hparams)


def run_attacks(config: TrainConfig, data: VFLData, attacks: list[str], num_seeds: int = 5,
                seed: int = 0, settings: AttackSettings = AttackSettings(),
                hybrid: bool = False, progress: bool | str = False,
                attack_runner: "AttackRunner | None" = None,
                checkpoint_dir: str | None = None) -> dict:
    """Trains what the attacks need (an honest run, a malicious one) and scores each attack.

    With `hybrid=True` there is one run, with party 0 on the malicious optimizer, and every
    attack reads it. Returns `{"main_task": {...}, "attacks": {name: {"metric", "per_seed",
    "mean", "std"}}}`; `main_task` is the test accuracy of the honest run (of the malicious
    one when there is no honest run); `defense_metrics[run][name]`, when the defense reports
    any, their means over the epochs (party 0's entry), summarized over seeds. Pass an
    `attack_runner` built for the same bottom model, data and settings to reuse its compiled
    attacks across calls; with `checkpoint_dir`, the training runs checkpoint every epoch
    under it (`honest/`, `malicious/`) and resume when interrupted.
    """
    return attack_grid(config, data, attacks, num_seeds, seed, settings, hybrid, progress,
                       attack_runner, checkpoint_dir)[0]


def attack_grid(config: TrainConfig, data: VFLData, attacks: list[str], num_seeds: int = 5,
                seed: int = 0, settings: AttackSettings = AttackSettings(),
                hybrid: bool = False, progress: bool | str = False,
                attack_runner: "AttackRunner | None" = None,
                checkpoint_dir: str | None = None, hparams=None,
                defenses: list | None = None) -> list[dict]:
    """`run_attacks` over a hyperparameter grid (`hparams`, leaves leading with G points; None:
    the config's values): every point's runs train in the same compiled programs, and the list
    holds one `run_attacks` report per point, equal to that point's separate run. `defenses`:
    each point's defense with its values, what an attack that reads "defense" sees (default
    the config's)."""

    def ckpt(kind: str) -> str | None:
        return checkpoint_dir and os.path.join(checkpoint_dir, kind)

    for name in attacks:
        check_fits(name, config.top_model, data.num_classes)
    known_idx = select_known_labels(data.train_y, settings.known_labels, data.num_classes, seed)
    needs = {"malicious"} if hybrid else {ATTACKS[name].training for name in attacks}
    needs = needs or {"honest"}
    sent = any("embeddings_sent" in ATTACKS[name].reads for name in attacks)
    runs = {}
    if needs & {"honest", "none"}:
        runs["honest"] = train_for_attacks(config, data, num_seeds, seed, False,
                                           progress=progress, checkpoint_dir=ckpt("honest"),
                                           hparams=hparams, embeddings=sent)
    if "malicious" in needs:
        runs["malicious"] = train_for_attacks(config, data, num_seeds, seed, True,
                                              settings.malicious_gamma, progress=progress,
                                              checkpoint_dir=ckpt("malicious"), hparams=hparams,
                                              rule=settings.malicious_rule, embeddings=sent)
    runner = attack_runner or AttackRunner(config, data, settings)
    keys = jax.random.split(jax.random.key(seed + 1), num_seeds)
    points = 1 if hparams is None else jax.tree.leaves(hparams)[0].shape[0]
    diverged = {kind: divergence(run, data.num_classes) for kind, run in runs.items()}
    defenses = defenses or [config.defense] * points
    return [point_report(runs, diverged, runner, attacks, data, known_idx, keys, hybrid, p,
                         num_seeds, defenses[p]) for p in range(points)]


def point_report(runs: dict, diverged: dict, runner: AttackRunner, attacks: list[str],
                 data: VFLData, known_idx, keys, hybrid: bool, point: int,
                 num_seeds: int, defense=None) -> dict:
    """The report of grid point `point`: its seeds' runs (`point·S + seed`) attacked. A run
    that diverged (`diverged[kind][run]`, `ladsg_jax.divergence`) is not attacked: its seed's
    scores are None and left out of the summaries; `diverged` lists each training run's
    reasons."""
    rows = slice(point * num_seeds, (point + 1) * num_seeds)
    reasons = {kind: why[rows] for kind, why in diverged.items()}
    scores = {name: [] for name in attacks}
    for s in range(num_seeds):
        views = {kind: attacker_view(run, point * num_seeds + s, data, known_idx, defense)
                 for kind, run in runs.items()}
        for name in attacks:
            kind = ("malicious" if hybrid or ATTACKS[name].training == "malicious"
                    else "honest")
            scores[name].append(None if reasons[kind][s] else
                                runner.run(name, views[kind], keys[s]))
    main_kind = "honest" if "honest" in runs else "malicious"
    out = {"main_task": final_accuracy(runs[main_kind], rows, reasons[main_kind]),
           "known_labels": int(known_idx.size), "hybrid": hybrid, "attacks": {},
           "diverged": reasons}
    if "malicious" in runs:
        out["main_task_malicious"] = final_accuracy(runs["malicious"], rows,
                                                    reasons["malicious"])
        del out["main_task_malicious"]["per_seed"]
    if runs[main_kind].message_norm is not None:
        out["message_norm"] = message_norms(np.asarray(runs[main_kind].message_norm)[rows],
                                            reasons[main_kind])
    for kind, run in runs.items():
        for name, values in run.defense_metrics.items():     # e.g. ND's flag rates
            values = np.asarray(values)[rows]
            per_seed = values.reshape(num_seeds, values.shape[1], -1)[..., 0].mean(axis=1)
            out.setdefault("defense_metrics", {}).setdefault(kind, {})[name] = summary(
                kept(per_seed, reasons[kind]))
    for name, per_seed in scores.items():
        done = [r for r in per_seed if r is not None]
        values = [None if r is None else r["score"] for r in per_seed]
        record = {"metric": done[0]["metric"] if done else ATTACKS[name].metric,
                  "per_seed": values, **summary(values)}
        if done and "train_score" in done[0]:
            record["train"] = summary([None if r is None else r["train_score"]
                                       for r in per_seed])
        if done and "recovery" in done[0]:
            record["recovery"] = summary([None if r is None else r["recovery"]
                                          for r in per_seed])
        if done and "subsets" in done[0]:
            record["subsets"] = {
                k: {part: summary([None if r is None else r["subsets"][k][part]
                                   for r in per_seed]) for part in ("precision", "coverage")}
                for k in done[0]["subsets"]}
        if done and "choice" in done[0]:
            record["choices"] = [None if r is None else r["choice"] for r in per_seed]
        if done and "readings" in done[0]:             # the direct attacks' other readings
            record["reading"] = done[0]["reading"]
            record["readings"] = {k: summary([None if r is None else r["readings"][k]
                                              for r in per_seed])
                                  for k in done[0]["readings"]}
        out["attacks"][name] = record
    return out

