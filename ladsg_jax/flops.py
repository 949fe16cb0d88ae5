"""Hand counts of floating-point operations, to cross-check XLA's `cost_analysis()["flops"]`.

A multiply-add counts as 2 FLOPs, as XLA counts it. A Dense layer y = xW + b on a batch of B
rows costs 2·B·I·O for the product and B·O for the bias. In a training step its backward adds
2·B·I·O for the weight gradient and 2·B·I·O for the input gradient, except where nothing upstream
needs the input gradient (a bottom model's first layer: the features are not trained). These
counts cover the matrix products only; XLA's figure adds the elementwise work (activations,
BatchNorm, the loss, the optimizer), which is small next to the products of an MLP.
"""
from __future__ import annotations

from typing import Sequence


def dense_flops(batch: int, fan_in: int, fan_out: int, bias: bool = True) -> int:
    """FLOPs of one Dense layer's forward pass: 2·B·I·O, plus B·O for the bias."""
    return 2 * batch * fan_in * fan_out + (batch * fan_out if bias else 0)


def dense_train_matmul_flops(batch: int, fan_in: int, fan_out: int, input_grad: bool) -> int:
    """Matrix-product FLOPs of one Dense layer in a training step: forward, weight gradient, and
    the input gradient when `input_grad`."""
    return 2 * batch * fan_in * fan_out * (3 if input_grad else 2)


def mlp_train_matmul_flops(batch: int, widths: Sequence[int], input_grad: bool = False) -> int:
    """Matrix-product FLOPs of a training step through Dense layers `widths[0] → ... → widths[-1]`;
    the first layer's input gradient only with `input_grad` (not when its input is data)."""
    return sum(dense_train_matmul_flops(batch, i, o, input_grad=input_grad or k > 0)
               for k, (i, o) in enumerate(zip(widths[:-1], widths[1:])))


def vfl_mlp_step_matmul_flops(batch: int, party_features: Sequence[int], hidden: Sequence[int],
                              embed_dim: int, top_hidden: Sequence[int], num_classes: int) -> int:
    """Matrix-product FLOPs of one VFL training step with MLP bottoms and an MLP top model.

    Each party's bottom is `features → hidden → embed_dim`; the top model maps the concatenated
    embeddings through `top_hidden` to `num_classes`, and its input gradient is needed (it is
    the message to the bottoms).
    """
    bottoms = sum(mlp_train_matmul_flops(batch, (f, *hidden, embed_dim)) for f in party_features)
    top_widths = (embed_dim * len(party_features), *top_hidden, num_classes)
    return bottoms + mlp_train_matmul_flops(batch, top_widths, input_grad=True)


def conv2d_flops(batch: int, out_hw: tuple, kernel: tuple, cin: int, cout: int) -> int:
    """FLOPs of one convolution's forward pass (no bias): 2·B·H_out·W_out·k_h·k_w·C_in·C_out."""
    return 2 * batch * out_hw[0] * out_hw[1] * kernel[0] * kernel[1] * cin * cout


def cifar_resnet_conv_flops(batch: int, in_hw: tuple, depth: int = 20,
                            widths: Sequence[int] = (16, 32, 64), in_channels: int = 3) -> int:
    """Forward convolution FLOPs of He et al.'s CIFAR ResNet (3×3 convolutions, padding 1,
    stride 2 at the start of stages 2 and 3). A training step does about 3× this (the first
    convolution has no input gradient)."""
    h, w = in_hw
    total = conv2d_flops(batch, (h, w), (3, 3), in_channels, widths[0])
    cin = widths[0]
    for stage, width in enumerate(widths):
        for block in range((depth - 2) // 6):
            if stage > 0 and block == 0:
                h, w = (h + 1) // 2, (w + 1) // 2
            total += conv2d_flops(batch, (h, w), (3, 3), cin, width)
            total += conv2d_flops(batch, (h, w), (3, 3), width, width)
            cin = width
    return total
