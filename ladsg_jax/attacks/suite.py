"""Running attacks against trained VFL runs and scoring them (DESIGN §4, §6).

Every attack reads only what its party holds: party 0's feature slices, its bottom
parameters, the messages it received (the run's wire record) and a few known labels. The true
labels are used only to score.
"""
from __future__ import annotations

import dataclasses
import os
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from ladsg_jax import metrics
from ladsg_jax.attacks.clustering import cluster_attack
from ladsg_jax.attacks.completion import MixMatchConfig, make_model_completion
from ladsg_jax.attacks.direct import direct_label_inference
from ladsg_jax.attacks.inversion import invert_labels
from ladsg_jax.attacks.known import select_known_labels
from ladsg_jax.attacks.malicious import malicious_sgd
from ladsg_jax.attacks.registry import ATTACKS, attack_spec, check_fits
from ladsg_jax.attacks.scoring import direction_scores, norm_scores
from ladsg_jax.chunks import map_in_chunks
from ladsg_jax.config import TrainConfig
from ladsg_jax.data.arrays import VFLData
from ladsg_jax.models import apply_stateful, split_variables
from ladsg_jax.results import summary
from ladsg_jax.vfl.model import VFLModel
from ladsg_jax.vfl.runner import Runner, seed_keys
from ladsg_jax.vfl.train import Result, WireRecord


@dataclasses.dataclass(frozen=True)
class AttackSettings:
    """The attacker's resources and the knobs of the attacks."""

    known_labels: int = 40
    mixmatch: MixMatchConfig = MixMatchConfig()
    scoring_epochs: int = 1
    inversion_batches: int = 8
    inversion_steps: int = 300
    inversion_learning_rate: float = 0.05
    malicious_gamma: float = 1.0


@struct.dataclass
class AttackerView:
    """What party 0 (the passive party) holds after a run."""

    bottom_params: dict
    bottom_stats: dict        # its BatchNorm running statistics ({} without BatchNorm)
    train_x: jax.Array
    test_x: jax.Array
    wire: WireRecord          # every epoch's messages, (epochs, num_batches, B, d)
    known_idx: jax.Array
    known_y: jax.Array


def attacker_view(result: Result, seed_index: int, data: VFLData, known_idx) -> AttackerView:
    take = lambda a: a[seed_index]
    known_idx = jnp.asarray(known_idx)
    stats = result.state.batch_stats.get("party_0", {}).get("bottom", {})
    return AttackerView(bottom_params=jax.tree.map(take, result.state.params["party_0"]["bottom"]),
                        bottom_stats=jax.tree.map(take, stats),
                        train_x=jnp.asarray(data.train_x[0]), test_x=jnp.asarray(data.test_x[0]),
                        wire=jax.tree.map(take, result.wire), known_idx=known_idx,
                        known_y=jnp.asarray(data.train_y)[known_idx])


def norm_orientation(norms, indices, known_idx, known_y) -> float:
    """+1 or −1: the sign that makes the attacker's own known samples score as positives.

    Li et al.'s norm score points at the positive class only when that class is the rarer
    one; the attacker orients it with the leak AUC of the messages of its few known samples
    (+1 when those do not tell).
    """
    label_of = np.full(int(indices.max()) + 1, -1)
    known_idx = np.asarray(known_idx)
    in_range = known_idx < label_of.size
    label_of[known_idx[in_range]] = np.asarray(known_y)[in_range]
    labels = label_of[indices.ravel()]
    known = labels >= 0
    if len(set(labels[known].tolist())) < 2:
        return 1.0
    return 1.0 if metrics.leak_auc(norms.ravel()[known], labels[known]) >= 0.5 else -1.0


def mean_messages_per_sample(wire: WireRecord, num_samples: int, unit: bool = False):
    """Each sample's received messages averaged over the epochs it was seen in, and whether it
    was seen at all.

    Raw (`unit=False`): the adaptive attacker's answer to per-step random substitutes, whose
    random parts average out. As unit vectors (`unit=True`): a message's direction carries its
    label (softmax − onehot through the top model) while its norm mostly says how well the
    sample is already fit, so the attacker clusters directions.
    """
    total, count = 0.0, 0
    for epoch in range(wire.indices.shape[0]):
        messages, seen = wire.per_sample(num_samples, epoch)
        if unit:
            messages = messages / (jnp.linalg.norm(messages, axis=-1, keepdims=True) + 1e-12)
        total, count = total + messages, count + seen
    return total / jnp.maximum(count, 1)[:, None], count > 0


