"""Bottom models: what each party runs on its own feature slice (DESIGN §1)."""
from __future__ import annotations

from typing import Callable, Optional, Sequence

import flax.linen as nn


class MLPBottom(nn.Module):
    """Flatten → (Dense → ReLU) per hidden width → Dense(out_dim): Fu et al.'s tabular bottom."""

    hidden: Sequence[int]
    out_dim: int

    @nn.compact
    def __call__(self, x, train: bool = False):
        x = x.reshape((x.shape[0], -1))
        for width in self.hidden:
            x = nn.relu(nn.Dense(width)(x))
        return nn.Dense(self.out_dim)(x)


class SmallCNNBottom(nn.Module):
    """A small CNN for image slices: (Conv 3×3 → ReLU) per channel width → flatten → Dense.

    Flattening rather than pooling keeps where in the slice a stroke is, which small inputs
    such as digits' 8×4 halves need. `conv_general_dilated` as in `CifarResNet`.
    """

    channels: Sequence[int]
    out_dim: int
    conv_general_dilated: Optional[Callable] = None

    @nn.compact
    def __call__(self, x, train: bool = False):
        for width in self.channels:
            x = nn.relu(nn.Conv(width, (3, 3), padding="SAME",
                                conv_general_dilated=self.conv_general_dilated)(x))
        return nn.Dense(self.out_dim)(x.reshape((x.shape[0], -1)))
