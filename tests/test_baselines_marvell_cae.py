"""Max-norm and Marvell (Li et al., ICLR 2022), CAE and DCAE (Zou et al. 2022) do what their
papers say, with clear expected values."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.optimize import minimize

from ladsg_jax.config import TrainConfig
from ladsg_jax.data import load
from ladsg_jax.defenses.base import BATCH_CUT, PER_SAMPLE
from ladsg_jax.defenses.cae import CAE, DCAE, Autoencoder
from ladsg_jax.defenses.marvell import Marvell, MaxNorm, _solve, marvell_covariances, sum_kl
from ladsg_jax.defenses.quantize import DiscreteSGD, discretize
from ladsg_jax.errors import ConfigError
from ladsg_jax.metrics import leak_auc
from ladsg_jax.vfl.train import make_train, make_trainer

DRAWS = 4000


def draws(defense, g, labels, n=DRAWS):
    """`n` independent messages for the same batch, stacked on axis 0."""
    cut = lambda key: defense.cut(defense.hparams(), g, {"labels": labels, "key": key})
    return jax.jit(jax.vmap(cut))(jax.random.split(jax.random.key(7), n))


def binary_batch(batch=64, d=10):
    """Two well-separated classes, a quarter positive: positive messages large and pointing
    one way, negative ones small and pointing the other (as for a rare positive class)."""
    labels = (jnp.arange(batch) % 4 == 0).astype(jnp.int32)
    centers = jnp.where(labels[:, None] == 1, 0.05, -0.01) * jnp.ones(d)
    return centers + 0.005 * jax.random.normal(jax.random.key(0), (batch, d)), labels


# -- max norm --------------------------------------------------------------------------------

def test_max_norm_aligns_every_expected_squared_norm_to_the_batch_max():
    g = jax.random.normal(jax.random.key(1), (32, 10)) * jnp.linspace(0.01, 0.1, 32)[:, None]
    squared = jnp.sum(g ** 2, axis=-1)
    messages = draws(MaxNorm(), g, jnp.zeros(32, jnp.int32))
    expected = jnp.mean(jnp.sum(messages ** 2, axis=-1), axis=0)
    np.testing.assert_allclose(expected, float(squared.max()), rtol=0.03)
    assert float(squared.min()) < 0.05 * float(squared.max())     # norms did differ


def test_max_norm_scale_zero_sends_the_true_message_and_scale_multiplies_the_std():
    g = jax.random.normal(jax.random.key(1), (32, 10)) * jnp.linspace(0.01, 0.1, 32)[:, None]
    ctx = {"labels": jnp.zeros(32, jnp.int32), "key": jax.random.key(3)}
    cut = lambda scale: MaxNorm(scale=scale).cut({"scale": jnp.float32(scale)}, g, ctx)
    assert jnp.array_equal(cut(0.0), g)
    noise_1 = cut(1.0) - g
    noise_3 = cut(3.0) - g
    np.testing.assert_allclose(noise_3, 3 * noise_1, rtol=1e-5, atol=1e-9)


def test_max_norm_rejects_a_negative_scale():
    with pytest.raises(ConfigError, match="defense.max_norm.scale"):
        MaxNorm(scale=-1.0)


# -- Marvell ---------------------------------------------------------------------------------

def test_marvell_spends_its_power_budget_and_no_more():
    g, labels = binary_batch()
    gap = float(jnp.sum((g[labels == 1].mean(0) - g[labels == 0].mean(0)) ** 2))
    power, p, d = 4.0, 0.25, g.shape[1]
    sigma0, sigma1, lam0, lam1, _, _ = marvell_covariances(g, labels, power)
    analytic = p * (d * sigma1 + lam1) + (1 - p) * (d * sigma0 + lam0)
    np.testing.assert_allclose(float(analytic), power * gap, rtol=1e-4)
    noise = draws(Marvell(power=power), g, labels) - g
    squared = jnp.mean(jnp.sum(noise ** 2, axis=-1), axis=0)       # E‖n_i‖² per sample
    spent = p * float(squared[labels == 1].mean()) + (1 - p) * float(squared[labels == 0].mean())
    assert spent <= power * gap * 1.03
    assert spent >= power * gap * 0.97


def test_marvell_lowers_the_norm_and_direction_leak_auc():
    g, labels = binary_batch()
    noisy = draws(Marvell(), g, labels, n=50)
    reference = 0                                   # the attacker's one known positive
    assert int(labels[reference]) == 1
    others = np.arange(1, g.shape[0])

    def norm_auc(m):
        return leak_auc(np.linalg.norm(m, axis=-1), labels)

    def direction_auc(m):
        m = np.asarray(m)
        cosine = m @ m[reference] / (np.linalg.norm(m, axis=-1) * np.linalg.norm(m[reference]))
        return leak_auc(cosine[others], np.asarray(labels)[others])

    assert norm_auc(g) == 1.0 and direction_auc(g) == 1.0
    assert np.mean([norm_auc(m) for m in noisy]) < 0.7          # measured 0.52
    assert np.mean([direction_auc(m) for m in noisy]) < 0.7     # measured 0.50


def test_marvell_solver_matches_a_general_optimizer():
    """On random problems the structured grid search is no worse than SLSQP, from several
    starts, on the full four-variable problem (its budget made exact)."""
    rng = np.random.default_rng(0)
    for _ in range(6):
        d = int(rng.choice([2, 10, 64]))
        u, v = 10 ** rng.uniform(-3, 1, 2)
        p, power = rng.uniform(0.05, 0.95), 10 ** rng.uniform(-1, 1)
        ours = np.array(_solve(jnp.float32(u), jnp.float32(v), d, jnp.float32(p),
                               jnp.float32(power)), dtype=np.float64)
        cost = lambda z: p * (z[3] + d * z[1]) + (1 - p) * (z[2] + d * z[0])
        objective = lambda z: float(sum_kl(*z, u, v, d, 1.0))
        assert cost(ours) == pytest.approx(power, rel=1e-4)
        best = math.inf
        for _ in range(5):
            start = rng.uniform(0, 1, 4)
            result = minimize(objective, start * power / cost(start), method="SLSQP",
                              bounds=[(0, None)] * 4,
                              constraints=[{"type": "ineq", "fun": lambda z: power - cost(z)}])
            z = np.maximum(result.x, 0)
            best = min(best, objective(z * min(1.0, power / cost(z))))
        assert objective(ours) <= best * (1 + 1e-5)


@pytest.mark.parametrize("label", [0, 1])
def test_marvell_leaves_a_one_class_batch_alone(label):
    g, _ = binary_batch()
    labels = jnp.full(g.shape[0], label, jnp.int32)
    defense = Marvell()
    out = defense.cut(defense.hparams(), g, {"labels": labels, "key": jax.random.key(0)})
    assert bool(jnp.all(jnp.isfinite(out)))
    np.testing.assert_array_equal(out, g)


def test_marvell_needs_a_binary_task():
    data = load("synthetic", num_parties=2, num_classes=3, num_features=8, num_train=64,
                num_test=32)
    with pytest.raises(ConfigError, match="defense.marvell: Marvell protects binary labels; "
                                          "the data set has 3 classes"):
        Marvell().check_data(data.num_classes)
    Marvell().check_data(2)                                       # binary: accepted
    # a training run on more than two classes is refused when it starts, before compiling
    trainer = make_trainer(TrainConfig(defense=Marvell(), bottom_hidden=(8,)))
    with pytest.raises(ConfigError, match="defense.marvell: .*10 classes"):
        trainer.init(jax.random.key(0), load("digits", num_parties=2))
    with pytest.raises(ConfigError, match="defense.marvell: .*3 classes"):
        trainer.init(jax.random.key(0), data)
    with pytest.raises(ConfigError, match="defense.marvell.power"):
        Marvell(power=-1.0)


def test_marvell_trains_a_binary_task():
    data = load("synthetic", num_parties=2, num_classes=2, num_features=8, separation=3.0,
                num_train=256, num_test=128)
    config = TrainConfig(defense=Marvell(), bottom_hidden=(8,), epochs=3)
    result = jax.jit(make_train(config))(jax.random.key(0), data)
    assert bool(jnp.all(jnp.isfinite(result.train_loss)))
    assert float(result.final_test_accuracy) > 0.8          # measured 0.98; chance 0.5


# -- CAE and DCAE ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def cae_state():
    data = load("synthetic", num_parties=2, num_classes=3, num_features=8, num_train=64,
                num_test=32)
    defense = CAE()
    return jax.jit(lambda key: defense.init(key, data, None, defense.hparams()))(
        jax.random.key(0))


def decode(state, logits):
    return CAE().decode(CAE().hparams(), state, logits)


def test_cae_state_is_a_typed_autoencoder(cae_state):
    assert isinstance(cae_state, Autoencoder)
    assert cae_state.codes.shape == (3, 3)
    assert set(cae_state.decoder) == {"Dense_0", "Dense_1"}
    kernels = {layer["kernel"].shape for layer in cae_state.decoder.values()}
    assert kernels == {(3, CAE().width(3)), (CAE().width(3), 3)}       # hidden 6C + 2 = 20
    assert CAE().needs == PER_SAMPLE and set(CAE().hparams()) == {"lam", "learning_rate"}


def test_cae_decodes_its_own_codes_and_the_codes_confuse(cae_state):
    codes = cae_state.codes
    classes = codes.shape[0]
    np.testing.assert_allclose(codes.sum(-1), 1.0, rtol=1e-5)
    decoded = decode(cae_state, jnp.log(codes))              # softmax(log codes) = codes
    np.testing.assert_array_equal(jnp.argmax(decoded, -1), jnp.arange(classes))
    entropy = -jnp.sum(codes * jnp.log(codes), axis=-1)
    assert float(entropy.min()) > 0.95 * math.log(classes)   # measured 0.991·log 3
    assert float(codes.max()) < 0.5                           # measured 0.39
    assert bool(jnp.any(jnp.argmax(codes, -1) != jnp.arange(classes)))


def test_cae_decodes_mixtures_of_its_codes(cae_state):
    """A model trained on soft labels outputs the posterior-weighted mixture of the codes; the
    decoder must return the mixture's main class."""
    codes = cae_state.codes
    weights = jax.random.dirichlet(jax.random.key(1), jnp.ones(3), (1000,))
    decoded = decode(cae_state, jnp.log(weights @ codes))
    confident = jnp.max(weights, -1) > 0.5
    agree = jnp.argmax(decoded, -1) == jnp.argmax(weights, -1)
    assert float(jnp.mean(agree[confident])) > 0.97            # measured 1.0


