"""The benchmark at a tiny size, the hand FLOP counts, and the fast convolution's gradients."""
from __future__ import annotations

import importlib
import json
import os

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from ladsg_jax.config import TrainConfig
from ladsg_jax.errors import ConfigError
from ladsg_jax.flops import (cifar_resnet_conv_flops, conv2d_flops, dense_flops,
                             vfl_mlp_step_matmul_flops)
from ladsg_jax.models import make_bottom, resolve_conv_gradients
from ladsg_jax.models.fast_conv import NHWC, fast_conv_general_dilated

EXPERIMENTS = os.path.join(os.path.dirname(__file__), os.pardir, "experiments")


@pytest.fixture
def bench(monkeypatch):
    monkeypatch.syspath_prepend(EXPERIMENTS)
    return importlib.import_module("bench")


def test_bench_emits_json_lines_with_expected_keys(bench, capsys, tmp_path):
    out = tmp_path / "bench.jsonl"
    code = bench.main(["--groups", "peak", "step", "defenses", "--bottoms", "mlp",
                       "--batch-size", "8", "--image", "4", "4", "1", "--mlp-hidden", "8",
                       "--repeats", "2", "--mlp-samples", "16", "--peak-size", "64",
                       "--defenses", "marvell", "--out", str(out)])
    assert code == 0
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [json.loads(line) for line in out.read_text().splitlines()] == printed
    by_what = {}
    for record in printed:
        assert {"what", "backend", "load_1m"} <= set(record)
        by_what.setdefault(record["what"], []).append(record)
    assert by_what["matmul_peak"][0]["gflops_per_s"] > 0
    step = by_what["step"][0]
    assert {"median_ms", "compile_s", "xla_flops", "hand_matmul_flops", "gflops_per_s",
            "fraction_of_matmul_peak", "xla_memory_bytes", "rss_peak_mb"} <= set(step)
    assert step["median_ms"] > 0 and step["xla_flops"] >= step["hand_matmul_flops"] > 0
    defenses = {r["defense"]: r for r in by_what["defense_step"]}
    assert defenses["none"]["ratio_vs_none"] == 1.0
    assert "skipped" in defenses["marvell"]            # needs 2 classes; the data have 10


def test_reference_torch_without_torch_says_so(bench, monkeypatch, capsys):
    import builtins
    real_import = builtins.__import__

    def no_torch(name, *args, **kwargs):
        if name == "torch":
            raise ImportError("no torch here")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_torch)
    assert bench.main(["--groups", "peak", "--reference", "torch"]) == 2
    assert "not a dependency" in capsys.readouterr().err


def test_dense_flops_equal_xla_cost_analysis():
    batch, fan_in, fan_out = 5, 3, 7
    layer = nn.Dense(fan_out)
    x = jnp.ones((batch, fan_in))
    params = layer.init(jax.random.key(0), x)
    cost = jax.jit(layer.apply).lower(params, x).compile().cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    assert dense_flops(batch, fan_in, fan_out) == 2 * 5 * 3 * 7 + 5 * 7 == cost["flops"]


def test_hand_counts():
    # one bottom 4 -> 3 -> 2 per party, top 4 -> 2: bottom products 2·B·(4·3·2 + 3·2·3)
    assert vfl_mlp_step_matmul_flops(1, [4, 4], [3], 2, (), 2) == 2 * (48 + 36) + 2 * 4 * 2 * 3
    assert conv2d_flops(2, (4, 4), (3, 3), 1, 1) == 2 * 2 * 16 * 9
    # ResNet-20 on a 32×32×3 image: He et al.'s ~41M multiply-adds
    assert round(cifar_resnet_conv_flops(1, (32, 32)) / 2 / 1e6) == 41


@pytest.mark.parametrize("stride, padding", [(2, ((1, 1), (1, 1))), (3, ((2, 1), (0, 2))),
                                             (1, "SAME")])
def test_fast_conv_matches_lax_forward_and_gradients(stride, padding):
    keys = jax.random.split(jax.random.key(0), 3)
    x = jax.random.normal(keys[0], (3, 9, 7, 4))
    w = jax.random.normal(keys[1], (3, 3, 4, 5))
    dims = lax.conv_dimension_numbers(x.shape, w.shape, NHWC)
    ref = lambda x, w: lax.conv_general_dilated(x, w, (stride,) * 2, padding,
                                                dimension_numbers=dims)
    fast = lambda x, w: fast_conv_general_dilated(x, w, (stride,) * 2, padding,
                                                  dimension_numbers=dims)
    y_ref, vjp_ref = jax.vjp(ref, x, w)
    y_fast, vjp_fast = jax.vjp(fast, x, w)
    g = jax.random.normal(keys[2], y_ref.shape)
    for a, b in zip((y_ref, *vjp_ref(g)), (y_fast, *vjp_fast(g))):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def resnet8(conv_gradients: str):
    """ResNet-8 (one block a stage): the ResNet-20 bottom's modules at a third of the depth."""
    module = make_bottom("resnet20", (), 5, conv_gradients=conv_gradients)
    return module.clone(depth=8)


@pytest.mark.parametrize("make", [resnet8, lambda c: make_bottom("cnn", (4, 3), 5,
                                                                  conv_gradients=c)])
def test_conv_gradients_fast_keeps_the_bottoms_parameters_and_numbers(make):
    x = jax.random.normal(jax.random.key(1), (4, 8, 6, 3))
    xla, fast = make("xla"), make("fast")
    variables = xla.init(jax.random.key(2), x)
    assert jax.tree.structure(fast.init(jax.random.key(2), x)) == jax.tree.structure(variables)

    def loss_of(module):
        def loss(params):
            out, _ = module.apply({**variables, "params": params}, x, train=True,
                                  mutable=["batch_stats"])
            return jnp.sum(out ** 2)
        return loss

    ref = jax.jit(jax.value_and_grad(loss_of(xla)))(variables["params"])
    got = jax.jit(jax.value_and_grad(loss_of(fast)))(variables["params"])
    for a, b in zip(jax.tree.leaves(ref), jax.tree.leaves(got)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    assert "cond[" in str(jax.make_jaxpr(jax.grad(loss_of(fast)))(variables["params"]))
    assert "cond[" not in str(jax.make_jaxpr(jax.grad(loss_of(xla)))(variables["params"]))


def test_conv_gradients_auto_is_fast_on_the_cpu_only():
    assert resolve_conv_gradients("auto", "cpu") == "fast"
    assert resolve_conv_gradients("auto", "gpu") == resolve_conv_gradients("auto", "tpu") == "xla"
    assert resolve_conv_gradients("xla", "cpu") == "xla"
    assert make_bottom("resnet20", (), 2).conv_general_dilated is fast_conv_general_dilated
    assert make_bottom("resnet20", (), 2, conv_gradients="xla").conv_general_dilated is None
    with pytest.raises(ConfigError, match="conv_gradients.*cudnn.*auto, fast, xla"):
        TrainConfig(conv_gradients="cudnn")
