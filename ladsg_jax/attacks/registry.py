"""The attacks by name (DESIGN §4): one `Attack` entry each, in table order.

An entry carries the attack's run function (in the attack's own file), what it reads, its
metric, the setting it needs and its table group and column; the suite, the tables, the demo
and the figures loop over `ATTACKS`. Plugins add entries with `register_attack`
(`ladsg_jax.app.plugins`).
"""
from __future__ import annotations

from ladsg_jax.attacks import (adaptive, certificate, clustering, completion, direct, inversion,
                               neighbour_inversion, scoring)
from ladsg_jax.attacks.base import GROUPS, Attack
from ladsg_jax.errors import ConfigError, unknown

WIRE = ("wire_last",)
KNOWN = ("known_labels",)

ATTACKS: dict[str, Attack] = {attack.name: attack for attack in (
    Attack("direct", "direct label inference: first negative entry of each message, at the "
                     "settings' epoch (default the first, as Fu et al. 2022)",
           direct.run_first_negative, "top1", ("wire_all",), top_model="none", group="none"),
    Attack("direct_argmin", "direct label inference: argmin of each message, at the "
                            "settings' epoch", direct.run_argmin, "top1", ("wire_all",),
           top_model="none", group="none", column="argmin", label="direct (argmin)"),
    Attack("direct_averaged", "adaptive direct inference: argmin of each sample's messages "
                              "averaged over the epochs (random substitutions cancel)",
           direct.run_averaged, "top1", ("wire_all",), top_model="none", group="none",
           column="avg-argmin", label="direct (averaged)"),
    Attack("certificate", "adaptive direct inference: argmin of each entry's minimum over the "
                          "epochs; certified where an entry is below what the public defense "
                          "lets a non-label class reach (label anonymization's ε/(k−1))",
           certificate.run_certificate, "top1", ("wire_all", "defense"), top_model="none",
           group="none", column="cert", label="certificate"),
    Attack("neighbour_inversion", "adaptive direct inference against neighbour substitution: "
                                  "rebuild the batch's mixing from the attacker's own "
                                  "embeddings, solve it for the true messages, argmin",
           neighbour_inversion.run_neighbour_inversion, "top1",
           ("features", "bottom", "wire_all", "embeddings_sent", "defense"), top_model="none",
           group="none", column="unmix", label="neighbour inversion"),
    Attack("message_classifier", "adaptive: a scorer of each class entry of a sample's "
                                 "messages over the epochs (raw, centred, unit; extremes, "
                                 "ranks), learned from the known labels",
           adaptive.run_message_classifier, "top1", ("wire_all",) + KNOWN, group="none",
           column="msg-clf", label="message classifier"),
    Attack("combined_classifier", "adaptive: the best, by cross-validation on the known "
                                  "labels, of the message classifier, a classifier of the "
                                  "attacker's raw features and embeddings, or their product",
           adaptive.run_combined, "top1", ("features", "bottom", "wire_all") + KNOWN,
           group="none", column="combined", label="combined classifier"),
    Attack("passive_mc", "passive model completion with MixMatch (Fu et al. 2022)",
           completion.run_completion, "completion", ("features", "bottom") + KNOWN,
           column="passive", label="passive MC"),
    Attack("active_mc", "active model completion: malicious SGD during training, then "
                        "MixMatch (Fu et al. 2022)", completion.run_completion, "completion",
           ("features", "bottom") + KNOWN, training="malicious", group="malicious",
           column="active", label="active MC"),
    Attack("raw_mc", "baseline: a fresh bottom fine-tuned the same way on the attacker's "
                     "raw features (no VFL signal; AP_raw of DESIGN §6)", completion.run_raw,
           "completion", ("features",) + KNOWN, training="none", column="raw",
           label="raw features"),
    Attack("raw_classifier", "baseline: logistic regression of the attacker's raw features "
                             "from the known labels (no VFL signal; the floor with raw_mc)",
           adaptive.run_raw_classifier, "completion", ("features",) + KNOWN, training="none",
           column="raw-lr", label="raw features (logistic)"),
    Attack("norm_scoring", "norm scoring of messages (Li et al. 2022)", scoring.run_norm, "auc",
           ("wire_all",) + KNOWN, binary_only=True, column="norm", label="norm scoring"),
    Attack("direction_scoring", "direction scoring against a known positive's message "
                                "(Li et al. 2022)", scoring.run_direction, "auc",
           ("wire_all",) + KNOWN, binary_only=True, column="direction",
           label="direction scoring"),
    Attack("cluster_embeddings", "k-means of the attacker's embeddings, matched with known "
                                 "labels (after Sun et al. 2022)", clustering.run_embeddings,
           "top1", ("features", "bottom") + KNOWN, column="clust-emb"),
    Attack("cluster_messages", "k-means of the received messages, matched with known "
                               "labels (after Sun et al. 2022)", clustering.run_messages,
           "top1", ("wire_all",) + KNOWN, column="clust-msg"),
    Attack("inversion", "batch label reconstruction by gradient inversion, no dummy head "
                        "(Liu et al. 2021)", inversion.run_inversion, "top1",
           ("features", "bottom") + WIRE, group="none", column="invert"),
    Attack("inversion_head", "batch label reconstruction by gradient inversion with a "
                             "dummy linear head (Liu et al. 2021)", inversion.run_inversion_head,
           "top1", ("features", "bottom") + WIRE, group="none", column="invert+head"),
)}
HYBRID = "hybrid"    # not an attack: the active attack's training, then every attack on it


