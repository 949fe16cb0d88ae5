"""The certificate of label anonymization: an adaptive direct attack that knows the defense.

Without a top model the logits are the parties' outputs summed, so the message party 0
receives for sample i is m_i = (softmax(z_i) − t_i) / B (Fu et al., USENIX Security 2022,
§4.1), t_i the sample's training target. A class j other than the label carries at most τ of
the target: 0 with one-hot targets; under label anonymization (LADSG's stage 1, arXiv
2506.06742; DESIGN §3) ε/(k−1) with uniform weighting, and at most ε with the teacher's (KDk,
Arazzi et al. 2024), whose weights are the defender's. As softmax(z_i)_j > 0, B·m_ij > −τ for
every such j: an entry with B·m_ij < −τ in any epoch can only be the label's, and the sample
is certified. The attacker reads τ from the run's defense, which is public (its options and
knobs, never its state: the teacher's candidate sets stay the defender's), and each entry's
minimum over the epochs.

Every sample seen is labelled by the argmin of its entries' minima over the epochs (the
certified entry when there is one: it is the only one below −τ); the certified samples are a
subset the suite scores apart (`subsets["certified"]`: precision and coverage), never a
candidate for the strongest attack (`ladsg_jax.app.ranking`). The argument holds for the message
the loss sends: a defense that changes the message (noise, substitution, a penalty on the
embeddings) voids it, and the certified subset's precision then measures the rule as a
heuristic. A target hook other than label anonymization's gets τ = 1: nothing is certified.
"""
from __future__ import annotations

import numpy as np

from ladsg_jax.attacks.direct import epoch_messages
from ladsg_jax.attacks.predictions import Predictions

MARGIN = 1e-5      # float32 messages scaled by B: a few ulps of slack below −τ


def non_label_mass(defense, num_classes: int) -> float:
    """τ: the most target mass a class other than the label can carry under `defense`'s
    targets (module docstring); members of a chain add up."""
    from ladsg_jax.defenses.anonymize import LabelAnonymization, candidate_count
    from ladsg_jax.defenses.base import Defense
    from ladsg_jax.defenses.composite import Composite

    if defense is None:
        return 0.0
    if isinstance(defense, Composite):
        return min(1.0, sum(non_label_mass(m, num_classes) for m in defense.members))
    if isinstance(defense, LabelAnonymization):
        k = candidate_count(f"defense.{defense.name}", defense.k, defense.epsilon, num_classes)
        return float(defense.epsilon / (k - 1) if defense.weighting == "uniform"
                     else defense.epsilon)
    return 0.0 if type(defense).targets is Defense.targets else 1.0


def certify(lowest: np.ndarray, tau: float) -> np.ndarray:
    """Which rows of B·(each entry's minimum over the epochs) (n, d) hold an entry below −τ."""
    return lowest.min(-1) < -(tau + MARGIN)


def run_certificate(context, view, key):
    """Argmin of the entries' minima over the epochs; the certified samples as a subset."""
    lowest, seen = epoch_messages(view.wire, context.num_train, "min")
    lowest = np.asarray(lowest, np.float64) * view.wire.messages[0].shape[-2]    # B
    rows = np.flatnonzero(np.asarray(seen))
    tau = non_label_mass(view.defense, context.num_classes)
    sure = rows[certify(lowest[rows], tau)]
    labels = lowest.argmin(-1)
    return {"score": Predictions(index=rows, labels=labels[rows]),
            "subsets": {"certified": Predictions(index=sure, labels=labels[sure])},
            "choice": f"τ {tau:g}: {sure.size} of {rows.size} samples certified"}