class AttackRunner:
    """The compiled pieces of the attacks for one model and data set, reused across seeds."""

    def __init__(self, config: TrainConfig, data: VFLData, settings: AttackSettings):
        self.config, self.data, self.settings = config, data, settings
        self.model = VFLModel.from_config(config, data.num_classes)
        self.bottom = self.model.bottom_module()
        complete, predict = make_model_completion(self.bottom, data.num_classes,
                                                  settings.mixmatch)
        self.complete, self.predict = jax.jit(complete), jax.jit(predict)
        raw_config = dataclasses.replace(settings.mixmatch, finetune_bottom=True)
        complete_raw, predict_raw = make_model_completion(self.bottom, data.num_classes,
                                                          raw_config)
        self.complete_raw, self.predict_raw = jax.jit(complete_raw), jax.jit(predict_raw)
        self.embed = jax.jit(lambda p, s, x: map_in_chunks(
            lambda c: apply_stateful(self.bottom, p, s, c, False)[0], x, config.eval_batch_size))
        self.invert = {head: jax.jit(partial(
            invert_labels, self.bottom, num_classes=data.num_classes, head=head,
            steps=settings.inversion_steps, learning_rate=settings.inversion_learning_rate))
            for head in (False, True)}

    def run(self, name: str, view: AttackerView, key: jax.Array) -> dict:
        """One attack's scores against one run."""
        data, spec = self.data, attack_spec(name)
        train_y, test_y = np.asarray(data.train_y), np.asarray(data.test_y)
        indices = np.asarray(view.wire.indices[-1])                    # (num_batches, B)
        messages = view.wire.messages[0][-1]                           # (num_batches, B, d)
        batch_labels = train_y[indices]
        # the scoring attacks read the batches of the last `scoring_epochs` epochs
        first = -self.settings.scoring_epochs
        all_indices = np.asarray(view.wire.indices[first:]).reshape(-1, indices.shape[-1])
        all_messages = view.wire.messages[0][first:].reshape(all_indices.shape + (-1,))
        all_labels = train_y[all_indices]
        if name in ("direct", "direct_argmin"):
            variant = "argmin" if name == "direct_argmin" else "first_negative"
            predicted = direct_label_inference(messages, variant)
            return {"metric": "top1", "score": metrics.top1_accuracy(predicted, batch_labels)}
        if name == "direct_averaged":
            mean_messages, seen = mean_messages_per_sample(view.wire, train_y.shape[0])
            predicted = direct_label_inference(mean_messages, "argmin")
            rows = np.flatnonzero(np.asarray(seen))
            return {"metric": "top1",
                    "score": metrics.top1_accuracy(np.asarray(predicted)[rows], train_y[rows])}
        if spec.metric == "completion":
            if name == "raw_mc":
                fresh, fresh_stats = split_variables(self.bottom.init(key, view.train_x[:2]))
                variables = self.complete_raw(key, fresh, fresh_stats, view.train_x,
                                              view.known_idx, view.known_y)
                predict = self.predict_raw
            else:
                variables = self.complete(key, view.bottom_params, view.bottom_stats,
                                          view.train_x, view.known_idx, view.known_y)
                predict = self.predict
            metric, test_score = metrics.main_score(predict(variables, view.test_x), test_y,
                                                  data.num_classes)
            _, train_score = metrics.main_score(predict(variables, view.train_x), train_y,
                                              data.num_classes)
            return {"metric": metric, "score": test_score, "train_score": train_score}
        if name == "norm_scoring":
            norms = np.asarray(norm_scores(all_messages))
            orientation = norm_orientation(norms, all_indices, np.asarray(view.known_idx),
                                           np.asarray(view.known_y))
            return {"metric": "auc",
                    "score": metrics.batched_leak_auc(orientation * norms, all_labels)}
        if name == "direction_scoring":
            known = np.zeros(train_y.shape[0], bool)
            known[np.asarray(view.known_idx)[np.asarray(view.known_y) == 1]] = True
            scores, valid = direction_scores(all_messages, jnp.asarray(known[all_indices]))
            return {"metric": "auc",
                    "score": metrics.batched_leak_auc(np.asarray(scores), all_labels,
                                                      mask=np.asarray(valid))}
        if name in ("cluster_embeddings", "cluster_messages"):
            if name == "cluster_embeddings":
                features = self.embed(view.bottom_params, view.bottom_stats, view.train_x)
                seen = None
            else:
                features, seen = mean_messages_per_sample(view.wire, train_y.shape[0], unit=True)
            features, seen = np.asarray(features), (np.ones(train_y.shape[0], bool)
                                                    if seen is None else np.asarray(seen))
            rows = np.flatnonzero(seen)
            position = np.full(train_y.shape[0], -1)
            position[rows] = np.arange(rows.size)
            known = np.asarray(view.known_idx)
            keep = position[known] >= 0
            predicted = cluster_attack(features[rows], position[known[keep]],
                                       np.asarray(view.known_y)[keep], data.num_classes)
            return {"metric": "top1", "score": metrics.top1_accuracy(predicted, train_y[rows])}
        if name in ("inversion", "inversion_head"):
            count = min(self.settings.inversion_batches, indices.shape[0])
            xs = view.train_x[jnp.asarray(indices[:count])]
            predicted = self.invert[name == "inversion_head"](
                view.bottom_params, xs, messages[:count], key=key)
            return {"metric": "top1",
                    "score": metrics.top1_accuracy(np.asarray(predicted).ravel(),
                                                   batch_labels[:count].ravel())}
        raise AssertionError(f"attack {name} has no runner")   # the registry lists only these


