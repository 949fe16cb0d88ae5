"""Similar-sample substitution (issue 35, item 4): the paper's "semantically aligned" substitute
gradient (LADSG, arXiv 2506.06742; DESIGN §3) read as the messages of the samples most like this
one in the batch.

A passive party's message for sample i is replaced by the mean of the true messages of the
`count` other samples of the batch whose embeddings (what the party sent: its semantics, as the
active party sees them) are closest in cosine. The substitute is a convex combination of other
samples' true messages and holds no part of g_i; when the neighbours share the sample's label it
still points at it, which is what the measurements test.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from ladsg_jax.errors import require


def neighbour_weights(embeddings, count: int):
    """(B, B) row-stochastic weights: 1/count on each of the `count` samples whose embeddings
    are closest in cosine to the row's, never the row's own sample."""
    flat = embeddings.reshape(embeddings.shape[0], -1)
    unit = flat / (jnp.linalg.norm(flat, axis=-1, keepdims=True) + 1e-12)
    similarity = unit @ unit.T
    similarity = jnp.where(jnp.eye(flat.shape[0], dtype=bool), -jnp.inf, similarity)
    _, nearest = jax.lax.top_k(similarity, count)
    return jax.nn.one_hot(nearest, flat.shape[0]).sum(axis=1) / count


def neighbour_substitute(g, embeddings, count: int, field: str = "neighbours"):
    """Each row of g replaced by the mean of the rows of its `count` nearest neighbours by
    embedding (`neighbour_weights`); `count` must stay below the batch size (`field` names it
    in the error, raised when the step is traced)."""
    require(count < g.shape[0], field, f"{count} neighbours need a batch of more than {count} "
                                       f"samples; the batch has {g.shape[0]}")
    return neighbour_weights(embeddings, count) @ g
