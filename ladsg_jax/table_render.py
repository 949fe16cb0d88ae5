"""The defense tables as text: Markdown (`markdown_tables`, what the table, ablation and figure
scripts write) and the terminal's (`terminal_table`, the demo's), from the rows
`ladsg_jax.attack_table` computes and compares."""
from __future__ import annotations

from ladsg_jax.attack_table import DIRECT_FAMILY, STRONGEST_DIRECT
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
    """One Markdown table per data set: MP and each attack's mean ± std, then its reduction
    against no defense and its excess over the raw floor; the mean DCS last."""
    out = []
    for dataset in dict.fromkeys(r["dataset"] for r in rows):
        mine = [r for r in rows if r["dataset"] == dataset]
        if order:
            mine.sort(key=lambda r: order.index(r["setting"]) if r["setting"] in order
                      else len(order))
        names = [n for n, _ in table_columns() if n in mine[0]["attacks"]]
        labels = dict(table_columns())
        out.append(f"### {dataset} ({mine[0]['seeds']} seeds; mean ± std, then reduction vs "
                   "none / excess over raw; DCS: VFLAIR's, ideal AP 0; DCS (chance): ideal AP "
                   "the attack's chance level)\n")
        out.append("| setting | MP top mlp | MP top none | "
                   + " | ".join(labels[n] for n in names) + " | DCS | DCS (chance) |")
        out.append("|---" * (5 + len(names)) + "|")
        for r in mine:
            cells = []
            for n in names:
                a = r["attacks"][n]
                cell = mean_std(a, 2, '±')
                if r["setting"] != "none" and a.get("reduction") is not None:
                    cell += f"<br>{100 * a['reduction']:+.0f}%"
                if a.get("excess") is not None:
                    cell += f" / {a['excess']:+.2f}"
                cells.append(cell)
            mp = r["main_task"]
            out.append(f"| {setting_label(r)} | {mean_std(mp['top_mlp'], 3, '±')}"
                       f" | {mean_std(mp['top_none'], 3, '±')} | " + " | ".join(cells)
                       + f" | {score_cell(r.get('dcs'))} | {score_cell(r.get('dcs_chance'))} |")
        out.append("")
    return "\n".join(out)


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
    MP (top model mlp), then every attack's mean ± std in table order."""
    label_width = max(8, *(len(setting_label(r)) + 1 for r in rows))
    header = f"{'dataset':<14}{'defense':<{label_width}}{'MP':>{width}}" + "".join(
        f"{label:>{width}}" for _, label in table_columns())
    lines = [header, "-" * len(header)]
    for row in rows:
        mp = row["main_task"].get("top_mlp")
        lines.append(f"{row['dataset']:<14}{setting_label(row):<{label_width}}{cell(mp):>{width}}"
                     + "".join(f"{cell(row['attacks'].get(name)):>{width}}"
                               for name, _ in table_columns()))
    return "\n".join(lines)
