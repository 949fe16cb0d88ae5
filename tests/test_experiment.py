"""One experiment function (`ladsg_jax.app.experiment`): the plan of which runs a set of attacks
needs, where each attack runs, and a record whose points equal their separate runs."""
import numpy as np
import pytest

from ladsg_jax.defenses import make_defense
from ladsg_jax.errors import ConfigError
from ladsg_jax.app.experiment import Experiment, plan, run_experiment
from ladsg_jax.presets import preset_config
from ladsg_jax.app.sweep import grid_points

ATTACKS = ("direct_argmin", "passive_mc", "active_mc", "inversion")


def settings_planned(experiment):
    return [(g, setting.top_model, names) for g, _, _, setting, names in plan(experiment)]


def test_each_attack_runs_in_the_setting_its_placement_gives(digits):
    config = preset_config("digits")
    assert config.top_model == "mlp"
    own = Experiment(config, digits, 2, attacks=ATTACKS)
    assert settings_planned(own) == [(0, "mlp", ["passive_mc", "active_mc", "inversion"]),
                                     (0, "none", ["direct_argmin"])]
    table = Experiment(config, digits, 2, attacks=ATTACKS, placement="table")
    assert settings_planned(table) == [(0, "mlp", ["passive_mc", "active_mc"]),
                                       (0, "none", ["direct_argmin", "inversion"])]
    given = Experiment(config, digits, 2, attacks=("passive_mc", "inversion"),
                       placement="given")
    assert settings_planned(given) == [(0, "mlp", ["passive_mc", "inversion"])]
    sum_top = [s for *_, s, _ in plan(own) if s.top_model == "none"][0]
    assert sum_top == config.replace(top_model="none", embed_dim=None)
    assert settings_planned(Experiment(config, digits, 2)) == [(0, "mlp", None)]
    noisy = config.replace(defense=make_defense("laplace", scale=0.05))   # not the default
    assert [s.defense for *_, s, _ in plan(Experiment(noisy, digits, 2, attacks=ATTACKS))] == [
        noisy.defense, noisy.defense]


def test_points_that_differ_in_a_static_field_plan_a_group_each(digits):
    config = preset_config("digits")
    traced = grid_points("ladsg", {}, {"rho": ["0.1", "0.5", "0.9"]})
    planned = plan(Experiment(config, digits, 2, points=tuple(traced), attacks=ATTACKS[:2]))
    assert [(g, members) for g, _, members, _, _ in planned] == [(0, [0, 1, 2]), (0, [0, 1, 2])]
    static = grid_points("ladsg", {}, {"k": ["2", "3"], "rho": ["0.1", "0.5"]})
    planned = plan(Experiment(config, digits, 2, points=tuple(static)))
    assert [(g, members) for g, _, members, _, _ in planned] == [(0, [0, 1]), (1, [2, 3])]


def test_bad_experiments_name_the_field(digits):
    config = preset_config("digits")
    with pytest.raises(ConfigError, match="placement.*own, table, given"):
        Experiment(config, digits, 2, placement="mine")
    with pytest.raises(ConfigError, match="num_seeds"):
        Experiment(config, digits, 0)
    with pytest.raises(ConfigError, match="attack"):
        plan(Experiment(config, digits, 2, attacks=("no_such_attack",)))
    with pytest.raises(ConfigError, match="norm_scoring"):               # binary only
        plan(Experiment(config, digits, 2, attacks=("norm_scoring",)))


def test_a_points_record_equals_its_separate_run_and_names_each_setting(breast_cancer):
    """Two points of a traced knob in one program; each equals the experiment of that point
    alone (sequential grid: bit for bit); every attack says where it ran."""
    config = preset_config("breast_cancer", epochs=2, grid="sequential")
    points = grid_points("laplace", {}, {"scale": ["0.001", "0.05"]})
    attacks = ("direct_argmin", "raw_mc")
    both = run_experiment(Experiment(config, breast_cancer, 2, 3, tuple(points), attacks))
    assert both["grid_fields"] == ["scale"] and both["timing"]["static_groups"] == 1
    for point, entry in zip(points, both["grid"]):
        alone = run_experiment(Experiment(config.replace(defense=point.defense), breast_cancer,
                                          2, 3, attacks=attacks))["grid"][0]
        assert entry["values"] == point.values and alone["values"] == {}
        assert set(entry) == set(alone) >= {"main_task", "main_task_by_setting", "configs",
                                            "attacks", "diverged"}
        assert entry["attacks"]["direct_argmin"]["setting"] == "top_none"
        assert entry["attacks"]["raw_mc"]["setting"] == "top_mlp"
        assert entry["main_task"] == entry["main_task_by_setting"]["top_mlp"]
        assert entry["configs"]["top_none"]["top_model"] == "none"
        assert set(entry["diverged"]) == {"honest top_mlp", "honest top_none"}
        for name in attacks:
            np.testing.assert_array_equal(entry["attacks"][name]["per_seed"],
                                          alone["attacks"][name]["per_seed"])
        np.testing.assert_array_equal(entry["main_task"]["per_seed"],
                                      alone["main_task"]["per_seed"])
    assert both["grid"][0]["attacks"]["direct_argmin"]["mean"] > 0.9          # no defense to speak of
