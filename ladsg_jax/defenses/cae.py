"""The confusional autoencoder, CAE, and DCAE (Zou et al., "Defending Batch-Level Label Inference
and Replacement Attacks in Vertical Federated Learning", IEEE Trans. Big Data 2022)."""
from __future__ import annotations

import dataclasses
from typing import ClassVar

from functools import cached_property

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax
from flax import struct

from ladsg_jax.defenses.base import Defense
from ladsg_jax.defenses.composite import Composite, build_stages
from ladsg_jax.defenses.quantize import DiscreteSGD
from ladsg_jax.errors import require


@struct.dataclass
class Autoencoder:
    """CAE's trained autoencoder: the (C, C) table of codes E(I) and the decoder's params."""

    codes: jax.Array
    decoder: dict


class _Coder(nn.Module):
    """One half of the autoencoder: class scores in, logits over the classes out."""

    hidden: int
    classes: int

    @nn.compact
    def __call__(self, x):
        return nn.Dense(self.classes)(nn.relu(nn.Dense(self.hidden)(x)))


def train_cae(key: jax.Array, num_classes: int, hidden: int, lam, steps: int,
              learning_rate, mixtures: int = 64) -> Autoencoder:
    """Trains encoder E and decoder D (full batch, Adam, `steps` steps in one `lax.scan`) with
    the loss CE(D(π·K), π) − lam·H(E(y)), K = E(I) the (C, C) table of codes (E and D end in a
    softmax) and π the rows of I (the paper's reconstruction of each class from its code)
    together with `mixtures` fresh Dirichlet(1) weight vectors a step, with their weights as
    soft targets. `lam` and `learning_rate` may be traced."""
    coder = _Coder(hidden, num_classes)
    eye = jnp.eye(num_classes)
    enc_key, dec_key, key = jax.random.split(key, 3)
    params = {"encoder": coder.init(enc_key, eye)["params"],
              "decoder": coder.init(dec_key, eye)["params"]}
    optimizer = optax.adam(learning_rate)

    def loss_fn(params, step_key):
        log_codes = jax.nn.log_softmax(coder.apply({"params": params["encoder"]}, eye))
        codes = jnp.exp(log_codes)
        weights = jnp.concatenate([eye, jax.random.dirichlet(
            step_key, jnp.ones(num_classes), (mixtures,))])
        log_decoded = jax.nn.log_softmax(coder.apply({"params": params["decoder"]},
                                                     weights @ codes))
        reconstruction = -jnp.mean(jnp.sum(weights * log_decoded, axis=-1))
        entropy = -jnp.mean(jnp.sum(codes * log_codes, axis=-1))
        return reconstruction - lam * entropy

    def step(carry, step_key):
        params, opt_state = carry
        grads = jax.grad(loss_fn)(params, step_key)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), None

    (params, _), _ = jax.lax.scan(step, (params, optimizer.init(params)),
                                  jax.random.split(key, steps))
    codes = jax.nn.softmax(coder.apply({"params": params["encoder"]}, eye))
    return Autoencoder(codes=codes, decoder=params["decoder"])


