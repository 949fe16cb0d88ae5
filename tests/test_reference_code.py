"""Where we depart from Fu et al.'s and VFLAIR's code, and the options that give theirs (README,
"Departures from the reference code"): each against a hand-derived expectation."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from ladsg_jax import metrics
from ladsg_jax.app.attack_table import STRONGEST_DIRECT, add_comparisons, add_strongest_direct
from ladsg_jax.attacks.direct import MISS, direct_label_inference, epoch_messages, readings
from ladsg_jax.attacks.predictions import score
from ladsg_jax.attacks.malicious import MaliciousOptimizer, malicious_sgd
from ladsg_jax.attacks.settings import AttackSettings
from ladsg_jax.config import TrainConfig
from ladsg_jax.errors import ConfigError
from ladsg_jax.app.sweep import grid_points, point_config
from ladsg_jax.vfl.optim import make_optimizers
from ladsg_jax.vfl.runner import Runner, seed_keys
from ladsg_jax.vfl.train import WireRecord, default_hparams, stack_hparams


def run_updates(opt, grads, params):
    state, out = opt.init(params), []
    for g in grads:
        update, state = opt.update(g, state, params)
        out.append(np.asarray(update["w"]))
    return out


# 1. the malicious optimizer follows the honest parties' step decay

def test_the_malicious_optimizer_decays_with_the_honest_schedule():
    config = TrainConfig(learning_rate=0.1, momentum=0.0, lr_decay_epochs=(1, 2),
                         lr_decay=0.5)
    optimizers = make_optimizers(config, {"party_0": MaliciousOptimizer(momentum=0.0,
                                                                         gamma=0.0)},
                                 steps_per_epoch=2)
    params = {"w": jnp.zeros(1)}
    grads = [{"w": jnp.ones(1)}] * 6
    # γ = 0, μ = 0: a ratio of 1 and the plain gradient; 0.1, then ×0.5 at steps 2 and 4
    expected = [-0.1, -0.1, -0.05, -0.05, -0.025, -0.025]
    np.testing.assert_allclose(np.concatenate(run_updates(optimizers["party_0"], grads,
                                                          params)), expected, rtol=1e-6)
    np.testing.assert_allclose(np.concatenate(run_updates(optimizers["party_1"], grads,
                                                          params)), expected, rtol=1e-6)


def test_with_gamma_zero_the_malicious_optimizer_is_sgd_with_momentum_on_a_schedule():
    schedule = optax.piecewise_constant_schedule(0.2, {3: 0.1})
    grads = [{"w": jnp.array([1.0, -2.0, 0.5]) * (k + 1)} for k in range(6)]
    params = {"w": jnp.ones(3)}
    ours = run_updates(malicious_sgd(schedule, momentum=0.9, gamma=0.0), grads, params)
    honest = run_updates(optax.sgd(schedule, momentum=0.9), grads, params)
    np.testing.assert_allclose(ours, honest, rtol=1e-6)


# 2. Fu et al.'s released MaliciousSGD under PyTorch 1.7

def test_the_fu_torch17_rule_doubles_the_gradient_forgets_and_keeps_the_scaled_step():
    opt = malicious_sgd(0.1, momentum=0.5, gamma=1.0, rule="fu_torch17")
    params = {"w": jnp.zeros(3)}
    grads = [{"w": jnp.array(g)} for g in ([1.0, 1.0, 1.0], [1.0, -3.0, 10.0], [2.0, 3.0, 1.0])]
    # u0 = g0, unscaled, kept as s0. u1 = 2·0.5·g1 = g1; r1 = clamp(1 + u1/s0, 1, 5) = [2, 1, 5];
    # s1 = u1·r1 = [2, -3, 50]. u2 = g2; r2 = clamp(1 + [2/2, 3/−3, 1/50]) = [2, 1, 1.02].
    expected = [[-0.1, -0.1, -0.1], [-0.2, 0.3, -5.0], [-0.4, -0.3, -0.102]]
    np.testing.assert_allclose(run_updates(opt, grads, params), expected, rtol=1e-5)
    # the stated rule keeps momentum: b1 = 0.5·g0 + g1 = [1.5, -2.5, 10.5], ratios vs b0 = g0
    paper = run_updates(malicious_sgd(0.1, momentum=0.5, gamma=1.0), grads[:2], params)
    np.testing.assert_allclose(paper[1], -0.1 * np.array([1.5 * 2.5, -2.5 * 1.0, 10.5 * 5.0]),
                               rtol=1e-5)


def test_the_fu_torch17_rule_without_momentum_uses_the_gradient_itself():
    opt = malicious_sgd(1.0, momentum=0.0, weight_decay=0.5, gamma=1.0, rule="fu_torch17")
    params = {"w": jnp.array([2.0])}
    grads = [{"w": jnp.array([1.0])}, {"w": jnp.array([1.0])}]
    # d = g + 0.5·θ = 2 both times; r1 = clamp(1 + 2/2) = 2; steps −2, −4
    np.testing.assert_allclose(np.concatenate(run_updates(opt, grads, params)), [-2.0, -4.0],
                               rtol=1e-6)
    with pytest.raises(ConfigError, match="malicious_rule"):
        malicious_sgd(0.1, rule="pytorch2")


def test_the_malicious_optimizer_follows_a_learning_rate_grid(synthetic):
    """A grid point's malicious run equals its separate run: party 0 trains at the point's
    (traced) rate and its step decay, not at the config's base rate."""
    config = TrainConfig(bottom_hidden=(16,), top_hidden=(8,), batch_size=64, epochs=2,
                         learning_rate=0.05, lr_decay_epochs=(1,), lr_decay=0.1,
                         seeds="vmap")
    points = grid_points("none", {}, {"learning_rate": ["0.01", "0.2"]})
    malicious = {"party_0": MaliciousOptimizer.for_config(config)}
    grid = stack_hparams([default_hparams(point_config(config, p)) for p in points])
    runs = Runner(config, malicious).fit(synthetic, seed_keys(0, 1), hparams=grid)
    for p, point in enumerate(points):
        alone = Runner(point_config(config, point), malicious).fit(synthetic, seed_keys(0, 1))
        np.testing.assert_allclose(runs.train_loss[p:p + 1], alone.train_loss, atol=1e-5)
        for a, b in zip(jax.tree.leaves(runs.state.params["party_0"]),
                        jax.tree.leaves(alone.state.params["party_0"])):
            np.testing.assert_allclose(a[p:p + 1], b, atol=1e-5)
    assert not np.allclose(runs.train_loss[0], runs.train_loss[1])


