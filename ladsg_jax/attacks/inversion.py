"""Batch label reconstruction by gradient inversion (after Liu et al. 2021, "Batch label
inference and replacement attacks in black-boxed vertical federated learning", arXiv 2112.05409).

What the attacker (the passive party) reads, for one batch of B samples: its own bottom module
and parameters θ, its own feature slice x of the batch, and the message m (B, d) it received,
m = ∂L/∂h for its embedding h = f(x; θ), L the active party's batch-mean softmax cross-entropy
(through a top model it does not know, or through the sum of the parties' logits). It reads no
label, no other party's embedding and no top-model parameter. From these it forms the parameter
gradient it would apply, g_obs = J_θ(h)ᵀ m (one VJP of its bottom model: what Liu et al.'s
attacker sees when the per-sample messages are hidden by homomorphic encryption and only the
batch's parameter gradient is exposed), and looks for dummy variables whose dummy loss has the
same parameter gradient:

- dummy soft labels: logits ŷ (B, C), targets t = softmax(ŷ);
- dummy logits z = h + ô (`head=False`, which needs d = C: the `top_model = none` setting) or
  z = hW + b + ô (`head=True`, a dummy linear head W (d, C), b (C,));
- ô (B, C): dummy logits of the other parties (`offsets=True`), which the sum top adds to h and
  which the attacker does not know;
- dummy loss L̂(θ) = mean_i CE(z_i, t_i), dummy gradient ĝ = ∇_θ L̂ (a `jax.grad`), and the
  objective 1 − cos(ĝ, g_obs) over all parameters flattened, minimized over the dummies with
  Adam (a `jax.grad` of a function that calls `jax.grad`). The predicted labels are argmax ŷ.

Departures from Liu et al., stated:
- the objective is the cosine distance, not the squared distance: scale-free, since the true
  loss may go through an unknown top model (with a defense, through an unknown message policy)
  whose scale the dummy loss cannot match. No L2 or entropy term is added: an entropy penalty
  on t was tried and did not raise accuracy;
- the unknown top model is replaced by a linear dummy head. With a top model the class *names*
  are not identifiable from what the attacker reads: relabelling the classes together with the
  rows of the top model's output layer leaves every message unchanged, so against a top model
  whose initialization treats the classes alike no attacker names labels better than chance; at
  best the reconstruction groups the batch's samples by class. The head starts at the identity
  map eye(d, C) (plus small noise), the sum top's map, which names classes correctly in the
  `top_model = none` setting and is an arbitrary naming otherwise;
- the dummy offsets ô (the other parties' unknown logits) are ours: measured on random
  two-party sum-top batches they lift accuracy (e.g. 0.87 → 0.99 with B = 8, C = 4).

A limit worth knowing: g_obs sums the samples' contributions, each as large as its message. In
a trained model most samples are fitted and their messages are hundreds of times smaller than
the few misfitted ones' (digits, sum top, last epoch: median norm 2.7e-5, largest 1.6e-2), so
the objective barely constrains their dummy labels: there the attack recovered 0.37–0.42 of
the labels (chance 0.1; the direct attack on the same messages 1.0), and with a trained MLP top
0.09–0.11, chance, as the naming argument above says.

Everything is jit-able and vmap-able; `invert_labels` vmaps one batch's reconstruction over a
leading axis of batches.
"""
from __future__ import annotations

import functools

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
import optax

from ladsg_jax.attacks.predictions import Predictions
from ladsg_jax.attacks.view import last_epoch_batches
from ladsg_jax.errors import ConfigError

INIT_SCALE = 0.01


@flax.struct.dataclass
class Reconstruction:
    """One batch's reconstruction: predicted labels (B,), soft labels softmax(ŷ) (B, C), and the
    final objective 1 − cos(ĝ, g_obs) (0 is a perfect match)."""

    labels: jax.Array
    soft_labels: jax.Array
    objective: jax.Array


def _embed(module, x, params):
    """The bottom's forward pass as in training (BatchNorm on the batch's own statistics, which
    is what produced the gradient the attacker observes)."""
    return module.apply({"params": params}, x, train=True, mutable=["batch_stats"])[0]


def observed_gradient(module, params, x, message):
    """The attacker's parameter gradient g_obs = J_θ(h)ᵀ m: the VJP of its bottom model at θ
    applied to the message it received (a pytree shaped like `params`)."""
    _, pullback = jax.vjp(functools.partial(_embed, module, x), params)
    (gradient,) = pullback(message)
    return gradient


def dummy_logits(h, dummies):
    """z = h (or hW + b when the dummies hold a head), plus the dummy offsets when present."""
    z = h @ dummies["kernel"] + dummies["bias"] if "kernel" in dummies else h
    return z + dummies["offsets"] if "offsets" in dummies else z


def dummy_loss(h, dummies):
    """L̂ = mean_i CE(z_i, softmax(ŷ_i)): the batch-mean loss the dummies claim."""
    targets = jax.nn.softmax(dummies["labels"])
    return optax.softmax_cross_entropy(dummy_logits(h, dummies), targets).mean()


def dummy_gradient(module, params, x, dummies):
    """ĝ = ∇_θ L̂: the parameter gradient the dummies would have produced."""
    return jax.grad(lambda p: dummy_loss(_embed(module, x, p), dummies))(params)


