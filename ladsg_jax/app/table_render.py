"""The defense tables as text: Markdown (`markdown_tables`, what the table, ablation and figure
scripts write) and the terminal's (`terminal_table`, the demo's), from the rows
`ladsg_jax.app.attack_table` computes and compares."""
from __future__ import annotations

from ladsg_jax.app.attack_table import DIRECT_FAMILY, STRONGEST_DIRECT
from ladsg_jax.attacks.registry import columns
from ladsg_jax.results import mean_std


def table_columns() -> list[tuple[str, str]]:
    """(attack name, heading) of the tables' columns: the registry's, with the strongest
    direct reading after the direct attacks."""
    cols = list(columns())
    last = max((i for i, (n, _) in enumerate(cols) if n in DIRECT_FAMILY), default=-1)
    cols.insert(last + 1, (STRONGEST_DIRECT, "direct max"))
    return cols


def markdown_tables(rows: list[dict], order: list[str] | None = None) -> str:
    """One Markdown table per data set: MP, the strongest attack by label recovery (which one;
    and the strongest of each setting, without and with the top model), the raw-feature floor,
    the excess and both DCS at the strongest (`ladsg_jax.app.ranking`); then each attack's mean ±
    std with its reduction against no defense and the excess of its recovery over the floor;
    the mean DCS over the attacks last."""
    out = []
    for dataset in dict.fromkeys(r["dataset"] for r in rows):
        mine = [r for r in rows if r["dataset"] == dataset]
        if order:
            mine.sort(key=lambda r: order.index(r["setting"]) if r["setting"] in order
                      else len(order))
        names = [n for n, _ in table_columns() if n in mine[0]["attacks"]]
        labels = dict(table_columns())
        out.append(f"### {dataset} ({mine[0]['seeds']} seeds; mean ± std. Strongest: the "
                   "highest training-label recovery (top-1) of the attacks that read the VFL "
                   "run, the raw-feature floor beside it; excess = strongest − floor; DCS at "
                   "the strongest: VFLAIR's, ideal AP 0, and (chance) ideal AP the chance "
                   "level. Per attack: its own metric, then reduction vs none / excess of its "
                   "recovery over the floor)\n")
        out.append("| setting | MP top mlp | MP top none | strongest | by setting | raw floor "
                   "| excess | DCS | DCS (chance) | " + " | ".join(labels[n] for n in names)
                   + " | mean DCS | mean DCS (chance) |")
        out.append("|---" * (11 + len(names)) + "|")
        for r in mine:
            cells = []
            for n in names:
                a = r["attacks"][n]
                cell = mean_std(a, 2, '±')
                if r["setting"] != "none" and a.get("reduction") is not None:
                    cell += f"<br>{100 * a['reduction']:+.0f}%"
                if a.get("excess") is not None:
                    cell += f" / {a['excess']:+.2f}"
                cell += "".join(subset_text(k, part) for k, part in a.get("subsets", {}).items())
                cells.append(cell)
            mp = r["main_task"]
            ranking = [ranked_cell(r.get("strongest")), by_setting_cell(r),
                       ranked_cell(r.get("floor")),
                       signed_cell(r.get("excess")), score_cell(r.get("dcs")),
                       score_cell(r.get("dcs_chance"))]
            out.append(f"| {setting_label(r)} | {mean_std(mp['top_mlp'], 3, '±')}"
                       f" | {mean_std(mp['top_none'], 3, '±')} | " + " | ".join(ranking + cells)
                       + f" | {score_cell(r.get('dcs_mean'))}"
                       f" | {score_cell(r.get('dcs_mean_chance'))} |")
        out.append("")
    return "\n".join(out)


def ranked_cell(record: dict | None) -> str:
    """A strongest attack or floor: mean ± std, then which attack."""
    if record is None:
        return "–"
    return f"{mean_std(record, 2, '±')}<br>{record['from']}"


def subset_text(name: str, part: dict) -> str:
    """A subset the attack picked itself: its precision over the share of samples it covers."""
    precision, coverage = part["precision"]["mean"], part["coverage"]["mean"]
    if coverage is None:
        return ""
    shown = "–" if precision is None else format(precision, ".2f")
    return f"<br>{name}: {shown} of {100 * coverage:.0f}%"


def by_setting_cell(row: dict) -> str:
    """The strongest attack of each setting: "top none 0.90<br>top mlp 0.74"."""
    parts = [f"{setting.replace('_', ' ')} {score_cell(best and best['mean'])}"
             for setting, best in row.get("strongest_by_setting", {}).items()]
    return "<br>".join(parts) or "–"


def signed_cell(value) -> str:
    return "–" if value is None else format(value, "+.2f")


def score_cell(value) -> str:
    return "–" if value is None else format(value, ".3f")


def diverged_seeds(row: dict) -> int:
    """The most seeds of any one training run of the row that diverged."""
    return max((sum(r is not None for r in reasons)
                for reasons in row.get("diverged", {}).values()), default=0)


def setting_label(row: dict) -> str:
    """The row's setting, with how many of its seeds diverged when any did."""
    bad = diverged_seeds(row)
    return row["setting"] + (f" ({bad}/{row['seeds']} seeds diverged)" if bad else "")


def cell(record: dict | None) -> str:
    return "n/a" if record is None else mean_std(record, 2, "±")


def terminal_table(rows: list[dict], width: int = 12) -> str:
    """The rows as one fixed-width table (what `ladsg-jax demo` prints): data set, setting,
    MP (top model mlp), the strongest attack by label recovery and the raw floor, every
    attack's mean ± std in table order, and which attack was the strongest."""
    label_width = max(8, *(len(setting_label(r)) + 1 for r in rows))
    ranked = (("strongest", "strongest"), ("floor", "raw floor"))
    header = (f"{'dataset':<14}{'defense':<{label_width}}{'MP':>{width}}"
              + "".join(f"{label:>{width}}" for _, label in ranked)
              + "".join(f"{label:>{width}}" for _, label in table_columns())
              + "  strongest attack")
    lines = [header, "-" * len(header)]
    for row in rows:
        mp = row["main_task"].get("top_mlp")
        source = (row.get("strongest") or {}).get("from", "–")
        lines.append(f"{row['dataset']:<14}{setting_label(row):<{label_width}}{cell(mp):>{width}}"
                     + "".join(f"{cell(row.get(key)):>{width}}" for key, _ in ranked)
                     + "".join(f"{cell(row['attacks'].get(name)):>{width}}"
                               for name, _ in table_columns()) + f"  {source}")
    return "\n".join(lines)
