"""LADSG's stages change exactly what they claim (DESIGN §3)."""
import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from ladsg_jax.attacks.suite import AttackSettings, run_attacks
from ladsg_jax.config import TrainConfig
from ladsg_jax.defenses import LADSG, make_defense
from ladsg_jax.defenses.ladsg import cosine_substitute, flsg_substitute
from ladsg_jax.errors import ConfigError
from ladsg_jax.presets import preset_config
from ladsg_jax.vfl.model import VFLModel
from ladsg_jax.vfl.train import make_trainer

B, C = 16, 5


def grads(key, scale=1.0):
    return scale * jax.random.normal(key, (B, 4))


def cut_once(defense, g, key=0):
    return defense.cut(g, {"key": jax.random.key(key)})


def cosine(a, b):
    return jnp.sum(a * b, -1) / (jnp.linalg.norm(a, axis=-1) * jnp.linalg.norm(b, axis=-1))


def test_label_anonymization_targets_sum_to_one_and_keep_the_argmax():
    labels = jnp.arange(B) % C
    state = {"teacher_candidates": jnp.stack([(labels + 1) % C, (labels + 2) % C], axis=1),
             "teacher_weights": jnp.tile(jnp.array([0.75, 0.25]), (B, 1))}
    index = jnp.arange(B)
    uniform = LADSG(stages=("la",), epsilon=0.3).targets(labels, C, state, index)
    np.testing.assert_allclose(uniform.sum(-1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(jnp.argmax(uniform, -1), labels)
    np.testing.assert_allclose(uniform[0], [0.7, 0.15, 0.15, 0.0, 0.0], rtol=1e-6)
    weighted = LADSG(stages=("la",), epsilon=0.4, weighting="teacher").targets(
        labels, C, state, index)
    np.testing.assert_allclose(weighted[0], [0.6, 0.3, 0.1, 0.0, 0.0], rtol=1e-6)
    onehot = LADSG(stages=("sg",)).targets(labels, C, state, index)
    np.testing.assert_allclose(onehot, jax.nn.one_hot(labels, C))


def test_teacher_candidates_exclude_the_label(synthetic):
    defense = LADSG(stages=("la",), k=3, teacher_epochs=3)
    config = TrainConfig(defense=defense, bottom_hidden=(8,))
    state = jax.jit(make_trainer(config).init)(jax.random.key(0), synthetic)
    cands = np.asarray(state.defense_state["teacher_candidates"])
    assert cands.shape == (synthetic.num_train, 2)
    assert not (cands == np.asarray(synthetic.train_y)[:, None]).any()
    assert (cands[:, 0] != cands[:, 1]).all()


@pytest.mark.parametrize("norm", ["keep", "own"])
def test_cosine_messages_have_cosine_rho_and_the_chosen_norm(norm):
    g = grads(jax.random.key(1), scale=3.0)
    s = cut_once(LADSG(rho=0.5, norm=norm), g)
    np.testing.assert_allclose(cosine(s, g), 0.5, atol=1e-5)
    np.testing.assert_allclose(jnp.linalg.norm(s, axis=-1), jnp.linalg.norm(g, axis=-1),
                               rtol=1e-5)
    s = cut_once(LADSG(rho=0.5, norm="batch_mean"), g)
    np.testing.assert_allclose(jnp.linalg.norm(s, axis=-1),
                               jnp.mean(jnp.linalg.norm(g, axis=-1)), rtol=1e-5)
    u = cosine_substitute(g, -0.3, jax.random.normal(jax.random.key(2), g.shape))
    np.testing.assert_allclose(cosine(u, g), -0.3, atol=1e-5)


def test_blending_and_probability_behave_as_stated():
    g = grads(jax.random.key(3))
    full = cut_once(LADSG(mix=1.0, norm="own"), g, key=7)
    half = cut_once(LADSG(mix=0.5, norm="own"), g, key=7)
    np.testing.assert_allclose(half, 0.5 * g + 0.5 * full, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(cut_once(LADSG(prob=0.0), g), g)
    big = grads(jax.random.key(4)).repeat(64, axis=0)
    s = cut_once(LADSG(prob=0.5), big, key=5)
    replaced = np.mean(np.any(np.abs(np.asarray(s - big)) > 1e-7, axis=-1))
    assert 0.4 < replaced < 0.6
    np.testing.assert_allclose(cut_once(LADSG(stages=("la",)), g), g)


def test_flsg_keeps_the_first_draw_above_the_threshold_else_the_closest():
    g = grads(jax.random.key(6))
    key = jax.random.key(8)
    draws = jax.random.normal(key, (16,) + g.shape)
    first = flsg_substitute(key, g, 16, -1.0)           # every draw passes: the first is kept
    np.testing.assert_allclose(first, draws[0])
    best = flsg_substitute(key, g, 16, 1.0)             # none passes: the closest is kept
    cos_all = jax.vmap(lambda d: cosine(d, g))(draws)
    np.testing.assert_allclose(cosine(best, g), cos_all.max(axis=0), rtol=1e-5)
    mid = flsg_substitute(key, g, 16, 0.2)
    ok = (cos_all >= 0.2).any(axis=0)
    assert bool(jnp.all(jnp.where(ok, cosine(mid, g) >= 0.2, True)))


def test_a_decoy_message_is_the_gradient_for_the_decoy_target():
    config = TrainConfig(bottom_hidden=(6,), top_hidden=(7,))
    model = VFLModel.from_config(config, num_classes=C)
    kx, ky, kp, kc = jax.random.split(jax.random.key(0), 4)
    xs = tuple(jax.random.normal(k, (B, 3)) for k in jax.random.split(kx, 2))
    y = jax.random.randint(ky, (B,), 0, C)
    params, stats = model.init(kp, xs)
    others = jnp.stack([(y + 1) % C, (y + 3) % C], axis=1)
    choice = jax.random.randint(kc, (B,), 0, 3)
    state = {"teacher_candidates": others, "teacher_weights": jnp.full((B, 2), 0.5),
             "decoy_candidates": others, "decoy_choice": choice}
    defense = LADSG(mode="decoy", decoy="per_sample", norm="own", mix=1.0, prob=1.0, k=3)
    index = jnp.arange(B)
    targets = defense.targets(y, C, state, index)
    ctx = {"labels": y, "targets": targets, "key": jax.random.key(1), "index": index,
           "state": state}
    wire = jnp.zeros((B, C))
    sent = jax.grad(lambda w: optax.softmax_cross_entropy(
        model.apply_train(params, stats, xs, (w,), defense, ctx)[0], targets).mean())(wire)
    # The decoy target by hand: centred on the chosen member of C_i = {y_i} ∪ S_i.
    members = jnp.concatenate([y[:, None], others], axis=1)
    centre = members[jnp.arange(B), choice]
    decoy = 0.7 * jax.nn.one_hot(centre, C) + 0.15 * (
        jax.nn.one_hot(members, C).sum(1) - jax.nn.one_hot(centre, C))
    hs = model.embeddings(params, stats, xs)[0]
    expected = jax.grad(lambda h0: optax.softmax_cross_entropy(
        model.top(params, stats, (h0, hs[1]), train=True)[0], decoy).mean())(hs[0])
    chex.assert_trees_all_close(sent, expected, atol=1e-6, rtol=1e-5)
    true = jax.grad(lambda h0: optax.softmax_cross_entropy(
        model.top(params, stats, (h0, hs[1]), train=True)[0], targets).mean())(hs[0])
    assert float(jnp.abs(sent - true).max()) > 1e-4       # a substitute, not the true message


def test_bad_hyperparameters_are_named():
    with pytest.raises(ConfigError, match=r"defense.ladsg.epsilon: must be in \[0, \(k-1\)/k\)"):
        LADSG(k=3, epsilon=0.7)
    with pytest.raises(ConfigError, match="defense.ladsg.mode: unknown value 'noise'"):
        LADSG(mode="noise")
    with pytest.raises(ConfigError, match="defense.ladsg.stages: unknown value 'xx'"):
        LADSG(stages=("la", "xx"))
    with pytest.raises(ConfigError, match="defense.ladsg.ratio: must be greater than 1"):
        make_defense("ladsg", stages="la,nd", ratio="0.5")
    with pytest.raises(ConfigError, match="defense.ladsg.warmup: must be a positive integer"):
        LADSG(stages=("nd",), warmup=0)
    with pytest.raises(ConfigError, match=r"defense.ladsg.k: 4 candidates but the data set "
                                          r"has 2 classes"):
        LADSG(k=4).candidates_for(2)
    with pytest.raises(ConfigError, match=r"epsilon: .* for k=2"):
        LADSG(epsilon=0.55).candidates_for(2)


def test_default_ladsg_trains_stably_and_halves_the_direct_attack(digits, breast_cancer):
    """Measured (5 seeds, demo seeds): digits MP 0.977 → 0.945 (top mlp), 0.974 → ~0.945
    (top none); direct 1.00 → 0.11, argmin 1.00 → 0.18. breast_cancer MP 0.963 → 0.953;
    direct 1.00 → 0.52, argmin 1.00 → 0.64: on two classes the floor is chance (0.5), so there
    the excess over chance is what must halve."""
    settings = AttackSettings(known_labels=40)
    for data, chance in ((digits, 0.0), (breast_cancer, 0.5)):
        for top_model in ("none", "mlp"):
            base = preset_config(data.name, top_model=top_model)
            names = ["direct", "direct_argmin", "direct_averaged"] if top_model == "none" else []
            plain = run_attacks(base, data, names, 3, settings=settings)
            defended = run_attacks(base.replace(defense=LADSG()), data, names, 3,
                                   settings=settings)
            mp_plain = np.asarray(plain["main_task"]["per_seed"])
            mp_defended = np.asarray(defended["main_task"]["per_seed"])
            assert (mp_defended > mp_plain - 0.05).all(), (data.name, mp_plain, mp_defended)
            for name in names[:2]:
                before = plain["attacks"][name]["mean"] - chance
                after = defended["attacks"][name]["mean"] - chance
                assert after <= 0.5 * before, (data.name, name, after, before)
            if data.name == "digits" and top_model == "none":
                # The adaptive attacker averages each sample's messages over the epochs: the
                # random part of cosine substitutes cancels (measured 0.40 against 0.18 for the
                # plain argmin, about LA alone's 0.38), so SG adds nothing against it yet.
                attacks = defended["attacks"]
                assert attacks["direct_averaged"]["mean"] > attacks["direct_argmin"]["mean"] + 0.1


def test_per_sample_noise_is_the_same_direction_every_time_a_sample_is_seen(synthetic):
    defense = LADSG(stages=("sg",), noise="per_sample")
    config = TrainConfig(defense=defense, bottom_hidden=(8,))
    state = jax.jit(make_trainer(config).init)(jax.random.key(0), synthetic)
    directions = state.defense_state["noise_directions"]
    assert directions.shape == (1, synthetic.num_train, synthetic.num_classes)
    g = grads(jax.random.key(4))[:, :3]
    index = jnp.arange(B) * 3

    def message(step_key, idx):
        ctx = {"key": jax.random.key(step_key), "index": idx, "state": state.defense_state}
        return defense.cut(g, defense.cut_context(ctx, None, (g, g), 0))

    np.testing.assert_allclose(message(1, index), message(2, index), rtol=1e-6)
    assert float(jnp.abs(message(1, index) - message(1, index + 1)).max()) > 1e-3
    np.testing.assert_allclose(cosine(message(1, index), g), 0.5, atol=1e-5)
    fresh = LADSG(stages=("sg",))
    ctx = {"key": jax.random.key(1), "index": index, "state": {}}
    other = {"key": jax.random.key(2), "index": index, "state": {}}
    assert float(jnp.abs(fresh.cut(g, fresh.cut_context(ctx, None, (g, g), 0))
                         - fresh.cut(g, fresh.cut_context(other, None, (g, g), 0))).max()) > 1e-3
