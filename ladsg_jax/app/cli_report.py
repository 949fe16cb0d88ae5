"""What the command line prints of a result: divergence warnings, the seeds line and the attack
report (each attack's score, the setting it ran in and, for the direct attacks, the reading)."""
from __future__ import annotations

import sys

from ladsg_jax.results import mean_std


def warn(what: str, reasons: list) -> None:
    from ladsg_jax.divergence import warning_line

    line = warning_line(what, reasons)
    if line:
        print(line, file=sys.stderr)


def seeds_line(record: dict) -> str:
    missing = record.get("missing", 0)
    return f"{record['n']} seeds" + (f" ({missing} diverged, left out)" if missing else "")


def attack_report_lines(report: dict, dataset: str, hybrid: bool) -> list[str]:
    """The attack command's lines for `report` (divergence warnings go to stderr)."""
    for kind, reasons in report["diverged"].items():
        warn(f"attack {dataset}, {kind} training", reasons)
    lines = []
    by_setting = report.get("main_task_by_setting", {})
    if len(by_setting) > 1:
        lines.append(f"{dataset}: main-task accuracy " + ", ".join(
            f"{mean_std(r)} ({setting})" for setting, r in by_setting.items()))
    else:
        top_model = report["config"]["top_model"]
        lines.append(f"{dataset}: main-task accuracy {mean_std(report['main_task'])} "
                     f"(top_{top_model})"
                     f"{'; hybrid: party 0 on the malicious optimizer' if hybrid else ''}")
    for attack, r in report["attacks"].items():
        setting = r.get("setting", f"top_{report['config']['top_model']}")
        lines.append(f"  {attack:<20} {r['metric']:<5} {mean_std(r):<18} ({setting}"
                     f"{reading_note(r)}{subset_note(r)})")
    for setting, norms in report.get("message_norm", {}).items():
        lines.append(message_norm_line(norms, setting))
    return lines


def message_norm_line(norms: dict, where: str = "") -> str:
    """The typical per-sample norm of the messages sent, to size a noise knob against (noise of
    σ per entry adds about σ·sqrt(d) to it, d the embedding width)."""
    first, last = (norms[k]["mean"] for k in ("first_epoch", "last_epoch"))
    text = lambda v: "diverged" if v is None else f"{v:.3g}"                   # noqa: E731
    return (f"  message norm per sample{f' ({where})' if where else ''}: {text(first)} in the "
            f"first epoch, {text(last)} in the last (noise of σ per entry adds about σ·√d)")


def subset_note(record: dict) -> str:
    """For an attack that picks samples itself (the certificate): each subset's precision and
    the share of samples it covers."""
    notes = []
    for name, part in record.get("subsets", {}).items():
        precision, coverage = part["precision"]["mean"], part["coverage"]["mean"]
        if coverage is not None:
            shown = "none" if precision is None else f"precision {precision:.3f}"
            notes.append(f"; {name} {100 * coverage:.1f}% of samples, {shown}")
    return "".join(notes)


def reading_note(record: dict) -> str:
    """For a direct attack: the reading it reports (epoch/no-negative rule) and, when another
    reading of the same messages scores higher, the strongest."""
    if "reading" not in record:
        return ""
    note = f"; read {record['reading']}"
    scored = {k: r["mean"] for k, r in record["readings"].items() if r["mean"] is not None}
    if scored and record["mean"] is not None:
        best = max(scored, key=scored.get)
        if scored[best] > record["mean"]:
            note += f"; strongest {best} {scored[best]:.3f}"
    return note
