"""Faster convolution gradients on XLA:CPU, with the same numbers as `lax.conv_general_dilated`.

What XLA:CPU (jax 0.10.2) does with ResNet-20's training step, as profiled by
`experiments/bench.py --groups profile` (per-op times from `jax.profiler` with `XLA_FLAGS=
--xla_cpu_enable_xprof_traceme=true`) and read in the optimized HLO (`--xla_dump_to`):

1. The forward and input-gradient convolutions run as library calls (YNNPACK fusions, Eigen for
   some); so does the weight gradient, which contracts over the batch: XLA rewrites it to its
   canonical layout by transposing the layer's input from NHWC to CHWN and the output gradient
   to HWNC. XLA fuses elementwise producers into those transposes, and the producer of a
   ResNet layer's input is the whole elementwise chain of the residual stream (BatchNorm, ReLU,
   shortcut adds) back to the last materialized value: the transposing loop recomputes the
   chain with strided reads. These transposes took about half of the jitted step (one took
   100 ms for a [128, 32, 16, 16] input that a plain transpose copies in 0.4 ms).
2. Inside a loop (`lax.scan` over batches, `loop="scan"`), the weight-gradient convolutions are
   not rewritten to the canonical layout at all (dim_labels f01b_i01o->01bf) and fall to XLA's
   naive convolution loop: 2-3 s each, the epoch as a scan ~20× slower than jitted steps.

`fast_conv_general_dilated` is a drop-in for `lax.conv_general_dilated` (`nn.Conv`'s
`conv_general_dilated` field) with a custom VJP that writes both gradients as convolutions
already in the canonical NHWC/HWIO form XLA:CPU hands to its libraries: the input gradient as
a convolution of the (dilated) output gradient with the flipped kernel, the weight gradient as
a convolution of the input, explicitly transposed to CHWN, with the output gradient, explicitly
transposed to HWNC, as kernel. The transposed operands first pass `fusion_barrier`, a `lax.cond`
whose two branches return the value exactly, so XLA transposes a materialized array instead of
recomputing the chain; `lax.optimization_barrier` does not do this on XLA:CPU (it is removed
before fusion). The sums are the same as XLA's own gradient convolutions; results agree to float
rounding (`tests/test_bench.py`; the ResNet-20 VFL step's parameters, BatchNorm statistics and
messages came out bit for bit equal: `bench.py`'s `max_abs_diff_vs_plain`). Cases it does not
cover (dilations, groups, other layouts) go to `lax` unchanged.

Measured on the 2-core CPU (experiments/results/bench_cpu_2026-11-24_run2.jsonl): the ResNet-20
VFL step 482 → 381 ms, an epoch as a `lax.scan` 27.6 s → 0.75 s for 2 steps (faster than jitted
steps, 0.92 s). Not helped: vmapped seeds (the batching rule makes grouped convolutions either
way). Meant for the CPU: under `vmap` the cond becomes a select (no barrier, same numbers), and
on a GPU a conditional's predicate goes to the host each time.

The convolutional bottoms (`CifarResNet`, `SmallCNNBottom`) take it as their
`conv_general_dilated` field; `TrainConfig.conv_gradients` ("auto": on the CPU only) sets it.
"""
from __future__ import annotations

import functools
from typing import Sequence

import jax
from jax import lax

NHWC = ("NHWC", "HWIO", "NHWC")


def fusion_barrier(x: jax.Array) -> jax.Array:
    """`x`, materialized: XLA may not fuse its producers into its consumers (see the module).

    The predicate (`x`'s first element equals itself) is false only for NaN; both branches
    return `x` exactly, so the result is `x` bit for bit either way.
    """
    flat = x.reshape(-1)
    return lax.cond(flat[0] == flat[0], lambda v: v, lambda v: v * 1.0, x)


def input_grad_padding(size: int, out_size: int, k: int, stride: int, pad: tuple) -> tuple:
    """Padding of the input-gradient convolution along one spatial axis."""
    low, _ = pad
    return k - 1 - low, size - (out_size - 1) * stride - 1 + low


def weight_grad_padding(size: int, out_size: int, k: int, stride: int, pad: tuple) -> tuple:
    """Padding of the weight-gradient convolution along one spatial axis."""
    low, _ = pad
    return low, k + (out_size - 1) * stride - size - low


