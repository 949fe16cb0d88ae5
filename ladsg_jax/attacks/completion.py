"""Model completion with MixMatch (Fu et al., USENIX Security 2022, §4.2).

The attacker puts an inference head (BatchNorm → ReLU → Linear) on its trained bottom model and
fine-tunes it on a few known labels and its unlabelled training samples with MixMatch
(Berthelot et al., NeurIPS 2019): K=1 guess per unlabelled sample, sharpened with temperature
T; mixup with λ ~ Beta(α, α), λ = max(λ, 1−λ); soft cross-entropy on the labelled part and MSE
on the unlabelled part, whose weight ramps linearly to `lambda_u` over the run; Adam; a moving
average of the weights predicts. The whole fine-tuning is one jitted `lax.scan`.

Two training loops (`MixMatchConfig.recipe`):
- `fu`, Fu et al.'s released code (`model_completion.py`): batch 16, 10 × 1024 steps, one run;
  labelled and unlabelled (unknown-label) batches each shuffled without replacement; guesses
  and training in train mode, the mixed batch in two interleaved BatchNorm passes; the head's
  last layer initialized to ones; the average (decay 0.999) started at the initial weights and
  taken of the head's BatchNorm statistics too, and the trained weights shrunk by 1 − 0.02·lr
  after every step (their `WeightEMA`).
- `library` (default), ours: batch 32, 2000 steps, 3 restarts; batches drawn with
  replacement, the unlabelled one from every training sample; guesses in evaluation mode; one
  BatchNorm pass; Dense's default initialization; the average started at zero and
  bias-corrected (as Adam's moments are), so that a run of a few hundred steps is not dominated
  by the random initial head. The measured difference is in experiments/README.md.

Restarts (`MixMatchConfig.restarts`, library default 3): a run can collapse onto one class.
Measured on breast_cancer with no defense (20 known labels, head only), 2 of 12 runs (3 seeds ×
4 keys) put 113 or all 114 test samples in one class (F1 0.03 and 0.00); their first ten steps'
loss is high (1.03 and 1.05 against 0.56–0.99 for the others): the random head starts out
confident in one class, and MixMatch's sharpened guesses of its own predictions, weighted up to
λ_u = 50, confirm it while 20 labels cannot pull it back. The attacker sees this with what it
has: such a run fits its known labels, drawn evenly per class, at chance (0.50 against
0.70–0.95 for the others), so the completion keeps the run that fits them best.

Departures from Fu et al.'s code in both recipes: no data augmentation (their tabular and our
digits inputs have none; K=1 then guesses on the sample itself); the final averaged model is
scored, where theirs reports the best of its ten per-epoch evaluations, chosen with the true
labels. Their released code, as it runs, fine-tunes only the head (its optimizer is built
before the trained bottom is put in): `finetune_bottom=False` is that, `True` trains both.
"""
from __future__ import annotations

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from ladsg_jax.attacks.mixmatch import (epoch_batch, interleave_halves, linear_rampup,
                                        mixmatch_loss, mixup, sharpen, shrink,
                                        unlabelled_indices, weight_average_step)
from ladsg_jax.attacks.predictions import Predictions
from ladsg_jax.chunks import map_in_chunks
from ladsg_jax.attacks.settings import MixMatchConfig  # noqa: F401 (re-exported)
from ladsg_jax.errors import ConfigError
from ladsg_jax.models import apply_stateful, split_variables

PREDICT_CHUNK = 1024   # rows per forward pass when predicting a whole split


class InferenceHead(nn.Module):
    """BatchNorm → ReLU → Linear(num_classes) on top of the attacker's embedding. With
    `ones_init` the Linear's kernel starts at ones and its bias uniform in ±1/√fan_in (Fu et
    al.'s `weights_init_ones` on PyTorch's default Linear)."""

    num_classes: int
    ones_init: bool = False

    @nn.compact
    def __call__(self, h, train: bool = False):
        h = nn.BatchNorm(use_running_average=not train, momentum=0.9)(h)
        if not self.ones_init:
            return nn.Dense(self.num_classes)(nn.relu(h))
        bound = 1.0 / np.sqrt(h.shape[-1])
        bias_init = lambda key, shape, dtype: jax.random.uniform(key, shape, dtype, -bound, bound)
        return nn.Dense(self.num_classes, kernel_init=nn.initializers.ones,
                        bias_init=bias_init)(nn.relu(h))


