"""Direct label inference (Fu et al., USENIX Security 2022, §4.1).

With no top model the logits are the sum of the parties' outputs, so the message the passive
party receives is m_i = (softmax(z_i) − onehot(y_i)) / B: the only negative entry is at the
label. The attacker reads the label off each message it received.

Which messages (`AttackSettings.direct_epoch`): Fu et al.'s code reads the first epoch's
(vfl_framework.py runs the attack in epoch 0 only), the default here; "last" reads the last
epoch's, "min" each entry's minimum over the epochs (under label anonymization an entry below
−ε/(k−1)/B in any epoch can only be the label's: a certificate, DESIGN §4), "average" the
messages averaged over the epochs (per-step random substitutes cancel). A message with no
negative entry (`direct_no_negative`) is a miss in Fu et al.'s count ("miss", the default) or
read by its argmin ("argmin"). Each run also reports every reading (`readings`), so a table can
rank a defense by the strongest (`ladsg_jax.app.attack_table`).
"""
from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from ladsg_jax.attacks.predictions import MISS, Predictions
from ladsg_jax.attacks.settings import DIRECT_EPOCHS as EPOCHS
from ladsg_jax.attacks.settings import DIRECT_NO_NEGATIVE as NO_NEGATIVE
from ladsg_jax.attacks.view import mean_messages_per_sample

VARIANTS = ("first_negative", "argmin")


def direct_label_inference(messages, variant: str = "first_negative",
                           no_negative: str = "argmin"):
    """Predicted labels from received messages (..., d): the first negative entry's index
    ("first_negative"; a message with no negative entry gives its argmin, or `MISS` with
    `no_negative="miss"`) or the argmin ("argmin")."""
    if variant == "argmin":
        return jnp.argmin(messages, axis=-1)
    negative = messages < 0
    first = jnp.argmax(negative, axis=-1)
    fallback = jnp.full_like(first, MISS) if no_negative == "miss" else jnp.argmin(messages, -1)
    return jnp.where(negative.any(axis=-1), first, fallback)


def epoch_messages(wire, num_samples: int, epoch: str):
    """Each sample's message under the reading `epoch` (one of `EPOCHS`), in sample order
    (num_samples, d), and which samples the reading saw."""
    if epoch in ("first", "last"):
        return wire.per_sample(num_samples, 0 if epoch == "first" else -1)
    if epoch == "average":
        return mean_messages_per_sample(wire, num_samples)
    lowest, seen = None, jnp.zeros((num_samples,), bool)
    for e in range(wire.indices.shape[0]):
        messages, here = wire.per_sample(num_samples, e)
        messages = jnp.where(here[:, None], messages, jnp.inf)
        lowest = messages if lowest is None else jnp.minimum(lowest, messages)
        seen = seen | here
    return jnp.where(seen[:, None], lowest, 0.0), seen


def readings(wire, num_samples: int, variant: str) -> dict[str, Predictions]:
    """Every reading of the messages by `variant`, as predicted labels of the samples it saw:
    {"EPOCH/RULE": ...} for the first-negative rule (both no-negative rules), {"EPOCH": ...}
    for the argmin."""
    out = {}
    for epoch in EPOCHS:
        messages, seen = epoch_messages(wire, num_samples, epoch)
        rows = np.flatnonzero(np.asarray(seen))
        rules = NO_NEGATIVE if variant == "first_negative" else (None,)
        for rule in rules:
            predicted = np.asarray(direct_label_inference(messages, variant, rule or "argmin"))
            name = epoch if rule is None else f"{epoch}/{rule}"
            out[name] = Predictions(index=rows, labels=predicted[rows])
    return out


def _direct(variant: str):
    def run(context, view, key):
        """The messages read by `variant` at the settings' epoch (and no-negative rule),
        with every other reading beside it."""
        settings = context.settings
        guesses = readings(view.wire, context.num_train, variant)
        chosen = (settings.direct_epoch if variant == "argmin"
                  else f"{settings.direct_epoch}/{settings.direct_no_negative}")
        return {"score": guesses[chosen], "reading": chosen, "readings": guesses}
    return run


run_first_negative = _direct("first_negative")
run_argmin = _direct("argmin")


def run_averaged(context, view, key):
    """The adaptive attacker's reading: argmin of each sample's messages averaged over the
    epochs (per-step random substitutes cancel), for the samples seen."""
    mean_messages, seen = mean_messages_per_sample(view.wire, context.num_train)
    predicted = direct_label_inference(mean_messages, "argmin")
    rows = np.flatnonzero(np.asarray(seen))
    return {"score": Predictions(index=rows, labels=np.asarray(predicted)[rows])}