def init_dummies(key, batch_size: int, width: int, num_classes: int, head: bool,
                 offsets: bool):
    """Small random dummies from a typed key; a head starts at eye(width, num_classes)."""
    label_key, offset_key, head_key = jax.random.split(key, 3)
    shape = (batch_size, num_classes)
    dummies = {"labels": INIT_SCALE * jax.random.normal(label_key, shape)}
    if offsets:
        dummies["offsets"] = INIT_SCALE * jax.random.normal(offset_key, shape)
    if head:
        noise = INIT_SCALE * jax.random.normal(head_key, (width, num_classes))
        dummies["kernel"] = jnp.eye(width, num_classes) + noise
        dummies["bias"] = jnp.zeros((num_classes,))
    return dummies


def _cosine_to_unit(tree, unit):
    """cos(flatten(tree), flatten(unit)) for a `unit` of norm 1 or 0; 0 when `tree` is 0."""
    dot = sum(jnp.vdot(a, b) for a, b in zip(jax.tree.leaves(tree), jax.tree.leaves(unit)))
    squared = sum(jnp.vdot(a, a) for a in jax.tree.leaves(tree))
    return dot * jax.lax.rsqrt(jnp.where(squared > 0, squared, 1.0))


def _unit(tree):
    squared = sum(jnp.vdot(a, a) for a in jax.tree.leaves(tree))
    scale = jax.lax.rsqrt(jnp.where(squared > 0, squared, 1.0))
    return jax.tree.map(lambda a: a * scale, tree)


@functools.partial(jax.jit, static_argnames=("module", "num_classes", "head", "steps",
                                             "offsets"))
def reconstruct_batch(module, params, x, message, num_classes: int, key, head: bool = True,
                      steps: int = 300, learning_rate=0.05, offsets: bool = True):
    """Reconstructs one batch's labels from the attacker's view (x, θ, m); see the module
    docstring. Returns a `Reconstruction`. Raises `ConfigError("head", ...)` when `head` is
    False and the embedding is not `num_classes` wide."""
    batch_size, width = message.shape
    if not head and width != num_classes:
        raise ConfigError("head", f"without a dummy head the embedding must have num_classes "
                                  f"({num_classes}) entries (the top_model 'none' setting); "
                                  f"it has {width}")
    target = _unit(observed_gradient(module, params, x, message))

    def objective(dummies):
        return 1.0 - _cosine_to_unit(dummy_gradient(module, params, x, dummies), target)

    optimizer = optax.adam(learning_rate)

    def step(carry, _):
        dummies, state = carry
        grads = jax.grad(objective)(dummies)
        updates, state = optimizer.update(grads, state, dummies)
        return (optax.apply_updates(dummies, updates), state), None

    dummies = init_dummies(key, batch_size, width, num_classes, head, offsets)
    (dummies, _), _ = jax.lax.scan(step, (dummies, optimizer.init(dummies)), None,
                                   length=steps)
    return Reconstruction(labels=jnp.argmax(dummies["labels"], axis=-1),
                          soft_labels=jax.nn.softmax(dummies["labels"]),
                          objective=objective(dummies))


def invert_batch_labels(module, params, x, message, num_classes: int, key, head: bool = True,
                        steps: int = 300, learning_rate=0.05, offsets: bool = True):
    """Predicted labels (B,) of one batch (x (B, ...), message (B, d)) by gradient inversion
    (Liu et al. 2021); `key` a typed PRNG key for the dummies' initialization."""
    return reconstruct_batch(module, params, x, message, num_classes, key, head=head,
                             steps=steps, learning_rate=learning_rate, offsets=offsets).labels


def invert_labels(module, params, xs, messages, num_classes: int, key, head: bool = True,
                  steps: int = 300, learning_rate=0.05, offsets: bool = True):
    """`invert_batch_labels` over a leading axis of batches: xs (nb, B, ...), messages
    (nb, B, d), one key split into nb; returns (nb, B) predicted labels."""
    keys = jax.random.split(key, messages.shape[0])

    def one(x, message, batch_key):
        return invert_batch_labels(module, params, x, message, num_classes, batch_key,
                                   head=head, steps=steps, learning_rate=learning_rate,
                                   offsets=offsets)

    return jax.vmap(one)(xs, messages, keys)


def _inversion(head: bool):
    def run(context, view, key):
        """The labels reconstructed from the first `settings.inversion_batches` batches of
        the last epoch."""
        settings = context.settings
        invert = context.cached(f"invert_head_{head}", lambda: jax.jit(functools.partial(
            invert_labels, context.bottom, num_classes=context.num_classes, head=head,
            steps=settings.inversion_steps, learning_rate=settings.inversion_learning_rate)))
        indices, messages = last_epoch_batches(view.wire)
        indices = np.asarray(indices)
        count = min(settings.inversion_batches, indices.shape[0])
        xs = view.train_x[jnp.asarray(indices[:count])]
        predicted = invert(view.bottom_params, xs, messages[:count], key=key)
        return {"score": Predictions(index=indices[:count], labels=np.asarray(predicted))}
    return run


run_inversion = _inversion(False)
run_inversion_head = _inversion(True)
