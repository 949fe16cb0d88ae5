"""The cut layer: identity forward; the backward message replaced by the policy's, seen on the wire."""
import dataclasses

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from ladsg_jax.config import TrainConfig
from ladsg_jax.defenses import Defense
from ladsg_jax.vfl.model import VFLModel
from ladsg_jax.vfl.optim import make_optimizers
from ladsg_jax.vfl.state import Batch, TrainState
from ladsg_jax.vfl.step import make_train_step
from ladsg_jax.vfl.train import default_hparams

B, F, C = 8, 5, 3


@dataclasses.dataclass(frozen=True)
class FlipAndNudge(Defense):
    """A substituting policy that depends on the gradient, on its hyperparameter and on ctx:
    m = scale·g + 0.1·onehot(y), `scale` (default -2) read from `hp` as every hook reads it."""

    name = "test_flip"
    hyper = ("scale",)

    scale: float = -2.0

    def cut(self, hp, g, ctx):
        return hp["scale"] * g + 0.1 * jax.nn.one_hot(ctx["labels"], g.shape[-1])


def make_problem(top_model="mlp", seed=0):
    config = TrainConfig(bottom_hidden=(6,), top_model=top_model, top_hidden=(7,))
    model = VFLModel.from_config(config, num_classes=C)
    kx, ky, kp = jax.random.split(jax.random.key(seed), 3)
    xs = tuple(jax.random.normal(k, (B, F)) for k in jax.random.split(kx, 2))
    y = jax.random.randint(ky, (B,), 0, C)
    params, stats = model.init(kp, xs)
    return model, params, stats, xs, y


def loss_with_cut(model, policy, params, wire, stats, xs, y, hp=None):
    ctx = {"labels": y, "key": jax.random.key(1)}
    hp = policy.hparams() if hp is None else hp
    logits = model.apply_train(params, stats, xs, (wire,), policy, hp, None, ctx)[0]
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()


def plain_loss_from_embeddings(model, params, stats, hs, y):
    logits, _ = model.top(params, stats, hs, train=True)
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()


def plain_loss(model, params, stats, xs, y):
    hs = model.embeddings(params, stats, xs)[0]
    return plain_loss_from_embeddings(model, params, stats, hs, y)


def grads_with_cut(model, policy, params, stats, xs, y, hp=None):
    wire = jnp.zeros((B, model.embed_dim))
    return jax.grad(lambda p, w: loss_with_cut(model, policy, p, w, stats, xs, y, hp),
                    argnums=(0, 1))(params, wire)


def expected_grads(model, policy, params, stats, xs, y, hp=None):
    """Hand-assembled: true ∂L/∂h0, the policy's message, and the VJP of bottom 0 at it."""
    plain = jax.grad(lambda p: plain_loss(model, params | p, stats, xs, y))(params)
    hs = model.embeddings(params, stats, xs)[0]
    g0 = jax.grad(lambda h0: plain_loss_from_embeddings(model, params, stats,
                                                        (h0, hs[1]), y))(hs[0])
    hp = policy.hparams() if hp is None else hp
    message = policy.cut(hp, g0, {"labels": y, "key": jax.random.key(1)})
    bottom = model.bottom_module()
    _, vjp = jax.vjp(lambda p: bottom.apply({"params": p}, xs[0]),
                     params["party_0"]["bottom"])
    expected = dict(plain)
    expected["party_0"] = {"bottom": vjp(message)[0]}
    return plain, expected, message


def assert_trees_close(a, b, atol=1e-6):
    chex.assert_trees_all_close(a, b, atol=atol, rtol=1e-5)


@pytest.mark.parametrize("top_model", ["mlp", "none"])
def test_identity_policy_matches_plain_autodiff(top_model):
    model, params, stats, xs, y = make_problem(top_model)
    grads, wire_grad = grads_with_cut(model, Defense(), params, stats, xs, y)
    plain, _, true_message = expected_grads(model, Defense(), params, stats, xs, y)
    assert_trees_close(grads, plain)
    assert_trees_close(wire_grad, true_message)
    assert float(jnp.abs(wire_grad).max()) > 0


@pytest.mark.parametrize("top_model", ["mlp", "none"])
def test_substituting_policy_replaces_only_the_passive_message(top_model):
    model, params, stats, xs, y = make_problem(top_model)
    policy = FlipAndNudge()
    grads, wire_grad = grads_with_cut(model, policy, params, stats, xs, y)
    plain, expected, message = expected_grads(model, policy, params, stats, xs, y)
    assert_trees_close(grads["party_0"], expected["party_0"])
    assert_trees_close(grads["party_1"], plain["party_1"])      # top and active bottom unchanged
    assert_trees_close(wire_grad, message)                       # the wire shows what was sent
    with pytest.raises(AssertionError):                          # and it really was substituted
        assert_trees_close(grads["party_0"], plain["party_0"])