def conv_nhwc(x, w, strides: Sequence[int], padding: Sequence[tuple]) -> jax.Array:
    """The forward convolution: NHWC input, HWIO kernel."""
    return lax.conv_general_dilated(x, w, tuple(strides), tuple(padding), dimension_numbers=NHWC)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def canonical_conv(x, w, strides: tuple, padding: tuple) -> jax.Array:
    """`conv_nhwc` whose gradients are convolutions in XLA:CPU's canonical form."""
    return conv_nhwc(x, w, strides, padding)


def flipped_kernel(w: jax.Array) -> jax.Array:
    """The kernel of the input-gradient convolution: spatially flipped, in and out swapped."""
    return w[::-1, ::-1].swapaxes(2, 3)


def _canonical_fwd(x, w, strides, padding):
    return conv_nhwc(x, w, strides, padding), (x, w)


def _canonical_bwd(strides, padding, residuals, g):
    x, w = residuals

    def pads(rule):
        return [rule(x.shape[1 + a], g.shape[1 + a], w.shape[a], strides[a], padding[a])
                for a in range(2)]

    dx = lax.conv_general_dilated(g, flipped_kernel(w), (1, 1), pads(input_grad_padding),
                                  lhs_dilation=tuple(strides), dimension_numbers=NHWC)
    x_t = fusion_barrier(x).transpose(3, 1, 2, 0)          # CHWN: the batch is contracted
    g_t = fusion_barrier(g).transpose(1, 2, 0, 3)          # HWNC
    dw = lax.conv_general_dilated(x_t, g_t, (1, 1), pads(weight_grad_padding),
                                  rhs_dilation=tuple(strides), dimension_numbers=NHWC)
    return dx, dw.transpose(1, 2, 0, 3)                     # (Ci, kh, kw, Co) -> HWIO


canonical_conv.defvjp(_canonical_fwd, _canonical_bwd)


def unit_dilation(dilation) -> bool:
    """Whether a dilation argument (None, an int or a tuple) means no dilation."""
    return dilation is None or all(d == 1 for d in (
        (dilation,) if isinstance(dilation, int) else dilation))


def covered(lhs, rhs, padding, lhs_dilation, rhs_dilation, dimension_numbers,
            feature_group_count, batch_group_count) -> bool:
    """Whether `canonical_conv` computes this call: 2-d NHWC/HWIO, no dilation, no groups,
    explicit padding pairs."""
    if lhs.ndim != 4 or feature_group_count != 1 or batch_group_count != 1 \
            or isinstance(padding, str):
        return False
    if not (unit_dilation(lhs_dilation) and unit_dilation(rhs_dilation)):
        return False
    wanted = lax.conv_dimension_numbers(lhs.shape, rhs.shape, NHWC)
    return lax.conv_dimension_numbers(lhs.shape, rhs.shape, dimension_numbers or NHWC) == wanted


def gradient_paddings_ok(lhs_shape, rhs_shape, strides, pads) -> bool:
    """Whether both gradient convolutions have non-negative padding (else `lax` is used)."""
    for a in range(2):
        size, k = lhs_shape[1 + a], rhs_shape[a]
        out = (size + sum(pads[a]) - k) // strides[a] + 1
        for rule in (input_grad_padding, weight_grad_padding):
            if min(rule(size, out, k, strides[a], pads[a])) < 0:
                return False
    return True


def fast_conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation=None,
                              rhs_dilation=None, dimension_numbers=None, feature_group_count=1,
                              batch_group_count=1, precision=None, preferred_element_type=None):
    """`lax.conv_general_dilated`, its gradients written for XLA:CPU (see the module)."""
    if isinstance(padding, str) and lhs.ndim == 4:     # "SAME" / "VALID" as explicit pairs
        padding = lax.padtype_to_pads(lhs.shape[1:3], rhs.shape[:2], window_strides, padding)
    args = (lhs, rhs, padding, lhs_dilation, rhs_dilation, dimension_numbers,
            feature_group_count, batch_group_count)
    strides = tuple(window_strides)
    if not covered(*args) or precision is not None or preferred_element_type is not None:
        return lax.conv_general_dilated(
            lhs, rhs, window_strides, padding, lhs_dilation, rhs_dilation, dimension_numbers,
            feature_group_count, batch_group_count, precision, preferred_element_type)
    pads = tuple(tuple(p) for p in padding)
    if not gradient_paddings_ok(lhs.shape, rhs.shape, strides, pads):
        return lax.conv_general_dilated(lhs, rhs, window_strides, padding,
                                        dimension_numbers=dimension_numbers)
    return canonical_conv(lhs, rhs, strides, pads)
