"""Model completion's two training loops (issue 32 item 4): Fu et al.'s released loop as the
`fu` recipe, each of its parts against a hand-derived case, and the library's defaults kept."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ladsg_jax.attacks.completion import make_model_completion
from ladsg_jax.attacks.mixmatch import epoch_batch, interleave_halves, unlabelled_indices
from ladsg_jax.attacks.settings import AttackSettings, MixMatchConfig
from ladsg_jax.errors import ConfigError


class TinyBottom(nn.Module):
    @nn.compact
    def __call__(self, x, train: bool = False):
        return nn.Dense(4)(x)


def test_each_pass_shuffles_afresh_and_drops_the_last_partial_batch():
    """10 samples in batches of 3: a pass is 3 batches, the permutation of the pass cut in
    order (the 10th sample sits out), and the 4th step starts the next pass's permutation."""
    key = jax.random.key(5)
    batches = [np.asarray(epoch_batch(key, jnp.asarray(i), 10, 3)) for i in range(6)]
    for p in range(2):
        order = np.asarray(jax.random.permutation(jax.random.fold_in(key, p), 10))
        np.testing.assert_array_equal(np.concatenate(batches[3 * p: 3 * p + 3]), order[:9])
        assert len(set(np.concatenate(batches[3 * p: 3 * p + 3]))) == 9


def test_unlabelled_samples_are_those_with_unknown_labels():
    np.testing.assert_array_equal(unlabelled_indices(jnp.array([1, 4, 7]), 9),
                                  [0, 2, 3, 5, 6, 8])


def test_interleave_swaps_the_second_halves_and_puts_them_back():
    """Fu et al.'s interleave of one labelled and one unlabelled batch: offsets [0, b//2, b]
    (the odd one in the second group), the second groups swapped."""
    x, u = np.arange(5), 10 + np.arange(5)
    first, second = interleave_halves(x, u)
    np.testing.assert_array_equal(first, [0, 1, 12, 13, 14])
    np.testing.assert_array_equal(second, [10, 11, 2, 3, 4])
    back = interleave_halves(first, second)
    np.testing.assert_array_equal(back[0], x)
    np.testing.assert_array_equal(back[1], u)


def test_the_recipes_defaults_and_overrides():
    library, fu = MixMatchConfig(), MixMatchConfig(recipe="fu")
    assert (library.steps, library.batch_size, library.restarts) == (2000, 32, 3)
    assert (fu.steps, fu.batch_size, fu.restarts) == (10 * 1024, 16, 1)
    mine = MixMatchConfig(recipe="fu", steps=50, restarts=2)
    assert (mine.steps, mine.batch_size, mine.restarts) == (50, 16, 2)
    assert MixMatchConfig(recipe="fu") == MixMatchConfig(recipe="fu", steps=10240)
    with pytest.raises(ConfigError, match="mixmatch.recipe: unknown value .fu_et_al.; allowed: fu, library"):
        MixMatchConfig(recipe="fu_et_al")
    with pytest.raises(ConfigError, match="mixmatch.batch_size: must be at most known_labels"):
        AttackSettings(known_labels=10, mixmatch=MixMatchConfig(recipe="fu"))
    AttackSettings(known_labels=10, mixmatch=MixMatchConfig(batch_size=32))   # with replacement


def completed(recipe, **fields):
    x = jax.random.normal(jax.random.key(3), (64, 3))
    known_idx = jnp.arange(0, 64, 4)
    known_y = (x[known_idx, 0] > 0).astype(jnp.int32)
    bottom = TinyBottom().init(jax.random.key(0), x[:1])["params"]
    config = MixMatchConfig(recipe=recipe, **{"batch_size": 8, "restarts": 1, **fields})
    complete, predict = make_model_completion(TinyBottom(), 2, config)
    out = jax.jit(complete)(jax.random.key(7), bottom, {}, x, known_idx, known_y)
    return out, predict, x


def test_fu_average_starts_at_the_initial_head_whose_last_layer_is_ones():
    """With a decay of almost 1 the average is the initial weights: Fu's head kernel is ones
    and its BatchNorm statistics are the initial (0, 1); the library's average (from zero,
    bias-corrected) is the trained weights, Dense's default initialization, not ones."""
    fu, _, _ = completed("fu", steps=3, ema_decay=0.999999)
    head = fu["params"]["head"]
    np.testing.assert_allclose(head["Dense_0"]["kernel"], 1.0, atol=1e-4)
    assert np.all(np.abs(head["Dense_0"]["bias"]) <= 0.5 + 1e-4)         # ±1/√4
    stats = fu["batch_stats"]["head"]["BatchNorm_0"]
    np.testing.assert_allclose(stats["mean"], 0.0, atol=1e-4)
    np.testing.assert_allclose(stats["var"], 1.0, atol=1e-4)
    library, _, _ = completed("library", steps=3, ema_decay=0.999999)
    assert np.max(np.abs(library["params"]["head"]["Dense_0"]["kernel"] - 1.0)) > 0.1


def test_fu_average_with_no_decay_is_the_first_adam_step_from_ones():
    """Decay 0 after one step: the average is the weights after the step, before the shrink:
    Adam's first step moves every entry by the learning rate (m̂/√v̂ = sign g), so the kernel's
    entries are 1 ± lr (1 where a gradient is exactly zero)."""
    lr = 0.01
    out, _, _ = completed("fu", steps=1, ema_decay=0.0, learning_rate=lr)
    moved = np.abs(np.asarray(out["params"]["head"]["Dense_0"]["kernel"]) - 1.0)
    assert np.all((np.abs(moved - lr) < 1e-5) | (moved < 1e-7))
    assert np.mean(np.abs(moved - lr) < 1e-5) > 0.5


def test_fu_recipe_learns_a_separable_task_from_few_labels():
    out, predict, x = completed("fu", steps=1000, learning_rate=0.01, ema_decay=0.99)
    accuracy = np.mean(np.argmax(predict(out, x), -1) == np.asarray(x[:, 0] > 0))
    assert accuracy > 0.85, accuracy


def test_fu_recipe_needs_batches_no_larger_than_the_known_labels():
    with pytest.raises(ConfigError, match="mixmatch.batch_size: the fu recipe draws batches "
                                          "of 32 without replacement from 16 known"):
        completed("fu", batch_size=32, steps=1)


def test_attack_help_lists_the_recipe_and_the_direct_epoch(capsys):
    from ladsg_jax.app.cli import main

    with pytest.raises(SystemExit) as done:
        main(["attack", "--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    assert "--mc-recipe" in text and "--direct-epoch" in text and "library, fu" in text
