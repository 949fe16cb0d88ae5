"""The figures of `experiments/figures.py`, drawn with matplotlib (Agg: files, no display).

Each function takes the plain records the experiment wrote to its results JSON, so a figure
can be redrawn from the file alone, and writes one PNG.
"""
from __future__ import annotations

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str) -> str:
    from ladsg_jax.results import replace_atomic

    fig.tight_layout()
    with replace_atomic(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png", bbox_inches="tight")
    _pyplot().close(fig)
    return path


def grouped_bars(panels: dict, path: str, ylabel: str, title: str = "") -> str:
    """One panel per key of `panels`: {group: {series: (mean, std)}} as grouped bars with
    error bars (e.g. attacks as groups, defenses as series)."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(4.8 * len(panels), 3.6), squeeze=False)
    for ax, (name, groups) in zip(axes[0], panels.items()):
        series = list(dict.fromkeys(s for g in groups.values() for s in g))
        width = 0.8 / len(series)
        x = np.arange(len(groups))
        for i, s in enumerate(series):
            means = [groups[g].get(s, (np.nan, 0))[0] for g in groups]
            stds = [groups[g].get(s, (np.nan, 0))[1] for g in groups]
            ax.bar(x + (i - (len(series) - 1) / 2) * width, means, width, yerr=stds,
                   capsize=3, label=s)
        ax.set_xticks(x, list(groups), rotation=20, ha="right", fontsize=8)
        ax.set_ylim(0, 1.05)
        ax.set_title(name, fontsize=10)
        ax.set_ylabel(ylabel)
        ax.grid(axis="y", alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0), fontsize=8,
               ncol=min(len(labels), 8), frameon=False)
    if title:
        fig.suptitle(title, fontsize=10)
    return _save(fig, path)


def tradeoff_curves(panels: dict, path: str, floors: dict | None = None) -> str:
    """One panel per (data set, attack): {defense: [(attack mean, attack std, MP mean, MP std,
    knob value), ...]} as curves of main-task accuracy against attack success; a curve keeps its
    colour in every panel (an empty one is skipped). `floors`: {panel: the attacker's
    raw-feature floor}, drawn as a dashed line."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(5.6 * len(panels), 4.4), squeeze=False)
    markers = "osD^v<>pPXh*"
    colours = plt.get_cmap("tab20").colors
    names = list(dict.fromkeys(n for curves in panels.values() for n in curves))
    for ax, (name, curves) in zip(axes[0], panels.items()):
        if (floors or {}).get(name) is not None:
            ax.axvline(floors[name], color="grey", linestyle="--", linewidth=1,
                       label="raw-feature floor")
        for defense, points in curves.items():
            if not points:
                continue
            i = names.index(defense)
            a, a_std, mp, mp_std, _ = (np.asarray(v, dtype=float) for v in zip(*points))
            mine = defense == "ladsg"
            ax.errorbar(a, mp, xerr=a_std, yerr=mp_std, marker=markers[i % len(markers)],
                        markersize=6 if mine else 4, capsize=2, linewidth=2.5 if mine else 1,
                        color="black" if mine else colours[i % len(colours)], label=defense,
                        zorder=3 if mine else 2)
        ax.set_xlabel("attack success (lower protects more)")
        ax.set_ylabel("main-task accuracy")
        ax.set_title(name, fontsize=10)
        ax.grid(alpha=0.3)
    legend = {}
    for ax in axes[0]:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            legend.setdefault(label, handle)
    fig.legend(legend.values(), legend.keys(), loc="upper center", bbox_to_anchor=(0.5, 0.0),
               fontsize=8, ncol=min(len(legend), 8), frameon=False)
    return _save(fig, path)


def cost_bars(panels: dict, path: str) -> str:
    """One row per data set: {defense: (ms per epoch mean, std, compile s)} as two bar charts."""
    plt = _pyplot()
    fig, axes = plt.subplots(len(panels), 2, figsize=(11, 3.4 * len(panels)), squeeze=False)
    for row, (name, costs) in zip(axes, panels.items()):
        labels = list(costs)
        y = np.arange(len(labels))
        row[0].barh(y, [costs[k][0] for k in labels], xerr=[costs[k][1] for k in labels],
                    capsize=2)
        row[0].set_yticks(y, labels, fontsize=7)
        row[0].set_xlabel("ms per epoch (warm)")
        row[0].set_title(f"{name}: epoch time", fontsize=10)
        row[1].barh(y, [costs[k][2] for k in labels], color="tab:orange")
        row[1].set_yticks(y, labels, fontsize=7)
        row[1].set_xlabel("compile seconds (first call)")
        row[1].set_title(f"{name}: compilation", fontsize=10)
        for ax in row:
            ax.invert_yaxis()
            ax.grid(axis="x", alpha=0.3)
    return _save(fig, path)


def tsne_grid(panels: dict, path: str) -> str:
    """One panel per setting: {setting: (coords (n, 2), labels (n,), subtitle)} coloured by
    the true label."""
    plt = _pyplot()
    cols = min(3, len(panels))
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 3.4 * rows), squeeze=False)
    for ax in axes.ravel()[len(panels):]:
        ax.axis("off")
    for ax, (name, (coords, labels, subtitle)) in zip(axes.ravel(), panels.items()):
        coords = np.asarray(coords)
        ax.scatter(coords[:, 0], coords[:, 1], c=np.asarray(labels), cmap="tab10", s=4)
        ax.set_title(f"{name}\n{subtitle}", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    return _save(fig, path)