def train_for_attacks(config: TrainConfig, data: VFLData, num_seeds: int, seed: int,
                      malicious: bool, gamma: float = 1.0, progress: bool | str = False,
                      checkpoint_dir: str | None = None, hparams=None):
    """A run recording every epoch's wire; party 0 uses the malicious SGD when asked. With
    `hparams` (a grid, `vfl.runner.stack_hparams`), one run per (point, seed), point-major."""
    config = config.replace(record_wire="all")
    optimizers = None
    if malicious:
        optimizers = {"party_0": malicious_sgd(config.learning_rate, momentum=config.momentum,
                                               weight_decay=config.weight_decay, gamma=gamma)}
    return Runner(config, optimizers).fit(data, seed_keys(seed, num_seeds), progress=progress,
                                          checkpoint_dir=checkpoint_dir, hparams=hparams)


def hybrid_attacks(top_model: str, num_classes: int) -> list[str]:
    """What a hybrid run scores: active model completion and every post-training attack that
    fits the setting, all on the run trained with the malicious optimizer."""
    names = ["active_mc", "raw_mc"]
    for name in ATTACKS:
        spec = ATTACKS[name]
        if spec.training != "honest" or name == "passive_mc":
            continue
        if (spec.needs_sum_top and top_model != "none") or (spec.binary_only and
                                                            num_classes != 2):
            continue
        names.append(name)
    return names


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
                checkpoint_dir: str | None = None, hparams=None) -> list[dict]:
    """`run_attacks` over a hyperparameter grid (`hparams`, leaves leading with G points; None:
    the config's values): every point's runs train in the same compiled programs, and the list
    holds one `run_attacks` report per point, equal to that point's separate run."""

    def ckpt(kind: str) -> str | None:
        return checkpoint_dir and os.path.join(checkpoint_dir, kind)

    for name in attacks:
        check_fits(name, config.top_model, data.num_classes)
    known_idx = select_known_labels(data.train_y, settings.known_labels, data.num_classes, seed)
    needs = {"malicious"} if hybrid else {ATTACKS[name].training for name in attacks}
    needs = needs or {"honest"}
    runs = {}
    if needs & {"honest", "none"}:
        runs["honest"] = train_for_attacks(config, data, num_seeds, seed, False,
                                           progress=progress, checkpoint_dir=ckpt("honest"),
                                           hparams=hparams)
    if "malicious" in needs:
        runs["malicious"] = train_for_attacks(config, data, num_seeds, seed, True,
                                              settings.malicious_gamma, progress=progress,
                                              checkpoint_dir=ckpt("malicious"), hparams=hparams)
    runner = attack_runner or AttackRunner(config, data, settings)
    keys = jax.random.split(jax.random.key(seed + 1), num_seeds)
    points = 1 if hparams is None else jax.tree.leaves(hparams)[0].shape[0]
    return [point_report(runs, runner, attacks, data, known_idx, keys, hybrid, p, num_seeds)
            for p in range(points)]


def point_report(runs: dict, runner: AttackRunner, attacks: list[str], data: VFLData,
                 known_idx, keys, hybrid: bool, point: int, num_seeds: int) -> dict:
    """The report of grid point `point`: its seeds' runs (`point·S + seed`) attacked."""
    rows = slice(point * num_seeds, (point + 1) * num_seeds)
    scores = {name: [] for name in attacks}
    for s in range(num_seeds):
        views = {kind: attacker_view(run, point * num_seeds + s, data, known_idx)
                 for kind, run in runs.items()}
        for name in attacks:
            kind = ("malicious" if hybrid or ATTACKS[name].training == "malicious"
                    else "honest")
            scores[name].append(runner.run(name, views[kind], keys[s]))
    main_run = runs.get("honest", runs.get("malicious"))
    main_accuracy = np.asarray(main_run.final_test_accuracy)[rows]
    out = {"main_task": {**summary(main_accuracy), "per_seed": main_accuracy.tolist()},
           "known_labels": int(known_idx.size), "hybrid": hybrid, "attacks": {}}
    if "malicious" in runs:
        out["main_task_malicious"] = summary(
            np.asarray(runs["malicious"].final_test_accuracy)[rows])
    for kind, run in runs.items():
        for name, values in run.defense_metrics.items():     # e.g. ND's flag rates
            values = np.asarray(values)[rows]
            per_seed = values.reshape(num_seeds, values.shape[1], -1)[..., 0]
            out.setdefault("defense_metrics", {}).setdefault(kind, {})[name] = summary(
                per_seed.mean(axis=1))
    for name, per_seed in scores.items():
        record = {"metric": per_seed[0]["metric"], "per_seed": [r["score"] for r in per_seed],
                  **summary([r["score"] for r in per_seed])}
        if "train_score" in per_seed[0]:
            record["train"] = summary([r["train_score"] for r in per_seed])
        out["attacks"][name] = record
    return out
