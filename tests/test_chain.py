"""`chain`: defenses compose in order, each with its own state and hyperparameters; keys go
only to the members that draw, so a chain of one random member is that member exactly."""
import jax
import jax.numpy as jnp
import numpy as np

from ladsg_jax.config import TrainConfig
from ladsg_jax.defenses import BATCH_CUT, PER_SAMPLE, WHOLE_BATCH, chain
from ladsg_jax.defenses.cae import CAE, DCAE
from ladsg_jax.defenses.dcor import DistanceCorrelation
from ladsg_jax.defenses.labels import LabelDP
from ladsg_jax.defenses.noise import LaplaceNoise
from ladsg_jax.defenses.quantize import DiscreteSGD, SignSGD
from ladsg_jax.app.session import config_record
from ladsg_jax.vfl.runner import Runner, seed_keys

SMALL = TrainConfig(bottom_hidden=(16,), top_hidden=(8,), batch_size=32, epochs=2, seeds="vmap")


def cut(defense, g, key=0):
    """`defense`'s message for `g`, through its forward pass as the step makes it."""
    hp = defense.hparams()
    hs = (g, g)
    ctx = {"labels": jnp.zeros(g.shape[0], jnp.int32), "targets": jnp.zeros(g.shape),
           "key": jax.random.key(key), "index": jnp.arange(g.shape[0])}
    state = None if not hasattr(defense, "members") else tuple(None for _ in defense.members)
    _, contexts, _ = defense.forward(hp, state, hs, ctx, None)
    return defense.cut(hp, g, contexts[0])


def test_a_chain_of_one_random_member_sends_exactly_its_message():
    g = jax.random.normal(jax.random.key(1), (8, 4))
    np.testing.assert_array_equal(cut(chain(LaplaceNoise(0.1)), g), cut(LaplaceNoise(0.1), g))
    # a member that draws nothing leaves the key to the one that does
    both = cut(chain(LaplaceNoise(0.1), SignSGD()), g)
    np.testing.assert_array_equal(both, cut(SignSGD(), cut(LaplaceNoise(0.1), g)))


def test_two_random_members_draw_independent_noise_in_order():
    g = jnp.zeros((64, 4))
    twice = cut(chain(LaplaceNoise(1.0), LaplaceNoise(1.0)), g)
    once = cut(LaplaceNoise(1.0), g)
    assert not np.allclose(twice, 2 * once)              # not the same stream twice
    assert np.var(np.asarray(twice)) > 1.5 * np.var(np.asarray(once))   # variances add
    # order matters: discretize then noise is not noise then discretize
    a = cut(chain(DiscreteSGD(bins=3), LaplaceNoise(0.01)), g + 1.0)
    b = cut(chain(LaplaceNoise(0.01), DiscreteSGD(bins=3)), g + 1.0)
    assert len(np.unique(np.asarray(b))) <= 3 < len(np.unique(np.asarray(a)))


def test_targets_compose_in_order_and_decode_in_reverse(synthetic):
    config = SMALL.replace(defense=chain(LabelDP(epsilon=0.0), CAE(steps=50)))
    state = Runner(config).initial_states(synthetic, seed_keys(0, 1))[0]
    noisy, codes = state.defense_state[0].labels[0], state.defense_state[1].codes[0]
    assert (np.asarray(noisy) != np.asarray(synthetic.train_y)).any()
    defense, hp = config.defense, jax.tree.map(lambda a: a[0], state.hparams["defense"])
    member_state = jax.tree.map(lambda a: a[0], state.defense_state)
    index = jnp.arange(5)
    onehot = jax.nn.one_hot(synthetic.train_y[:5], 3)
    targets = defense.targets(hp, member_state, onehot, synthetic.train_y[:5], index)
    np.testing.assert_allclose(targets, codes[noisy[:5]], rtol=1e-6)
    logits = jax.random.normal(jax.random.key(2), (5, 3))
    np.testing.assert_allclose(defense.decode(hp, member_state, logits),
                               CAE(steps=50).decode(hp[1], member_state[1], logits), rtol=1e-6)