def test_substitution_under_jit_vmap_and_grad_of_vmap():
    policy = FlipAndNudge()
    problems = [make_problem(seed=s) for s in range(3)]
    model, _, stats, _, _ = problems[0]
    params = jax.tree.map(lambda *a: jnp.stack(a), *[p[1] for p in problems])
    xs = tuple(jnp.stack([p[3][k] for p in problems]) for k in range(2))
    ys = jnp.stack([p[4] for p in problems])

    per_problem = [expected_grads(model, policy, p[1], stats, p[3], p[4]) for p in problems]
    jitted = jax.jit(lambda p, x, y: grads_with_cut(model, policy, p, stats, x, y))
    for (_, expected, message), (_, p, _, x, y) in zip(per_problem, problems):
        grads, wire = jitted(p, x, y)
        assert_trees_close(grads, expected)
        assert_trees_close(wire, message)

    vmapped = jax.jit(jax.vmap(lambda p, x, y: grads_with_cut(model, policy, p, stats, x, y)))
    grads, wires = vmapped(params, xs, ys)
    for i, (_, expected, message) in enumerate(per_problem):
        assert_trees_close(jax.tree.map(lambda a: a[i], grads), expected)
        assert_trees_close(wires[i], message)

    # grad of vmap: one shared parameter set, a batch of problems, the loss summed over them.
    shared = problems[0][1]
    wire0 = jnp.zeros((3, B, model.embed_dim))
    total = lambda p, w: jnp.sum(jax.vmap(
        lambda wi, x, y: loss_with_cut(model, policy, p, wi, stats, x, y))(w, xs, ys))
    grads, wires = jax.jit(jax.grad(total, argnums=(0, 1)))(shared, wire0)
    summed = [expected_grads(model, policy, shared, stats, p[3], p[4]) for p in problems]
    assert_trees_close(grads, jax.tree.map(lambda *g: sum(g), *[s[1] for s in summed]), atol=1e-5)
    for i, (_, _, message) in enumerate(summed):
        assert_trees_close(wires[i], message)


def test_the_policy_reads_its_hyperparameters_from_hp_traced():
    """The cut's backward reads `hp`, a traced argument: another value takes effect under jit
    (the field is only the default), and a vmap over hp values gives each value's message."""
    model, params, stats, xs, y = make_problem()
    policy = FlipAndNudge()
    run = jax.jit(lambda hp: grads_with_cut(model, policy, params, stats, xs, y, hp))
    hps = [{"scale": jnp.float32(s)} for s in (3.0, -2.0, 0.5)]
    for hp in hps:
        grads, wire = run(hp)
        _, expected, message = expected_grads(model, policy, params, stats, xs, y, hp)
        assert_trees_close(grads, expected)
        assert_trees_close(wire, message)
    default_message = expected_grads(model, policy, params, stats, xs, y)[2]
    other_message = expected_grads(model, policy, params, stats, xs, y, hps[0])[2]
    with pytest.raises(AssertionError):                          # 3 is not the field's -2
        assert_trees_close(other_message, default_message)
    stacked = jax.tree.map(lambda *a: jnp.stack(a), *hps)
    _, wires = jax.jit(jax.vmap(lambda hp: grads_with_cut(model, policy, params, stats, xs, y,
                                                          hp)))(stacked)
    for i, hp in enumerate(hps):
        assert_trees_close(wires[i], expected_grads(model, policy, params, stats, xs, y, hp)[2])


def test_train_step_returns_the_message_on_the_wire():
    model, params, stats, xs, y = make_problem()
    policy = FlipAndNudge()
    config = TrainConfig(bottom_hidden=(6,), top_hidden=(7,), defense=policy)
    optimizers = lambda rate: make_optimizers(config, None, None, rate)       # noqa: E731
    hparams = default_hparams(config)
    assert set(hparams["defense"]) == {"scale"}
    opts = optimizers(hparams["learning_rate"])
    state = TrainState(params=params, batch_stats=stats,
                       opt_state={k: opts[k].init(v) for k, v in params.items()},
                       key=jax.random.key(0), step=jnp.zeros((), jnp.int32), hparams=hparams)
    assert state.defense_state is None
    step = jax.jit(make_train_step(model, optimizers, policy))
    new_state, metrics, wire = step(state, Batch(x=xs, y=y))
    _, expected, message = expected_grads(model, policy, params, stats, xs, y)
    assert len(wire) == 1
    assert_trees_close(wire[0], message)
    # SGD with momentum, first step: Δθ = -lr·grad.
    lr = config.learning_rate
    assert_trees_close(jax.tree.map(lambda a, b: (b - a) / -lr, params, new_state.params),
                       expected, atol=1e-5)
    assert int(new_state.step) == 1 and np.isfinite(float(metrics["loss"]))
    # the state's hyperparameters drive the step: another learning rate and scale
    other = {"learning_rate": jnp.float32(lr / 2), "defense": {"scale": jnp.float32(3.0)}}
    new_state, _, wire = step(state.replace(hparams=other), Batch(x=xs, y=y))
    _, expected, message = expected_grads(model, policy, params, stats, xs, y, other["defense"])
    assert_trees_close(wire[0], message)
    assert_trees_close(jax.tree.map(lambda a, b: (b - a) / -(lr / 2), params, new_state.params),
                       expected, atol=1e-5)