def register_attack(attack: Attack, source: str = "") -> None:
    """Adds `attack` to the registry; the same value again is a no-op, another value under a
    registered name a `ConfigError` naming `source`."""
    where = f" ({source})" if source else ""
    if not isinstance(attack, Attack):
        raise ConfigError("plugin", f"{source or 'attack'}: expected a ladsg_jax.attacks.base."
                                    f"Attack, got {type(attack).__name__}")
    if attack.name == HYBRID or ATTACKS.get(attack.name, attack) is not attack:
        raise ConfigError("plugin", f"{source or attack.name}: attack name {attack.name!r} "
                                    f"is already registered{where}")
    ATTACKS[attack.name] = attack


def attack_spec(name: str) -> Attack:
    if name not in ATTACKS:
        raise unknown("attack", name, ATTACKS)
    return ATTACKS[name]


def fits(attack: Attack, top_model: str, num_classes: int) -> bool:
    return (not (attack.needs_sum_top and top_model != "none")
            and not (attack.top_model == "mlp" and top_model == "none")
            and not (attack.binary_only and num_classes != 2))


def check_fits(name: str, top_model: str, num_classes: int) -> None:
    """Raises `ConfigError` when attack `name` does not apply to the setting."""
    spec = attack_spec(name)
    if spec.needs_sum_top and top_model != "none":
        raise ConfigError("top_model", f"the {name} attack needs top_model 'none' (the logits "
                                       f"are the sum of the parties' outputs), got {top_model!r}")
    if spec.top_model == "mlp" and top_model == "none":
        raise ConfigError("top_model", f"the {name} attack needs a top model (mlp), got "
                                       "'none'")
    if spec.binary_only and num_classes != 2:
        raise ConfigError("attack", f"{name} scores messages for a binary task; the data set "
                                    f"has {num_classes} classes")


def attack_groups(num_classes: int | None = None) -> dict[str, tuple]:
    """The table's runs and the attacks each is scored with, in registry order; with
    `num_classes`, only those that fit the data."""
    return {group: tuple(name for name, a in ATTACKS.items() if a.group == group
                         and (num_classes is None or not (a.binary_only and num_classes != 2)))
            for group in GROUPS}


def is_baseline(name: str) -> bool:
    """Whether `name` is a registered attack that reads no VFL run (training "none": the
    raw-feature floors), never a candidate for the strongest attack."""
    return name in ATTACKS and ATTACKS[name].training == "none"


def columns() -> tuple[tuple[str, str], ...]:
    """(attack name, column heading) of every attack, in table order."""
    return tuple((name, attack.column) for name, attack in ATTACKS.items())


def hybrid_attacks(top_model: str, num_classes: int) -> list[str]:
    """What a hybrid run scores: active model completion, the raw floor and every
    post-training attack that fits the setting, all on the run with the malicious optimizer."""
    names = [n for n, a in ATTACKS.items() if a.training in ("malicious", "none")]
    names += [n for n, a in ATTACKS.items() if a.training == "honest" and a.group != "malicious"
              and n != "passive_mc" and fits(a, top_model, num_classes)]
    return names
