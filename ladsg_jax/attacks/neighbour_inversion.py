"""The attack that knows neighbour substitution (issue 35, item 4): undo the batch's averaging.

Under `mode="neighbour"` (`defenses/neighbours.py`) party 0 receives s = M·g for each batch,
M = (1−α)·I + α·W, W the neighbour weights of the batch's embeddings and α the public `mix`.
The embeddings are party 0's own, so it can rebuild W: here from its final bottom model (the
embeddings it sent in the last epoch are close to those; a party that logged what it sent
would have them exactly), and solves M·g = s by least squares for each recorded batch, then
reads the recovered messages by argmin (Fu et al. 2022's direct attack) at the last epoch, at
each entry's minimum over the epochs and averaged over the epochs. Without a neighbour stage in
the run's defense M = I and this is the direct argmin.
"""
from __future__ import annotations

import numpy as np

from ladsg_jax.attacks.clustering import embeddings
from ladsg_jax.attacks.predictions import Predictions


def neighbour_stage(defense):
    """The run's substitution stage in neighbour mode (a chain's or LADSG's member), or None."""
    from ladsg_jax.defenses.composite import Composite
    from ladsg_jax.defenses.substitute import SubstituteGradients

    if isinstance(defense, Composite):
        return next((m for m in map(neighbour_stage, defense.members) if m is not None), None)
    if isinstance(defense, SubstituteGradients) and defense.mode == "neighbour":
        return defense
    return None


def mixing_matrix(batch_embeddings: np.ndarray, stage) -> np.ndarray:
    """M = (1−α)·I + α·W of one batch (identity without a neighbour stage)."""
    from ladsg_jax.defenses.neighbours import neighbour_weights

    size = batch_embeddings.shape[0]
    if stage is None:
        return np.eye(size)
    weights = np.asarray(neighbour_weights(batch_embeddings, stage.neighbours), np.float64)
    return (1 - stage.mix) * np.eye(size) + stage.mix * weights


def recovered_messages(wire, features: np.ndarray, stage):
    """The least-squares true messages (epochs, num_batches, B, d) and their indices."""
    indices = np.asarray(wire.indices)
    received = np.asarray(wire.messages[0], np.float64)
    out = np.empty_like(received)
    for e in range(indices.shape[0]):
        for b in range(indices.shape[1]):
            mixing = mixing_matrix(features[indices[e, b]], stage)
            out[e, b] = np.linalg.lstsq(mixing, received[e, b], rcond=None)[0]
    return out, indices


def run_neighbour_inversion(context, view, key):
    """Argmin of the recovered messages: the last epoch's, each entry's minimum over the
    epochs, and the average."""
    stage = neighbour_stage(view.defense)
    features = embeddings(context, view)
    messages, indices = recovered_messages(view.wire, features, stage)
    n, d = context.num_train, messages.shape[-1]
    lowest, total = np.full((n, d), np.inf), np.zeros((n, d))
    count, last = np.zeros(n), np.zeros((n, d))
    for e in range(indices.shape[0]):
        rows, values = indices[e].reshape(-1), messages[e].reshape(-1, d)
        lowest[rows] = np.minimum(lowest[rows], values)
        total[rows] += values
        count[rows] += 1
        last[rows] = values
    seen = np.flatnonzero(count > 0)
    readings = {"last": last, "min": lowest,
                "average": total / np.maximum(count, 1)[:, None]}
    guesses = {name: Predictions(index=seen, labels=values[seen].argmin(-1))
               for name, values in readings.items()}
    return {"score": guesses["last"], "reading": "last", "readings": guesses,
            "choice": "no neighbour stage: plain argmin" if stage is None
            else f"{stage.neighbours} neighbours, mix {stage.mix:g}"}
