"""The active party's teacher for LADSG's label anonymization (arXiv 2506.06742, stage 1)."""
from __future__ import annotations

import flax.linen as nn
import jax
import optax

from ladsg_jax.chunks import map_in_chunks
from ladsg_jax.models import apply_stateful, make_bottom, split_variables


class Teacher(nn.Module):
    """The active party's bottom architecture plus a linear head."""

    bottom: nn.Module
    num_classes: int

    @nn.compact
    def __call__(self, x, train: bool = False):
        return nn.Dense(self.num_classes)(self.bottom(x, train))


def train_teacher(key: jax.Array, x: jax.Array, y: jax.Array, num_classes: int, config,
                  epochs: int, predict_x: jax.Array | None = None) -> jax.Array:
    """Trains a teacher on the active party's own slice (cross-entropy, the run's SGD settings
    at the run's learning rate, a grid point's included; `epochs` passes of shuffled batches)
    and returns its logits for every training sample (or for `predict_x`: the active party
    alone, scored on a test split, is `experiments/active_alone.py`).

    Pure and jit-able: it runs inside the jitted `init` of a training run.
    """
    teacher = Teacher(make_bottom(config.bottom, config.bottom_hidden,
                                  config.embed_dim or num_classes, config.vocab_size,
                                  config.conv_gradients), num_classes)
    init_key, key = jax.random.split(key)
    params, batch_stats = split_variables(teacher.init(init_key, x[:1]))
    optimizer = optax.sgd(config.learning_rate, momentum=config.momentum or None)
    opt_state = optimizer.init(params)
    batch = min(config.batch_size, x.shape[0])
    num_batches = x.shape[0] // batch

    def loss_fn(params, batch_stats, idx):
        logits, batch_stats = apply_stateful(teacher, params, batch_stats, x[idx], train=True)
        return optax.softmax_cross_entropy_with_integer_labels(logits, y[idx]).mean(), batch_stats

    def step(carry, idx):
        params, batch_stats, opt_state = carry
        grads, batch_stats = jax.grad(loss_fn, has_aux=True)(params, batch_stats, idx)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), batch_stats, opt_state), None

    def epoch(carry, epoch_key):
        perm = jax.random.permutation(epoch_key, x.shape[0])[: num_batches * batch]
        carry, _ = jax.lax.scan(step, carry, perm.reshape(num_batches, batch))
        return carry, None

    (params, batch_stats, _), _ = jax.lax.scan(epoch, (params, batch_stats, opt_state),
                                               jax.random.split(key, epochs))
    return map_in_chunks(lambda c: apply_stateful(teacher, params, batch_stats, c, False)[0],
                         x if predict_x is None else predict_x, config.eval_batch_size)
