"""Which runs diverged: read from the epoch metrics a run already returns, on the host, after
training (nothing is added to the jitted loop).

A run diverged when
- any epoch's mean training loss is not finite, or its final parameters hold a NaN or an
  infinity; or
- its last epoch's mean training loss exceeds `LOSS_BOUND_FACTOR · log(num_classes)` (a model
  that guesses uniformly scores log C) while its last epoch's training accuracy is below
  `CHANCE_FACTOR / num_classes`: the optimizer blew up and left a model that predicts nothing
  (`--lr 30` on digits: the loss reaches 1.6e6 in its first epoch, then wanders at 40-60 with
  the accuracy at chance).

A large loss alone is not divergence: with no top model the logits are the sum of the parties'
embeddings and can grow large, so a model that is right on most samples can still show a huge
cross-entropy on the rest (signSGD on digits without a top model ends at a loss of 122 with
0.86 test accuracy; gradient compression at keep 0.02 passes 500 in its second epoch and ends
at 3.6-9.3 with 0.94). A diverged run's scores are not scores: the records leave them out of
every mean, DCS and figure and say how many runs were left out.
"""
from __future__ import annotations

import math

import jax
import numpy as np

LOSS_BOUND_FACTOR = 10.0
CHANCE_FACTOR = 1.5


def loss_bound(num_classes: int) -> float:
    """The last epoch's mean training loss above which a run at chance accuracy diverged."""
    return LOSS_BOUND_FACTOR * math.log(max(num_classes, 2))


def divergence(result, num_classes: int) -> list[str | None]:
    """Per run of `result` (a `Result` with a leading run axis): None, or why it diverged."""
    loss = np.asarray(result.train_loss, np.float64)
    loss = loss.reshape(-1, loss.shape[-1]) if loss.ndim else loss.reshape(1, 1)
    runs = loss.shape[0]
    params_finite = np.ones(runs, bool)
    for leaf in jax.tree.leaves(result.state.params):
        leaf = np.asarray(leaf)
        if np.issubdtype(leaf.dtype, np.floating):
            params_finite &= np.isfinite(leaf.reshape(runs, -1)).all(axis=1)
    accuracy = np.asarray(result.train_accuracy, np.float64).reshape(loss.shape)[:, -1]
    bound, chance = loss_bound(num_classes), CHANCE_FACTOR / num_classes
    reasons = []
    for run in range(runs):
        bad = np.flatnonzero(~np.isfinite(loss[run]))
        if bad.size:
            reasons.append(f"training loss not finite from epoch {bad[0] + 1}")
        elif loss[run, -1] > bound and accuracy[run] < chance:
            reasons.append(f"training loss {loss[run, -1]:.4g} > {bound:.3g} (10·log C) with "
                           f"training accuracy {accuracy[run]:.3f} < {chance:.3f} (1.5/C) "
                           "at the last epoch")
        elif not params_finite[run]:
            reasons.append("final parameters not finite")
        else:
            reasons.append(None)
    return reasons


def kept(values, reasons: list[str | None]) -> list[float | None]:
    """Per run, its value as a float, or None where the run diverged (what summaries leave
    out)."""
    return [None if why else float(v) for v, why in zip(np.asarray(values), reasons)]


def final_accuracy(result, rows: slice, reasons: list[str | None]) -> dict:
    """The summary and per-seed list of `result`'s final test accuracy over the runs `rows`
    (None where diverged; `reasons` are those runs')."""
    from ladsg_jax.results import summary

    accuracy = kept(np.asarray(result.final_test_accuracy)[rows], reasons)
    return {**summary(accuracy), "per_seed": accuracy}


def count_diverged(reasons: list[str | None]) -> int:
    return sum(r is not None for r in reasons)


def warning_line(what: str, reasons: list[str | None]) -> str:
    """The one line a command prints when some of its runs diverged ('' when none did)."""
    bad = [(i, r) for i, r in enumerate(reasons) if r is not None]
    if not bad:
        return ""
    where = ", ".join(f"seed {i}: {r}" for i, r in bad[:3])
    more = f", and {len(bad) - 3} more" if len(bad) > 3 else ""
    return (f"ladsg-jax: warning: {what}: {len(bad)} of {len(reasons)} runs diverged ({where}"
            f"{more}); they are left out of every mean and score")


def message_norms(norms, diverged) -> dict | None:
    """The mean per-sample L2 norm of the messages sent (`Result.message_norm`, (runs,
    epochs)) in the first and the last epoch, over the runs that did not diverge: the scale
    against which to size a noise knob (None where the result has none)."""
    from ladsg_jax.results import summary

    if norms is None:
        return None
    norms = np.asarray(norms)
    return {"first_epoch": summary(kept(norms[:, 0], diverged)),
            "last_epoch": summary(kept(norms[:, -1], diverged))}
