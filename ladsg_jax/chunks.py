"""Applying a function to a large array in fixed-size chunks, inside jit (bounded memory)."""
from __future__ import annotations

import jax
import jax.numpy as jnp


def map_in_chunks(fn, xs, chunk: int):
    """`fn(xs)` computed `chunk` rows at a time with `lax.map` and concatenated.

    `xs` is a pytree of arrays sharing a leading axis of N rows; the last chunk is zero-padded
    and its padding dropped from the result. Peak memory is that of one chunk, which matters
    for a ResNet over a whole training set (e.g. LADSG's teacher logits for CIFAR's 50,000).
    """
    n = jax.tree.leaves(xs)[0].shape[0]
    chunk = min(chunk, n)
    num_chunks = -(-n // chunk)
    pad = num_chunks * chunk - n

    def split(x):
        x = jnp.pad(x, [(0, pad)] + [(0, 0)] * (x.ndim - 1))
        return x.reshape((num_chunks, chunk) + x.shape[1:])

    out = jax.lax.map(fn, jax.tree.map(split, xs))
    return jax.tree.map(lambda y: y.reshape((num_chunks * chunk,) + y.shape[2:])[:n], out)
