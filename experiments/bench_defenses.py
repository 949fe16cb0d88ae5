"""The benchmark's `defenses` group (`bench.py --groups defenses`).

The MLP step (`bench_common.StepCase`) with each registered defense at its default knobs (and
LADSG with FLSG's rejection mode, `mode="flsg"`), as a ratio over no defense, all timed
round-robin (one call of each per round: drift in the machine's speed cannot favour one);
defenses that reject the data (`ConfigError`, e.g. Marvell needs 2 classes) get a `skipped`
line.
"""
from __future__ import annotations

import statistics
from typing import Iterator

from bench_common import StepCase, bench_config, context, summary_ms
from ladsg_jax.defenses import DEFENSES, make_defense
from ladsg_jax.errors import ConfigError


# -- defenses ------------------------------------------------------------------------------

def defense_cases(names=None) -> list[tuple[str, dict]]:
    """(label, make_defense arguments): the registered defenses `names` (default all) at their
    defaults, and LADSG with FLSG's rejection mode beside LADSG; "none" comes first."""
    names = ["none"] + [n for n in (names or DEFENSES) if n != "none"]
    cases = []
    for name in names:
        cases.append((name, {"name": name}))
        if name == "ladsg":
            cases.append(("ladsg[mode=flsg]", {"name": "ladsg", "mode": "flsg"}))
    return cases


def interleaved_times(cases: dict, repeats: int, budget_s: float) -> dict:
    """Seconds of each case's calls, taken round-robin (one call of every case per round, up
    to `repeats` rounds or `budget_s` per case), so that a drift in the machine's speed falls
    on every case alike and their ratios stay fair."""
    times = {label: [] for label in cases}
    for _ in range(repeats):
        for label, case in cases.items():
            times[label].append(case())
        if min(sum(t) for t in times.values()) >= budget_s:
            break
    return times


def bench_defenses(args, data) -> Iterator[dict]:
    """The MLP step's median under each defense, and its ratio over no defense (timed
    interleaved, see `interleaved_times`)."""
    cases, firsts = {}, {}
    for label, params in defense_cases(args.defenses):
        params = dict(params)
        name = params.pop("name")
        config = bench_config(args, "mlp", defense=make_defense(name, **params))
        try:
            cases[label] = StepCase(config, data)
        except ConfigError as error:
            yield {"what": "defense_step", "defense": label, "skipped": str(error), **context()}
            continue
        firsts[label] = cases[label]()
    times = interleaved_times(cases, args.repeats, args.budget)
    base = statistics.median(times["none"])
    for label, case_times in times.items():
        yield {"what": "defense_step", "defense": label, "bottom": "mlp",
               **summary_ms(case_times), "first_call_s": firsts[label],
               "ratio_vs_none": statistics.median(case_times) / base,
               "ratio_of_minima_vs_none": min(case_times) / min(times["none"]),
               "timing": "interleaved", **context()}
