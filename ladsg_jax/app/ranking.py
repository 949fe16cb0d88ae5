"""A defense ranked by the strongest attack tried against it, beside the attacker's raw floor
(DESIGN §6): what every table that ranks defenses shows (`attack_table`, `gather`).

Attacks report in their own metrics (top-1 of the training labels for the direct and message
attacks; model completion's F1, top-1 or top-5 of the test split, Fu et al. 2022; leak AUC,
Li et al. 2022), so they are compared on one scale: **label recovery**, the top-1 accuracy of an
attack's guesses of the training samples' labels (`AttackRunner.run`'s `recovery`: the
completed model's predictions of the training split for model completion). The strongest
attack is the highest mean recovery among the attacks that read the VFL run (messages, bottom
parameters, embeddings; combined attacks included; each direct reading, `attacks/direct.py`,
is a candidate of its own); the raw-feature baselines (`registry.is_baseline`: `raw_mc`,
`raw_classifier`) are not candidates: the better of them is the floor beside it, and the
excess is strongest − floor. Leak AUCs have no class guesses and keep their own columns.

A record written before recovery was reported (before this change in 0.2.0) falls back to its
own score when that is a top-1.
"""
from __future__ import annotations

from ladsg_jax import metrics
from ladsg_jax.attacks.registry import is_baseline


def recovery(record: dict) -> dict | None:
    """An attack record's label recovery summary ({"mean", "std", "n"}), or None."""
    if "recovery" in record:
        return record["recovery"]
    return record if record.get("metric") == "top1" else None


def candidates(attacks: dict) -> list[tuple[str, dict]]:
    """(source, recovery summary) of every attack of a row that reads the VFL run, a direct
    attack's readings each on their own ("direct:min/argmin")."""
    out = []
    for name, record in attacks.items():
        if is_baseline(name) or "from" in record:     # a floor or a max already drawn
            continue
        summary = recovery(record)
        if summary is not None:
            out.append((name if "reading" not in record else f"{name}:{record['reading']}",
                        summary))
        out += [(f"{name}:{reading}", summary)
                for reading, summary in record.get("readings", {}).items()]
    return out


def best_of(scored: list[tuple[str, dict]]) -> dict | None:
    """The highest mean of (source, summary) pairs, with `from` naming its source."""
    scored = [(source, s) for source, s in scored if s.get("mean") is not None]
    if not scored:
        return None
    source, best = max(scored, key=lambda item: item[1]["mean"])
    return {"mean": best["mean"], "std": best.get("std"), "n": best.get("n"),
            "metric": "recovery", "from": source}


def strongest(attacks: dict) -> dict | None:
    """The strongest attack of a row's attack records, by label recovery (module docstring)."""
    return best_of(candidates(attacks))


def strongest_by_setting(attacks: dict) -> dict:
    """The strongest attack of each setting the row's attacks ran in ({"top_none": ...,
    "top_mlp": ...}: without and with the top model; the malicious run has the top model),
    by the attack records' `setting`."""
    settings = dict.fromkeys(r["setting"] for r in attacks.values() if r.get("setting"))
    return {setting: strongest({n: r for n, r in attacks.items()
                                if r.get("setting") == setting}) for setting in settings}


def floor(attacks: dict) -> dict | None:
    """The raw-feature floor: the better label recovery of the baselines that read no VFL run
    (`raw_mc`, `raw_classifier`), with `from` naming it; None when none was scored."""
    return best_of([(name, recovery(record)) for name, record in attacks.items()
                    if is_baseline(name) and recovery(record) is not None])


def dcs_at(best: dict | None, mp, mp_star, chance) -> dict:
    """Both defense capability scores at the strongest attack `best` (VFLAIR's DCS, Zou et al.
    2024): `dcs` with ideal attack performance 0, `dcs_chance` with top-1's `chance` level;
    None where the attack, MP, the undefended MP* or the chance level is missing."""
    known = best is not None and mp is not None and mp_star is not None
    return {"dcs": metrics.dcs(best["mean"], mp, 0.0, mp_star) if known else None,
            "dcs_chance": (metrics.dcs(best["mean"], mp, chance, mp_star)
                           if known and chance is not None else None)}


def excess(best: dict | None, base: dict | None) -> float | None:
    """Strongest − floor, None when either is missing."""
    if not best or not base or best["mean"] is None or base["mean"] is None:
        return None
    return float(best["mean"] - base["mean"])
