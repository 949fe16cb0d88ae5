"""The attacks by name, and what setting each needs (DESIGN §4)."""
from __future__ import annotations

import dataclasses

from ladsg_jax.errors import ConfigError, unknown


@dataclasses.dataclass(frozen=True)
class AttackSpec:
    """What an attack reads and where it applies.

    `training`: "honest" (reads an honest run), "malicious" (the attacker trained with the
    malicious optimizer), or "none" (a baseline that reads no VFL signal). `needs_sum_top`: only
    with `top_model="none"`; `binary_only`: only for two classes.
    """

    name: str
    description: str
    metric: str                 # "top1" | "auc" | "completion" (top1 / F1 / top5 by classes)
    training: str = "honest"
    needs_sum_top: bool = False
    binary_only: bool = False


ATTACKS = {spec.name: spec for spec in (
    AttackSpec("direct", "direct label inference: first negative entry of each message (Fu et "
                         "al. 2022)", "top1", needs_sum_top=True),
    AttackSpec("direct_argmin", "direct label inference: argmin of each message", "top1",
               needs_sum_top=True),
    AttackSpec("direct_averaged", "adaptive direct inference: argmin of each sample's messages "
                                  "averaged over the epochs (random substitutions cancel)",
               "top1", needs_sum_top=True),
    AttackSpec("passive_mc", "passive model completion with MixMatch (Fu et al. 2022)",
               "completion"),
    AttackSpec("active_mc", "active model completion: malicious SGD during training, then "
                            "MixMatch (Fu et al. 2022)", "completion", training="malicious"),
    AttackSpec("raw_mc", "baseline: a fresh bottom fine-tuned the same way on the attacker's "
                         "raw features (no VFL signal; AP_raw of DESIGN §6)", "completion",
               training="none"),
    AttackSpec("norm_scoring", "norm scoring of messages (Li et al. 2022)", "auc",
               binary_only=True),
    AttackSpec("direction_scoring", "direction scoring against a known positive's message "
                                    "(Li et al. 2022)", "auc", binary_only=True),
    AttackSpec("cluster_embeddings", "k-means of the attacker's embeddings, matched with known "
                                     "labels (after Sun et al. 2022)", "top1"),
    AttackSpec("cluster_messages", "k-means of the received messages, matched with known "
                                   "labels (after Sun et al. 2022)", "top1"),
    AttackSpec("inversion", "batch label reconstruction by gradient inversion, no dummy head "
                            "(Liu et al. 2021)", "top1"),
    AttackSpec("inversion_head", "batch label reconstruction by gradient inversion with a "
                                 "dummy linear head (Liu et al. 2021)", "top1"),
)}

# `hybrid` is not an attack of its own: the active attack's training followed by every
# post-training attack on that run.
POST_TRAINING = tuple(name for name, spec in ATTACKS.items() if spec.training == "honest")


def attack_spec(name: str) -> AttackSpec:
    if name not in ATTACKS:
        raise unknown("attack", name, [*ATTACKS, "hybrid"])
    return ATTACKS[name]


def check_fits(name: str, top_model: str, num_classes: int) -> None:
    """Raises `ConfigError` when attack `name` does not apply to the setting."""
    spec = attack_spec(name)
    if spec.needs_sum_top and top_model != "none":
        raise ConfigError("top_model", f"the {name} attack needs top_model 'none' (the logits "
                                       f"are the sum of the parties' outputs), got {top_model!r}")
    if spec.binary_only and num_classes != 2:
        raise ConfigError("attack", f"{name} scores messages for a binary task; the data set "
                                    f"has {num_classes} classes")