def test_cae_targets_are_the_codes_of_the_labels(cae_state):
    labels = jnp.array([2, 0, 1, 1])
    onehot = jax.nn.one_hot(labels, 3)
    targets = CAE().targets(CAE().hparams(), cae_state, onehot, labels, jnp.arange(4))
    np.testing.assert_allclose(targets.sum(-1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(targets, cae_state.codes[labels])
    # a soft incoming target (an earlier defense's in a chain) gives its mixture of the codes
    soft = jnp.array([[0.5, 0.25, 0.25]])
    np.testing.assert_allclose(CAE().targets(CAE().hparams(), cae_state, soft, labels[:1],
                                             jnp.arange(1)),
                               soft @ cae_state.codes, rtol=1e-6)


def dcae_cut(defense, g):
    """DCAE's message for one passive party's true message `g`, through its chain: the
    forward pass makes the party's per-member cut contexts, the cut runs every member's."""
    hp, state = defense.hparams(), (None, None)     # the cut never reads the autoencoder
    hs = (jnp.zeros(g.shape), jnp.zeros(g.shape))
    ctx = {"key": jax.random.key(0), "labels": jnp.zeros(g.shape[0], jnp.int32),
           "targets": jnp.zeros((g.shape[0], 3)), "index": jnp.arange(g.shape[0])}
    _, contexts, _ = defense.forward(hp, state, hs, ctx, None)
    assert len(contexts) == 1 and len(contexts[0]) == 2       # one party, two members
    return defense.cut(hp, g, contexts[0])


def test_dcae_is_cae_then_discrete_sgd():
    defense = DCAE(lam=0.25, hidden=7, steps=10, learning_rate=0.1, bins=5)
    assert defense.members == (CAE(lam=0.25, hidden=7, steps=10, learning_rate=0.1),
                               DiscreteSGD(bins=5))
    assert DCAE().members == (CAE(), DiscreteSGD(bins=3))
    hp = defense.hparams()
    assert isinstance(hp, tuple) and len(hp) == 2
    assert set(hp[0]) == {"lam", "learning_rate"} and float(hp[1]["bins"]) == 5.0
    assert defense.needs == BATCH_CUT                # its discretization's batch max
    assert DCAE.knob == "lam"


def test_dcae_cut_lands_on_its_grid():
    g = jax.random.normal(jax.random.key(2), (32, 10)) * 0.01
    for bins in (2, 3, 5):
        out = dcae_cut(DCAE(bins=bins), g)
        np.testing.assert_array_equal(out, discretize(g, jnp.float32(bins)))
        bound = float(jnp.max(jnp.abs(g)))
        position = (np.asarray(out) + bound) / (2 * bound / (bins - 1))
        np.testing.assert_allclose(position, np.round(position), atol=1e-4)
        assert len(np.unique(np.round(position))) <= bins


def test_cae_and_dcae_reject_bad_fields():
    with pytest.raises(ConfigError, match="defense.cae.lam"):
        CAE(lam=-0.1)
    with pytest.raises(ConfigError, match="defense.cae.steps"):
        CAE(steps=0)
    with pytest.raises(ConfigError, match="defense.dcae.lam"):
        DCAE(lam=-0.1)
    with pytest.raises(ConfigError, match="defense.dcae.bins"):
        DCAE(bins=1)


def test_cae_trains_and_is_scored_on_the_true_classes(synthetic):
    config = TrainConfig(defense=CAE(), epochs=10)
    result = jax.jit(make_train(config))(jax.random.key(0), synthetic)
    assert isinstance(result.state.defense_state, Autoencoder)
    # measured 0.844 (undefended 0.922; chance 0.33); the codes' argmax permutes the classes,
    # so this also checks that evaluation goes through `decode`
    assert float(result.final_test_accuracy) > 0.75