def test_the_malicious_rule_is_an_attack_setting_with_a_clear_error():
    assert AttackSettings().malicious_rule == "paper"
    assert AttackSettings(malicious_rule="fu_torch17").malicious_rule == "fu_torch17"
    with pytest.raises(ConfigError, match="malicious_rule.*fu_torch17, paper"):
        AttackSettings(malicious_rule="torch2")
    # a checkpoint knows which rule its run used
    assert repr(MaliciousOptimizer(rule="fu_torch17")) != repr(MaliciousOptimizer())


# 3. the direct attack's epoch and its rows with no negative entry

def tiny_wire():
    """Three samples over two epochs (batches of one, seen in different orders)."""
    indices = jnp.array([[[0], [1], [2]], [[2], [0], [1]]])
    first = jnp.array([[[0.3, -0.2]], [[0.1, 0.2]], [[-0.4, 0.1]]])    # 0→1, 1→none, 2→0
    last = jnp.array([[[0.5, 0.6]], [[0.2, 0.1]], [[0.3, -0.05]]])     # 2→none, 0→none, 1→1
    return WireRecord(indices=indices, messages=(jnp.stack([first, last]),))


def test_the_direct_readings_by_epoch_and_no_negative_rule():
    labels = np.array([1, 1, 0])
    wire = tiny_wire()
    first, seen = epoch_messages(wire, 3, "first")
    np.testing.assert_allclose(first, [[0.3, -0.2], [0.1, 0.2], [-0.4, 0.1]])
    assert bool(seen.all())
    np.testing.assert_array_equal(direct_label_inference(first, no_negative="miss"),
                                  [1, MISS, 0])
    lowest, _ = epoch_messages(wire, 3, "min")
    np.testing.assert_allclose(lowest, [[0.2, -0.2], [0.1, -0.05], [-0.4, 0.1]], rtol=1e-6)
    average, _ = epoch_messages(wire, 3, "average")
    np.testing.assert_allclose(average, [[0.25, -0.05], [0.2, 0.075], [0.05, 0.35]],
                               rtol=1e-6)
    labels_of = {"train": labels}
    graded = lambda variant: {k: score(p, "top1", labels_of, 2)[1]
                              for k, p in readings(wire, 3, variant).items()}
    got = graded("first_negative")
    # first: 0 ✓, 1 miss (its argmin 0 ✗), 2 ✓. last: only sample 1 has a negative entry (✓);
    # the argmins 1, 1, 0 are all right. min: 1, 1, 0 all ✓. average: 1 ✓, then no negative
    # entry for samples 1 and 2, whose argmins 1 and 0 are right.
    assert got == pytest.approx({"first/miss": 2 / 3, "first/argmin": 2 / 3,
                                 "last/miss": 1 / 3, "last/argmin": 1.0,
                                 "min/miss": 1.0, "min/argmin": 1.0,
                                 "average/miss": 1 / 3, "average/argmin": 1.0})
    assert graded("argmin") == pytest.approx(
        {"first": 2 / 3, "last": 1.0, "min": 1.0, "average": 1.0})