def test_dcae_is_the_chain_of_cae_and_discrete_sgd(synthetic):
    dcae = DCAE(lam=0.3, steps=50, bins=4)
    assert dcae.members == (CAE(lam=0.3, steps=50), DiscreteSGD(bins=4))
    a = Runner(SMALL.replace(defense=dcae)).fit(synthetic, seed_keys(0, 2))
    b = Runner(SMALL.replace(defense=chain(CAE(lam=0.3, steps=50), DiscreteSGD(bins=4)))).fit(
        synthetic, seed_keys(0, 2))
    np.testing.assert_array_equal(a.train_loss, b.train_loss)
    np.testing.assert_array_equal(a.test_accuracy, b.test_accuracy)


def test_needs_draws_hparams_and_the_record_of_a_chain():
    mixed = chain(LabelDP(), LaplaceNoise(0.2), DistanceCorrelation(0.5))
    assert chain(LabelDP()).needs == PER_SAMPLE
    assert chain(LabelDP(), LaplaceNoise()).needs == BATCH_CUT
    assert mixed.needs == WHOLE_BATCH
    assert mixed.draws == {"init", "cut"}
    hp = mixed.hparams()
    assert [sorted(h) for h in hp] == [["epsilon"], ["scale"], ["weight"]]
    assert float(hp[1]["scale"]) == np.float32(0.2)
    record = config_record(SMALL.replace(defense=mixed))["defense"]
    assert record["name"] == "chain"
    assert [p["name"] for p in record["parts"]] == ["label_dp", "laplace", "dcor"]
    assert record["parts"][1]["scale"] == 0.2


# a chain named on the command line or in a config: `A+B`, options routed to members

def test_a_chain_by_name_routes_each_option_to_its_member():
    import re

    import pytest

    from ladsg_jax.defenses import make_defense
    from ladsg_jax.defenses.sparsify import GradientCompression
    from ladsg_jax.errors import ConfigError

    built = make_defense("laplace+compression", scale="0.003", **{"compression.keep": "0.1"})
    assert built == chain(LaplaceNoise(scale=0.003), GradientCompression(keep=0.1))
    assert config_record(SMALL.replace(defense=built))["defense"] == {
        "name": "chain", "parts": [{"name": "laplace", "scale": 0.003, "rescale": "none"},
                                   {"name": "compression", "keep": 0.1, "count": "ceil",
                                    "error_feedback": False}]}
    for spec, options, message in [
        ("kdk+label_dp", {"epsilon": "1"},
         "defense.epsilon: a field of kdk and label_dp; write defense.kdk.epsilon"),
        ("laplace+compression", {"sign.keep": "0.1"},
         "defense.sign.keep (member): unknown value 'sign'; allowed: compression, laplace"),
        ("laplace+compression", {"bins": "3"}, "defense.laplace+compression option: unknown "
                                               "value 'bins'; allowed: compression.count, "
                                               "compression.error_feedback, compression.keep, "
                                               "laplace.rescale, laplace.scale"),
        ("laplace+magic", {}, "defense: unknown value 'magic'"),
        ("laplace+laplace", {}, "names laplace more than once"),
        ("laplace+compression", {"keep": "2"}, "defense.compression.keep"),
    ]:
        with pytest.raises(ConfigError, match=re.escape(message)):
            make_defense(spec, **options)