def make_model_completion(bottom: nn.Module, num_classes: int, config: MixMatchConfig):
    """`complete(key, bottom_params, bottom_stats, train_x, known_idx, known_y) -> variables`
    (pure), the best of `config.restarts` runs by their fit to the known labels. `bottom_stats`
    are the bottom's BatchNorm running statistics ({} without BatchNorm): the completed model
    predicts with them (the library recipe also trains on them; the fu recipe trains the
    bottom in train mode, as Fu et al.'s code does).

    `predict(variables, x) -> logits` evaluates the completed model (EMA parameters).
    """
    fu = config.recipe == "fu"
    head = InferenceHead(num_classes, ones_init=fu)
    optimizer = optax.adam(config.learning_rate)
    trainable = lambda p: p if config.finetune_bottom else {"head": p["head"]}
    b = config.batch_size

    def forward(params, batch_stats, x, train):
        h, bottom_stats = apply_stateful(bottom, params["bottom"], batch_stats["bottom"], x,
                                         train=train and fu)
        logits, head_stats = apply_stateful(head, params["head"], batch_stats["head"], h, train)
        return logits, {"bottom": bottom_stats, "head": head_stats}

    def train_step(params, batch_stats, opt_state, loss_fn):
        (loss, batch_stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(
            trainable(params))
        updates, opt_state = optimizer.update(grads, opt_state, trainable(params))
        params = {**params, **optax.apply_updates(trainable(params), updates)}
        return params, batch_stats, opt_state, loss

    def guessed_targets(logits):
        return jax.lax.stop_gradient(sharpen(jax.nn.softmax(logits), config.temperature))

    def library_run(key, params, batch_stats, train_x, known_idx, known_y):
        """Ours: batches drawn with replacement (the unlabelled one from every training
        sample), guesses in evaluation mode, one BatchNorm pass over the mixed batch, an EMA of
        every parameter started at zero and bias-corrected."""
        n = train_x.shape[0]

        def step(carry, inputs):
            params, ema, batch_stats, opt_state = carry
            i, step_key = inputs
            kx, ku, kmix = jax.random.split(step_key, 3)
            xi = known_idx[jax.random.randint(kx, (b,), 0, known_idx.shape[0])]
            px = jax.nn.one_hot(known_y[jnp.searchsorted(known_idx, xi)], num_classes)
            xl, xu = train_x[xi], train_x[jax.random.randint(ku, (b,), 0, n)]
            pu = guessed_targets(forward(params, batch_stats, xu, train=False)[0])
            mixed_x, mixed_p, _ = mixup(kmix, jnp.concatenate([xl, xu]),
                                        jnp.concatenate([px, pu]), config.alpha)
            weight_u = config.lambda_u * linear_rampup(i, config.steps)

            def loss_fn(train_params):
                logits, stats = forward({**params, **train_params}, batch_stats, mixed_x,
                                        train=True)
                return mixmatch_loss(logits[:b], mixed_p[:b], logits[b:], mixed_p[b:],
                                     weight_u), stats

            params, batch_stats, opt_state, loss = train_step(params, batch_stats, opt_state,
                                                              loss_fn)
            ema = weight_average_step(ema, params, config.ema_decay)
            return (params, ema, batch_stats, opt_state), loss

        steps = (jnp.arange(config.steps), jax.random.split(key, config.steps))
        zeros = jax.tree.map(jnp.zeros_like, params)
        opt_state = optimizer.init(trainable(params))
        (params, ema, batch_stats, _), losses = jax.lax.scan(
            step, (params, zeros, batch_stats, opt_state), steps)
        debias = 1.0 - config.ema_decay ** config.steps
        ema = jax.tree.map(lambda e: e / debias, ema)
        return {"params": ema, "batch_stats": batch_stats, "losses": losses}

    def fu_run(key, params, batch_stats, train_x, known_idx, known_y):
        """Fu et al.'s released loop: labelled and unlabelled (unknown-label) batches each
        shuffled without replacement, guesses and training in train mode with the mixed batch
        in two interleaved BatchNorm passes, an average of the trained weights and the head's
        BatchNorm statistics started at their initial values, and after each step the weights
        and statistics shrunk by 1 − 0.02·lr. The completed model predicts with the bottom's
        statistics as given (the averaged model's bottom is the trained one, as in theirs)."""
        n, k = train_x.shape[0], known_idx.shape[0]
        if k < b or n - k < b:
            raise ConfigError("mixmatch.batch_size", f"the fu recipe draws batches of {b} "
                              f"without replacement from {k} known and {n - k} unknown "
                              f"labels: set it to at most {min(k, n - k)}")
        unlabelled = unlabelled_indices(known_idx, n)
        labelled_key, unlabelled_key, key = jax.random.split(key, 3)
        averaged = lambda p, stats: {"params": trainable(p), "head_stats": stats["head"]}
        factor = 1.0 - 0.02 * config.learning_rate

        def step(carry, inputs):
            params, ema, batch_stats, opt_state = carry
            i, mix_key = inputs
            position = epoch_batch(labelled_key, i, k, b)
            px = jax.nn.one_hot(known_y[position], num_classes)
            xl = train_x[known_idx[position]]
            xu = train_x[unlabelled[epoch_batch(unlabelled_key, i, n - k, b)]]
            guess, batch_stats = forward(params, batch_stats, xu, train=True)
            mixed_x, mixed_p, _ = mixup(mix_key, jnp.concatenate([xl, xu]),
                                        jnp.concatenate([px, guessed_targets(guess)]),
                                        config.alpha)
            weight_u = config.lambda_u * linear_rampup(i, config.steps)

            def loss_fn(train_params):
                full = {**params, **train_params}
                first, second = interleave_halves(mixed_x[:b], mixed_x[b:])
                logits_first, stats = forward(full, batch_stats, first, train=True)
                logits_second, stats = forward(full, stats, second, train=True)
                logits_x, logits_u = interleave_halves(logits_first, logits_second)
                return mixmatch_loss(logits_x, mixed_p[:b], logits_u, mixed_p[b:],
                                     weight_u), stats

            params, batch_stats, opt_state, loss = train_step(params, batch_stats, opt_state,
                                                              loss_fn)
            ema = weight_average_step(ema, averaged(params, batch_stats), config.ema_decay)
            params = {**params, **shrink(trainable(params), factor)}
            batch_stats = {**batch_stats, "head": shrink(batch_stats["head"], factor)}
            return (params, ema, batch_stats, opt_state), loss

        steps = (jnp.arange(config.steps), jax.random.split(key, config.steps))
        opt_state = optimizer.init(trainable(params))
        (_, ema, _, _), losses = jax.lax.scan(
            step, (params, averaged(params, batch_stats), batch_stats, opt_state), steps)
        return {"params": {**params, **ema["params"]},
                "batch_stats": {**batch_stats, "head": ema["head_stats"]}, "losses": losses}

    def complete_once(key, bottom_params, bottom_stats, train_x, known_idx, known_y):
        init_key, key = jax.random.split(key)
        h0 = apply_stateful(bottom, bottom_params, bottom_stats, train_x[:b], train=False)[0]
        head_params, head_stats = split_variables(head.init(init_key, h0))
        run = fu_run if fu else library_run
        return run(key, {"bottom": bottom_params, "head": head_params},
                   {"bottom": bottom_stats, "head": head_stats}, train_x, known_idx, known_y)

    def known_fit(variables, train_x, known_idx, known_y):
        """Top-1 on the attacker's known labels: its own check of a run. Known labels are
        drawn evenly per class, so a run locked onto one class fits them at chance."""
        logits = forward(variables["params"], variables["batch_stats"], train_x[known_idx],
                         train=False)[0]
        return jnp.mean(jnp.argmax(logits, axis=-1) == known_y)

    def complete(key, bottom_params, bottom_stats, train_x, known_idx, known_y):
        """`config.restarts` runs (the first from `key` itself), the best fit to the known
        labels kept (the first of equals); `known_fit` holds every run's, `restart` the
        chosen one."""
        if config.restarts == 1:
            out = complete_once(key, bottom_params, bottom_stats, train_x, known_idx, known_y)
            fit = known_fit(out, train_x, known_idx, known_y)
            return {**out, "known_fit": fit[None], "restart": jnp.zeros((), jnp.int32)}
        keys = jnp.concatenate([key[None], jax.random.split(jax.random.fold_in(key, 1),
                                                            config.restarts - 1)])
        runs = jax.vmap(complete_once, in_axes=(0, None, None, None, None, None))(
            keys, bottom_params, bottom_stats, train_x, known_idx, known_y)
        fits = jax.vmap(known_fit, in_axes=(0, None, None, None))(runs, train_x, known_idx,
                                                                 known_y)
        best = jnp.argmax(fits)
        return {**jax.tree.map(lambda a: a[best], runs), "known_fit": fits, "restart": best}

    def predict(variables, x):
        return map_in_chunks(lambda c: forward(variables["params"], variables["batch_stats"], c,
                                               train=False)[0], x, PREDICT_CHUNK)

    return complete, predict


def completion_predictions(predict, variables, view) -> dict:
    """The completed model's class scores for the test split (scored as the main task is)
    and for the training split."""
    def split(x, name):
        return Predictions(index=np.arange(x.shape[0]), scores=np.asarray(predict(variables, x)),
                           split=name)
    return {"score": split(view.test_x, "test"), "train_score": split(view.train_x, "train")}


def compiled_completion(context, finetune_bottom: bool | None = None):
    """`make_model_completion` of the context's bottom, jitted once per context; with
    `finetune_bottom` set, the settings' MixMatch with that choice."""
    config = context.settings.mixmatch
    if finetune_bottom is not None:
        config = dataclasses.replace(config, finetune_bottom=finetune_bottom)
    def build():
        complete, predict = make_model_completion(context.bottom, context.num_classes, config)
        return jax.jit(complete), jax.jit(predict)
    return context.cached(f"completion_{finetune_bottom}", build)


def run_completion(context, view, key):
    """Model completion of the attacker's trained bottom (passive; active when the run is
    the malicious one)."""
    complete, predict = compiled_completion(context)
    variables = complete(key, view.bottom_params, view.bottom_stats, view.train_x,
                         view.known_idx, view.known_y)
    return completion_predictions(predict, variables, view)


def run_raw(context, view, key):
    """The raw-feature floor: a fresh bottom fine-tuned the same way on the attacker's
    features alone, head and bottom."""
    complete, predict = compiled_completion(context, finetune_bottom=True)
    fresh, fresh_stats = split_variables(context.bottom.init(key, view.train_x[:2]))
    variables = complete(key, fresh, fresh_stats, view.train_x, view.known_idx, view.known_y)
    return completion_predictions(predict, variables, view)
