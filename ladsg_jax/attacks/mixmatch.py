"""MixMatch's pieces (Berthelot et al., NeurIPS 2019) as model completion uses them (Fu et al.,
USENIX Security 2022, §4.2): sharpening, mixup, the ramped semi-supervised loss, and the parts
of Fu et al.'s released training loop that the `fu` recipe reproduces (batches drawn without
replacement, the interleaved BatchNorm passes, the weight average started at the initial
weights with its weight shrink). Pure functions of arrays and keys.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import optax


def sharpen(p: jax.Array, temperature: float) -> jax.Array:
    """MixMatch's sharpening: p^(1/T), renormalized over the classes."""
    p = p ** (1.0 / temperature)
    return p / jnp.sum(p, axis=-1, keepdims=True)


def mixup(key: jax.Array, x: jax.Array, p: jax.Array, alpha: float):
    """MixMatch's mixup with a shuffled copy: λ ~ Beta(α, α), λ = max(λ, 1−λ), so each mixed
    sample stays closest to its own (labelled samples stay mostly labelled)."""
    lam_key, perm_key = jax.random.split(key)
    lam = jax.random.beta(lam_key, alpha, alpha)
    lam = jnp.maximum(lam, 1.0 - lam)
    perm = jax.random.permutation(perm_key, x.shape[0])
    return lam * x + (1 - lam) * x[perm], lam * p + (1 - lam) * p[perm], lam


def linear_rampup(step: jax.Array, total: int) -> jax.Array:
    return jnp.clip(step / total, 0.0, 1.0)


def mixmatch_loss(logits_x, targets_x, logits_u, targets_u, weight_u):
    """Soft cross-entropy on the labelled part plus `weight_u` · MSE of probabilities on the rest."""
    loss_x = optax.softmax_cross_entropy(logits_x, targets_x).mean()
    loss_u = jnp.mean((jax.nn.softmax(logits_u) - targets_u) ** 2)
    return loss_x + weight_u * loss_u


def epoch_batch(key: jax.Array, step: jax.Array, n: int, batch: int) -> jax.Array:
    """Positions 0..n-1 of step `step`'s batch when the n samples are shuffled afresh each pass
    and cut into n // batch batches, the last partial one dropped (PyTorch's DataLoader with
    shuffle=True, drop_last=True, restarted when exhausted, as Fu et al.'s loop does)."""
    per_pass = n // batch
    order = jax.random.permutation(jax.random.fold_in(key, step // per_pass), n)
    return jax.lax.dynamic_slice(order, ((step % per_pass) * batch,), (batch,))


def unlabelled_indices(known_idx: jax.Array, n: int) -> jax.Array:
    """The training samples whose labels the attacker does not know, in order (Fu et al.'s
    unlabelled set: the training set less the labelled samples)."""
    unknown = jnp.ones(n, bool).at[known_idx].set(False)
    return jnp.nonzero(unknown, size=n - known_idx.shape[0])[0]


def interleave_halves(labelled: jax.Array, unlabelled: jax.Array):
    """Fu et al.'s (and MixMatch's reference code's) `interleave` for one unlabelled batch:
    two batches that each hold the first half of one part and the second half of the other, so
    that each BatchNorm pass sees both. Applied again to the two outputs it puts them back."""
    h = labelled.shape[0] // 2
    return (jnp.concatenate([labelled[:h], unlabelled[h:]]),
            jnp.concatenate([unlabelled[:h], labelled[h:]]))


def weight_average_step(average, current, decay: float):
    """One step of the exponential moving average: decay · average + (1 − decay) · current."""
    return jax.tree.map(lambda a, c: decay * a + (1 - decay) * c, average, current)


def shrink(tree, factor: float):
    """Fu et al.'s `WeightEMA` weight shrink: every trained weight (and BatchNorm statistic)
    times `factor` = 1 − 0.02 · lr after each step."""
    return jax.tree.map(lambda a: a * factor, tree)
