"""The active party's top model over the parties' embeddings (DESIGN §1)."""
from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp


class TopModel(nn.Module):
    """Concatenate → (BatchNorm → ReLU → Dense) per width, the last Dense giving the logits.

    The shape of the top model in Fu et al.'s label inference experiments (USENIX Security 2022).
    """

    hidden: Sequence[int]
    num_classes: int

    @nn.compact
    def __call__(self, embeddings, train: bool = False):
        x = jnp.concatenate(embeddings, axis=-1)
        for width in (*self.hidden, self.num_classes):
            x = nn.BatchNorm(use_running_average=not train, momentum=0.9)(x)
            x = nn.Dense(width)(nn.relu(x))
        return x


class SumTop(nn.Module):
    """`top_model: none`: the logits are the sum of the embeddings (each num_classes wide).

    The setting of the direct label inference attack (Fu et al. 2022, §4.1).
    """

    @nn.compact
    def __call__(self, embeddings, train: bool = False):
        return sum(embeddings[1:], embeddings[0])