@dataclasses.dataclass(frozen=True)
class CAE(Defense):
    """The confusional autoencoder (CoAE; Zou et al. 2022). Before training, the active party
    trains an encoder E and a decoder D (MLPs with one hidden layer of `hidden` units, 6C + 2
    by default as in the authors' code, softmax outputs) so that D recovers each class from
    its soft label E(y) while E(y) is pushed towards high entropy (`train_cae`). The VFL model
    trains on the soft labels E(y) (`targets`), so the messages carry the confusing labels;
    accuracy is measured on D(softmax(logits)) (`decode`).

    Larger `lam` (the entropy weight), stronger; lam = 0 leaves near one-hot codes that only
    permute the classes. Default 0.5: D(E(y)) decodes 100% of the classes for C = 2, 3, 10
    and 100 (lam = 1.0 collapses the 100-class codes), the codes' entropy is about 0.98·log C
    with 2 to 10 classes, and on digits (30 epochs, 2 seeds) main-task accuracy was 0.944
    against 0.968 undefended (0.936 at lam = 1.0, 0.96 at 0.1).

    Departures: (1) the paper's loss also rewards codes far from the true label,
    −λ₁·CE(E(y), y); that term is unbounded below, and trained with ours it drove every code
    to a one-hot vector of a wrong class, with several classes sharing one (decoding fell to
    chance for 10 classes), so it is left out. (2) D is trained on the C codes and on random
    Dirichlet(1) mixtures of them, with the mixture weights as soft targets: a model trained
    with cross-entropy on soft labels outputs the posterior-weighted mixture of the codes, not
    a code, and a D fitted to the C codes alone decoded those badly (3 synthetic classes:
    0.62 test accuracy against 0.91 undefended, with lam = 0). The authors' code trains E and
    D on 30 000 random sharpened soft labels instead. (3) Full batch, Adam (`learning_rate`
    1e-2, `steps` 1000), inside each run's jitted init, so the autoencoder differs per seed.

    Attributes:
        lam: weight of the codes' entropy in the autoencoder's loss (see above).
            Allowed: >= 0.
        hidden: hidden units of the encoder and the decoder; None takes 6C + 2, C the classes.
            Allowed: integer >= 1, or None.
        steps: Adam steps of the autoencoder's full-batch training. Allowed: integer >= 1.
        learning_rate: Adam's learning rate in the autoencoder's training. Allowed: > 0.
    """

    name: ClassVar[str] = "cae"
    summary: ClassVar[str] = "confusing soft labels from an autoencoder (Zou et al. 2022)"
    knob: ClassVar[str] = "lam"
    hyper: ClassVar[tuple] = ("lam", "learning_rate")
    draws: ClassVar[frozenset] = frozenset({"init"})
    lam: float = 0.5
    hidden: int | None = None
    steps: int = 1000
    learning_rate: float = 1e-2

    def __post_init__(self):
        require(self.lam >= 0, f"defense.{self.name}.lam",
                f"must be non-negative, got {self.lam!r}")
        require(self.hidden is None or (isinstance(self.hidden, int) and self.hidden > 0),
                f"defense.{self.name}.hidden",
                f"must be a positive integer or none, got {self.hidden!r}")
        require(isinstance(self.steps, int) and self.steps > 0, f"defense.{self.name}.steps",
                f"must be a positive integer, got {self.steps!r}")
        require(self.learning_rate > 0, f"defense.{self.name}.learning_rate",
                f"must be positive, got {self.learning_rate!r}")

    def width(self, num_classes: int) -> int:
        return self.hidden or 6 * num_classes + 2

    def init(self, key, data, config, hp):
        return train_cae(key, data.num_classes, self.width(data.num_classes), hp["lam"],
                         self.steps, hp["learning_rate"])

    def targets(self, hp, state, targets, labels, index):
        # each target's mixture of the codes: a one-hot target's row of the table, exactly
        return jnp.dot(targets, state.codes, precision=jax.lax.Precision.HIGHEST)

    def decode(self, hp, state, logits):
        classes = logits.shape[-1]
        return jax.nn.softmax(_Coder(self.width(classes), classes).apply(
            {"params": state.decoder}, jax.nn.softmax(logits)))


@dataclasses.dataclass(frozen=True)
class DCAE(Composite):
    """DCAE (Zou et al. 2022): `chain(CAE, DiscreteSGD)`, CAE's soft labels plus each message
    entry rounded to one of `bins` values spanning the batch's range (default 3 bins). Its
    knob is CAE's `lam`."""

    name: ClassVar[str] = "dcae"
    summary: ClassVar[str] = "CAE's soft labels plus discretized messages (Zou et al. 2022)"
    knob: ClassVar[str] = "lam"
    hyper: ClassVar[tuple] = ("lam", "learning_rate", "bins")
    field_sources: ClassVar[tuple] = (CAE, DiscreteSGD)
    lam: float = 0.5
    hidden: int | None = None
    steps: int = 1000
    learning_rate: float = 1e-2
    bins: int = 3

    def __post_init__(self):
        build_stages(self.name, lambda: self.members)

    @cached_property
    def members(self) -> tuple:
        return (CAE(lam=self.lam, hidden=self.hidden, steps=self.steps,
                    learning_rate=self.learning_rate), DiscreteSGD(bins=self.bins))
