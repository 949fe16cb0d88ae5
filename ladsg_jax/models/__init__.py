"""Flax models, used only through `module.apply(variables, x, train=...)`: pure functions."""
from __future__ import annotations

from ladsg_jax.errors import unknown
from ladsg_jax.models.bottom import MLPBottom, SmallCNNBottom
from ladsg_jax.models.top import SumTop, TopModel

BOTTOMS = ("mlp", "cnn")
TOPS = ("mlp", "none")


def make_bottom(name: str, hidden, out_dim: int):
    """A bottom module by name: 'mlp' (widths = hidden layers) or 'cnn' (widths = conv channels)."""
    if name == "mlp":
        return MLPBottom(hidden=tuple(hidden), out_dim=out_dim)
    if name == "cnn":
        return SmallCNNBottom(channels=tuple(hidden), out_dim=out_dim)
    raise unknown("bottom", name, BOTTOMS)


def make_top(name: str, hidden, num_classes: int):
    """The top module by name: 'mlp' (BN-ReLU-Dense blocks) or 'none' (sum of embeddings)."""
    if name == "mlp":
        return TopModel(hidden=tuple(hidden), num_classes=num_classes)
    if name == "none":
        return SumTop()
    raise unknown("top_model", name, TOPS)


__all__ = ["MLPBottom", "SmallCNNBottom", "TopModel", "SumTop", "make_bottom", "make_top",
           "BOTTOMS", "TOPS"]
