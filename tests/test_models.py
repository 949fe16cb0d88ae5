"""The Flax modules, through `apply` only."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ladsg_jax.errors import ConfigError
from ladsg_jax.models import make_bottom, make_top


def test_bottoms_map_a_slice_to_an_embedding():
    key = jax.random.key(0)
    image = jnp.ones((5, 8, 4, 1))
    for name, widths in (("mlp", (16,)), ("cnn", (4, 8))):
        module = make_bottom(name, widths, 10)
        variables = module.init(key, image)
        assert module.apply(variables, image).shape == (5, 10)
    mlp = make_bottom("mlp", (3,), 2)
    # An MLP with no hidden layer is one affine map: check it against the parameters.
    linear = make_bottom("mlp", (), 2)
    x = jax.random.normal(key, (4, 6))
    p = linear.init(key, x)["params"]["Dense_0"]
    np.testing.assert_allclose(linear.apply({"params": {"Dense_0": p}}, x),
                               x @ p["kernel"] + p["bias"], rtol=1e-5, atol=1e-6)
    assert mlp.apply(mlp.init(key, x), x).shape == (4, 2)


def test_top_model_has_batchnorm_statistics_and_sum_top_adds():
    hs = (jnp.ones((4, 3)), 2 * jnp.ones((4, 3)))
    top = make_top("mlp", (5,), 3)
    variables = top.init(jax.random.key(0), hs)
    assert set(variables) == {"params", "batch_stats"}
    logits, updates = top.apply(variables, hs, train=True, mutable=["batch_stats"])
    assert logits.shape == (4, 3) and "batch_stats" in updates
    summed = make_top("none", (), 3)
    np.testing.assert_allclose(summed.apply(summed.init(jax.random.key(0), hs), hs),
                               3 * jnp.ones((4, 3)))


def test_unknown_model_names_are_rejected():
    with pytest.raises(ConfigError,
                       match="bottom: unknown value 'resnet'; allowed: cnn, hashed_mlp, mlp, res"):
        make_bottom("resnet", (), 2)
    with pytest.raises(ConfigError, match="top_model: unknown value 'deep'; allowed: mlp, none"):
        make_top("deep", (), 2)
