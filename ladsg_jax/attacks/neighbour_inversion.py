"""The attack that knows neighbour substitution (issue 35, item 4): undo the batch's averaging.

Under `mode="neighbour"` (`defenses/neighbours.py`) party 0 receives, for each batch, the
mean of each sample's neighbours' true messages W·g, rescaled row by row to the sample's own
norm (`norm="keep"`, the default; "own" keeps W·g as it is) and mixed with g by the public
`mix` α. The embeddings are party 0's own, so it rebuilds W from the embeddings it sent at
each step (it computed them; the suite records them when an attack reads "embeddings_sent"),
or, in a run without that record, from its final bottom model (an approximation: the first
version of this attack had only that). It solves each recorded batch for g by least squares,
s = M·g (exact under "own"; under "keep" with `mix` 1, the default, the unknown row scales
too, by Levenberg–Marquardt: `rescaled_solve`), then reads the recovered messages by argmin
(Fu et al. 2022's direct attack) at the first and the last epoch, at each entry's minimum over
the epochs and averaged over the epochs. Without a neighbour stage in the run's defense
nothing is mixed and this is the direct argmin.
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
    """M = (1−α)·I + α·W of one batch, W the neighbour weights of `stage`."""
    from ladsg_jax.defenses.neighbours import neighbour_weights

    weights = np.asarray(neighbour_weights(batch_embeddings, stage.neighbours), np.float64)
    return (1 - stage.mix) * np.eye(weights.shape[0]) + stage.mix * weights


def recovered_messages(wire, features: np.ndarray | None, stage):
    """The true messages (epochs, num_batches, B, d) solved from the received ones by least
    squares, s = M·g, their indices, and which of them the batch's mixing determines. Each
    batch's mixing comes from the embeddings sent in that step when the wire holds them, else
    from `features` (party 0's embeddings of every training sample) at the batch's indices. A
    sample's message is determined when its unit vector lies in the mixing's row space
    (M⁺M e_i = e_i); with `mix` 1 a sample no other picks as a neighbour enters no received
    message. Under `norm="keep"` each row of W·g was rescaled to |g_i|: with `mix` 1 the
    scales are solved for too (`rescaled_solve`); with a smaller mix (or "batch_mean") they are
    not undone (an approximation; experiments/README.md)."""
    indices = np.asarray(wire.indices)
    received = np.asarray(wire.messages[0], np.float64)
    if stage is None:
        return received, indices, np.ones(indices.shape, bool)
    sent = None if wire.embeddings is None else np.asarray(wire.embeddings[0])
    out = np.empty_like(received)
    determined = np.empty(indices.shape, bool)
    for e in range(indices.shape[0]):
        for b in range(indices.shape[1]):
            batch = sent[e, b] if sent is not None else features[indices[e, b]]
            mixing = mixing_matrix(batch, stage)
            inverse = np.linalg.pinv(mixing, rcond=1e-10)
            determined[e, b] = np.abs(np.diag(inverse @ mixing) - 1) < 1e-6
            if stage.norm == "keep" and stage.mix == 1:
                out[e, b] = rescaled_solve(inverse, received[e, b])
            else:
                out[e, b] = inverse @ received[e, b]
    return out, indices, determined


def rescaled_solve(inverse: np.ndarray, received: np.ndarray, steps: int = 100) -> np.ndarray:
    """g from s under `norm="keep"` and `mix` 1: s_i = (W·g)_i·|g_i| / |(W·g)_i|, so W·g = C·s
    with C = diag(c) unknown and g = W⁺·C·s; c is found so that |g_i| = |s_i| for every i
    (Levenberg–Marquardt over log c from c = 1, the Jacobian by hand). A local solution: it
    need not be the true one, and with W singular none may fit exactly."""
    norms = np.einsum("id,id->i", received, received) + 1e-30
    gram = received @ received.T

    def residual(log_c):
        c = np.exp(np.clip(log_c, -30, 30))
        g = inverse @ (c[:, None] * received)
        return np.einsum("id,id->i", g, g) / norms - 1, c

    log_c, damping = np.zeros(received.shape[0]), 1e-3
    r, c = residual(log_c)
    cost = r @ r
    for _ in range(steps):
        # d(|g_i|²/|s_i|²)/d log c_j = 2 W⁺_ij c_j (Gram · (W⁺_i ⊙ c))_j / |s_i|²
        jacobian = 2 * inverse * ((inverse * c) @ gram) * c / norms[:, None]
        normal = jacobian.T @ jacobian
        step = np.linalg.solve(normal + damping * np.diag(np.diag(normal) + 1e-12),
                               -jacobian.T @ r)
        r_new, c_new = residual(log_c + step)
        if r_new @ r_new < cost:
            log_c, r, c, cost, damping = log_c + step, r_new, c_new, r_new @ r_new, damping / 3
        else:
            damping *= 5
        if cost < 1e-16:
            break
    return inverse @ (c[:, None] * received)


def readings_of(messages, indices, determined, num_train: int) -> dict:
    """Per sample: the first and the last, each entry's minimum and the average of its
    recovered messages over the epochs where they were determined (over all its epochs where
    none was)."""
    d = messages.shape[-1]
    found = {}
    for use in ("determined", "any"):
        lowest, total = np.full((num_train, d), np.inf), np.zeros((num_train, d))
        count, first, last = np.zeros(num_train), np.zeros((num_train, d)), np.zeros((num_train, d))
        for e in range(indices.shape[0]):
            keep = determined[e].reshape(-1) if use == "determined" else slice(None)
            rows, values = indices[e].reshape(-1)[keep], messages[e].reshape(-1, d)[keep]
            new = count[rows] == 0
            first[rows[new]] = values[new]
            lowest[rows] = np.minimum(lowest[rows], values)
            total[rows] += values
            count[rows] += 1
            last[rows] = values
        found[use] = count, {"first": first, "last": last, "min": lowest,
                             "average": total / np.maximum(count, 1)[:, None]}
    count, readings = found["determined"]
    fallback = count == 0
    for name, values in readings.items():
        values[fallback] = found["any"][1][name][fallback]
    return readings, found["any"][0] > 0, float((~fallback).mean())


def run_neighbour_inversion(context, view, key):
    """Argmin of the recovered messages: the first epoch's (Fu et al.'s reading, the score)
    and the last's, each entry's minimum over the epochs, and the average, each over the
    epochs that determined the sample's message."""
    stage = neighbour_stage(view.defense)
    logged = view.wire.embeddings is not None
    features = None if logged or stage is None else embeddings(context, view)
    messages, indices, determined = recovered_messages(view.wire, features, stage)
    readings, seen, share = readings_of(messages, indices, determined, context.num_train)
    seen = np.flatnonzero(seen)
    guesses = {name: Predictions(index=seen, labels=values[seen].argmin(-1))
               for name, values in readings.items()}
    return {"score": guesses["first"], "reading": "first", "readings": guesses,
            "choice": "no neighbour stage: plain argmin" if stage is None
            else f"{stage.neighbours} neighbours, mix {stage.mix:g}, from the "
                 + ("embeddings sent at each step" if logged else "final bottom's embeddings")
                 + f"; {share:.0%} of the samples determined"}