def test_the_strongest_direct_reading_ranks_the_row():
    record = lambda mean: {"metric": "top1", "mean": mean, "std": 0.0, "n": 2}
    row = {"attacks": {"direct": {**record(0.3), "reading": "first/miss",
                                  "readings": {"first/miss": record(0.3),
                                               "min/argmin": record(0.9)}},
                       "direct_argmin": {**record(0.5), "reading": "first"},
                       "passive_mc": record(0.6)}}
    add_strongest_direct(row)
    assert row["attacks"][STRONGEST_DIRECT]["mean"] == 0.9
    assert row["attacks"][STRONGEST_DIRECT]["from"] == "direct:min/argmin"


# 4. DCS: VFLAIR's ideal attack performance 0, ours the attack's chance

def test_dcs_with_vflair_and_chance_ideals():
    # d_AP 0.35, d_MP 0.05: 1 / (1 + √(½·0.1225 + ½·0.0025)) = 1 / 1.25
    assert metrics.dcs(0.35, 0.80, 0.0, 0.85) == pytest.approx(0.8)
    # chance 0.1 of ten classes: d_AP 0.25: 1 / (1 + √0.0325)
    assert metrics.dcs(0.35, 0.80, 0.1, 0.85) == pytest.approx(1 / (1 + math.sqrt(0.0325)))
    assert round(metrics.dcs(0.35, 0.80, 0.1, 0.85), 4) == 0.8473


def test_table_rows_rank_by_the_strongest_and_average_the_direct_family_once():
    def row(setting, direct, passive, mp):
        attacks = {"direct": {"metric": "top1", "mean": direct, "std": 0.0},
                   "direct_strongest": {"metric": "top1", "mean": direct, "std": 0.0},
                   "passive_mc": {"metric": "top1", "mean": passive, "std": 0.0}}
        return {"dataset": "digits", "setting": setting, "chance": {"top1": 0.1},
                "main_task": {"top_mlp": {"mean": mp}}, "attacks": attacks}
    rows = [row("none", 1.0, 0.9, 0.85), row("laplace", 0.35, 0.1, 0.80)]
    add_comparisons(rows)
    laplace = rows[1]
    assert laplace["attacks"]["direct"]["dcs"] == pytest.approx(0.8)
    assert laplace["attacks"]["direct"]["dcs_chance"] == pytest.approx(0.8473, abs=5e-5)
    # passive: d_AP 0.1 (VFLAIR) or 0 (chance), d_MP 0.05
    vflair_passive = 1 / (1 + math.sqrt(0.5 * 0.01 + 0.5 * 0.0025))
    chance_passive = 1 / (1 + math.sqrt(0.5 * 0.0025))
    assert laplace["dcs_mean"] == pytest.approx((0.8 + vflair_passive) / 2)
    assert laplace["dcs_mean_chance"] == pytest.approx(
        (1 / (1 + math.sqrt(0.0325)) + chance_passive) / 2)
    # the row ranks by its strongest attack: direct's 0.35 over passive's 0.1
    assert laplace["strongest"]["from"] == "direct"
    assert laplace["dcs"] == pytest.approx(0.8)
    assert laplace["dcs_chance"] == pytest.approx(0.8473, abs=5e-5)


# 5. a learning-rate grid trains each point's teacher at the point's rate

@pytest.mark.parametrize("defense, options", [("kdk", {}), ("ladsg", {})])
def test_a_learning_rate_grid_point_equals_its_separate_run_teacher_included(synthetic,
                                                                              defense, options):
    """Measured before the fix: kdk's teacher at the grid's 0.5 point differed from its
    separate run by up to 0.49 (it trained at the config's base rate)."""
    points = grid_points(defense, options, {"learning_rate": ["0.05", "0.5"]})
    config = TrainConfig(bottom_hidden=(16,), top_hidden=(8,), batch_size=64, epochs=1,
                         learning_rate=0.05, seeds="vmap", defense=points[0].defense)
    grid = stack_hparams([default_hparams(point_config(config, p)) for p in points])
    runs = Runner(config).fit(synthetic, seed_keys(0, 1), hparams=grid)
    for p, point in enumerate(points):
        alone = Runner(point_config(config, point)).fit(synthetic, seed_keys(0, 1))
        teacher = jax.tree.leaves(alone.state.defense_state)
        assert teacher, "the defense keeps its teacher's ranking"
        for a, b in zip(jax.tree.leaves(runs.state.defense_state), teacher):
            np.testing.assert_allclose(a[p:p + 1], b, atol=1e-5)
        np.testing.assert_allclose(runs.train_loss[p:p + 1], alone.train_loss, atol=1e-5)
    weights = [leaf for leaf in jax.tree.leaves(runs.state.defense_state)
               if jnp.issubdtype(leaf.dtype, jnp.floating)]
    assert weights and not np.allclose(weights[0][0], weights[0][1])   # the rate reached it
