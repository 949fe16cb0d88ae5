"""Bottoms for token inputs: a bag of learned embeddings, then an MLP.

Two uses, one module:
- `reduce="sum"` over hashed feature ids is exactly an MLP on the multi-hot vector of hashed
  features (the first layer's weight rows summed, without its bias): Fu et al.'s Criteo bottom
  (USENIX Security 2022, hashed features → 64 → 16 → 4) without materializing 2^13-wide rows.
- `reduce="mean"` over word ids (padding id 0 left out) is the fastText text classifier's
  encoder (Joulin et al., "Bag of Tricks for Efficient Text Classification", EACL 2017), our
  Yahoo Answers encoder, trained from scratch.
"""
from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp

PAD_ID = 0


class EmbeddingBagBottom(nn.Module):
    """Embed each token id (width `hidden[0]`), sum or average the non-padding ones, add a
    bias, then (ReLU → Dense) per further width and a last ReLU → Dense(out_dim)."""

    vocab_size: int
    hidden: Sequence[int]
    out_dim: int
    reduce: str = "mean"

    @nn.compact
    def __call__(self, tokens, train: bool = False):
        width, *rest = self.hidden
        mask = (tokens != PAD_ID)[..., None].astype(jnp.float32)
        vectors = nn.Embed(self.vocab_size, width,
                           embedding_init=nn.initializers.normal(0.1))(tokens) * mask
        x = vectors.sum(axis=1)
        if self.reduce == "mean":
            x = x / jnp.maximum(mask.sum(axis=1), 1.0)
        x = x + self.param("bias", nn.initializers.zeros, (width,))
        for w in rest:
            x = nn.Dense(w)(nn.relu(x))
        return nn.Dense(self.out_dim)(nn.relu(x))