def test_a_grid_over_a_chain_members_knob_is_one_program_equal_to_the_separate_runs(
        synthetic):
    from ladsg_jax.app.sweep import grid_points, point_config, static_groups
    from ladsg_jax.vfl.train import default_hparams, stack_hparams

    points = grid_points("laplace+compression", {"keep": "0.5"},
                         {"laplace.scale": ["0.001", "0.05"]})
    assert [p.values for p in points] == [{"laplace.scale": 0.001}, {"laplace.scale": 0.05}]
    config = SMALL.replace(defense=points[0].defense, epochs=1)
    assert len(static_groups(config, points)) == 1                   # one compiled setting
    grid = stack_hparams([default_hparams(point_config(config, p)) for p in points])
    runs = Runner(config).fit(synthetic, seed_keys(0, 2), hparams=grid)
    for p, point in enumerate(points):
        alone = Runner(point_config(config, point)).fit(synthetic, seed_keys(0, 2))
        np.testing.assert_allclose(runs.train_loss[2 * p:2 * p + 2], alone.train_loss,
                                   atol=1e-5)
    assert not np.allclose(runs.train_loss[:2], runs.train_loss[2:])


def test_the_command_line_trains_a_named_chain(tmp_path):
    import json

    from ladsg_jax.app.cli import main

    code = main(["train", "--dataset", "synthetic", "--epochs", "1", "--seeds", "1",
                 "--defense", "laplace+compression", "--defense.laplace.scale", "0.002",
                 "--defense.keep", "0.3", "--runs-dir", str(tmp_path), "--name", "c",
                 "--no-progress"])
    assert code == 0
    record = json.loads((tmp_path / "c" / "result.json").read_text())
    assert record["config"]["defense"]["parts"] == [
        {"name": "laplace", "scale": 0.002, "rescale": "none"},
        {"name": "compression", "keep": 0.3, "count": "ceil", "error_feedback": False}]


def test_a_composites_options_address_its_stages(tmp_path):
    """LADSG's and DCAE's options as `STAGE.FIELD` (issue 30 item 3), the same field as the
    plain name: in make_defense, a grid (one program over a traced field) and the command
    line; a stage or field the composite lacks, or one field given twice, is one line."""
    import json
    import re

    import pytest

    from ladsg_jax.app.cli import main
    from ladsg_jax.app.sweep import grid_points, static_part
    from ladsg_jax.defenses import LADSG, make_defense
    from ladsg_jax.errors import ConfigError

    assert make_defense("ladsg", **{"sg.rho": "0.3", "la.epsilon": "0.2"}) == LADSG(
        rho=0.3, epsilon=0.2)
    assert make_defense("dcae", **{"cae.lam": "0.5"}) == DCAE(lam=0.5)
    for options, message in [
        ({"la.rho": "0.3"}, "defense.ladsg option: unknown value 'la.rho'; allowed: "),
        ({"xx.rho": "0.3"}, "defense.ladsg option: unknown value 'xx.rho'"),
        ({"sg.rho": "0.3", "rho": "0.2"}, "defense.ladsg.rho: given twice"),
        ({"sg.rho": "2"}, "defense.ladsg.rho: must be in [-1, 1], got 2.0"),
    ]:
        with pytest.raises(ConfigError, match=re.escape(message)):
            make_defense("ladsg", **options)
    points = grid_points("ladsg", {}, {"sg.rho": ["0.1", "0.9"]})
    assert [p.values for p in points] == [{"sg.rho": 0.1}, {"sg.rho": 0.9}]
    assert [p.defense.rho for p in points] == [0.1, 0.9]
    assert static_part(points[0].defense) == static_part(points[1].defense)
    with pytest.raises(ConfigError, match=re.escape("unknown value 'nd.rho'")):
        grid_points("ladsg", {}, {"nd.rho": ["0.1"]})
    assert main(["train", "--dataset", "synthetic", "--epochs", "1", "--seeds", "1",
                 "--defense", "ladsg", "--defense.sg.rho", "0.3", "--defense.teacher_epochs",
                 "1", "--runs-dir", str(tmp_path), "--name", "s", "--no-progress"]) == 0
    record = json.loads((tmp_path / "s" / "result.json").read_text())
    assert record["config"]["defense"]["rho"] == 0.3
