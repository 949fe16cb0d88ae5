"""What `ladsg-jax list` and `ladsg-jax data list` print: the registries and the prepared data,
as rows of text."""
from __future__ import annotations

from ladsg_jax import data as datasets
from ladsg_jax.defenses import DEFENSES, knob_default

HEADERS = {"defenses": ("name", "knob", "default", "traced (grid in one program)",
                        "needs of the batch", "tasks", "description"),
           "attacks": ("name", "metric", "reads", "setting", "table", "description"),
           "datasets": ("name", "kind", "description")}


def attack_setting(attack) -> str:
    parts = [f"training {attack.training}"] if attack.training != "honest" else []
    parts += [f"top {attack.top_model}"] if attack.top_model != "any" else []
    parts += ["binary"] if attack.binary_only else []
    return ",".join(parts) or "any"


def list_rows(kind: str) -> list[tuple[str, ...]]:
    """The rows `ladsg-jax list KIND` prints: (name, ..., description)."""
    if kind == "defenses":
        return [(name, cls.knob or "-", "-" if cls.knob is None else str(knob_default(cls)),
                 ",".join(cls.hyper) or "-", cls().needs,
                 "binary" if cls.binary_only else "any", cls.summary)
                for name, cls in DEFENSES.items()]
    if kind == "attacks":
        from ladsg_jax.attacks.registry import ATTACKS
        return [(name, a.metric, ",".join(a.reads), attack_setting(a), f"{a.group}/{a.column}",
                 a.description) for name, a in ATTACKS.items()]
    return [(name, data_kind, description)
            for name, (data_kind, _, description) in datasets.DATASETS.items()]


def data_rows(data_dir: str | None) -> list[tuple[str, ...]]:
    """The rows `ladsg-jax data list` prints: one per prepared copy or unprepared data set."""
    from ladsg_jax.data.catalog import SPECS

    copies = datasets.prepared(data_dir)
    rows = []
    for name, (kind, _, _) in datasets.DATASETS.items():
        mine = [info for info in copies if info["name"] == name]
        for info in mine:
            options = ",".join(f"{k}={v}" for k, v in sorted(info["options"].items()))
            rows.append((name, kind, "yes", str(info["num_train"]), str(info["num_test"]),
                         info["path"] + (f" ({options})" if options else "")))
        if not mine:
            spec = SPECS.get(name)
            needs = ("made in memory, nothing to prepare" if spec is None else
                     spec.package_file.describe() if spec.source is None
                     else "needs " + spec.source.needs())
            rows.append((name, kind, "no", "-", "-", needs))
    return rows


def aligned(rows: list[tuple[str, ...]]) -> str:
    """Rows as columns padded to their widths, the last column left as it is."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)) + "  " + row[-1]
                     for row in rows)
