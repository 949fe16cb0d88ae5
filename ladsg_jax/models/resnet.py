"""CIFAR ResNets for the image parties' bottoms (He et al., "Deep Residual Learning for Image
Recognition", CVPR 2016, §4.2): ResNet-20 (0.27M parameters) and ResNet-56 (0.85M).

The CIFAR variant of the paper: a 3×3 convolution to 16 channels, then three stages of n basic
blocks (two 3×3 convolutions with BatchNorm) at 16, 32 and 64 channels, the 2nd and 3rd stage
starting with stride 2, global average pooling and a linear layer; depth = 6n + 2. Shortcuts are
option A of the paper: identity, and where the shape changes a stride-2 subsample padded with
zero channels (no parameters). Convolutions and the linear layer start from Kaiming-normal
weights (He et al., ICCV 2015; std √(2 / fan_in)), as in the PyTorch CIFAR ResNet that Fu et
al.'s label inference code uses. Global pooling makes any input size work, e.g. a party's
32×16 half of a CIFAR image. `conv_general_dilated` (None: `lax`'s) is what every convolution
computes with, e.g. `fast_conv.fast_conv_general_dilated` on the CPU (same numbers).
"""
from __future__ import annotations

import functools
from typing import Callable, Optional

import flax.linen as nn
import jax.numpy as jnp

from ladsg_jax.errors import require

kaiming_normal = nn.initializers.variance_scaling(2.0, "fan_in", "normal")
STAGE_WIDTHS = (16, 32, 64)


def batch_norm(train: bool):
    """BatchNorm with PyTorch's defaults (momentum 0.1 there is 0.9 here, ε 1e-5)."""
    return nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5)


def option_a_shortcut(x: jnp.ndarray, width: int, stride: int) -> jnp.ndarray:
    """Identity, or a stride-`stride` subsample zero-padded to `width` channels (option A)."""
    if stride == 1 and x.shape[-1] == width:
        return x
    x = x[:, ::stride, ::stride, :]
    extra = width - x.shape[-1]
    return jnp.pad(x, ((0, 0), (0, 0), (0, 0), (extra // 2, extra - extra // 2)))


class BasicBlock(nn.Module):
    """conv3×3 → BN → ReLU → conv3×3 → BN, plus the option-A shortcut, then ReLU."""

    width: int
    stride: int = 1
    conv_general_dilated: Optional[Callable] = None

    @nn.compact
    def __call__(self, x, train: bool = False):
        conv = functools.partial(nn.Conv, kernel_size=(3, 3), padding=1, use_bias=False,
                                 kernel_init=kaiming_normal,
                                 conv_general_dilated=self.conv_general_dilated)
        y = conv(self.width, strides=self.stride)(x)
        y = nn.relu(batch_norm(train)(y))
        y = batch_norm(train)(conv(self.width)(y))
        return nn.relu(y + option_a_shortcut(x, self.width, self.stride))


class CifarResNet(nn.Module):
    """ResNet-`depth` for CIFAR-sized images (depth = 6n + 2: 20, 32, 44, 56, 110)."""

    depth: int
    out_dim: int
    conv_general_dilated: Optional[Callable] = None

    @nn.compact
    def __call__(self, x, train: bool = False):
        require((self.depth - 2) % 6 == 0 and self.depth >= 8, "depth",
                f"a CIFAR ResNet has depth 6n + 2 (20, 32, 44, 56, 110), got {self.depth}")
        blocks = (self.depth - 2) // 6
        x = nn.Conv(STAGE_WIDTHS[0], (3, 3), padding=1, use_bias=False,
                    kernel_init=kaiming_normal, conv_general_dilated=self.conv_general_dilated)(x)
        x = nn.relu(batch_norm(train)(x))
        for stage, width in enumerate(STAGE_WIDTHS):
            for block in range(blocks):
                stride = 2 if stage > 0 and block == 0 else 1
                x = BasicBlock(width, stride, self.conv_general_dilated)(x, train)
        x = jnp.mean(x, axis=(1, 2))
        return nn.Dense(self.out_dim, kernel_init=kaiming_normal)(x)
