"""Flax models, used only through `module.apply(variables, x, train=...)`: pure functions.

The model names (`names.py`) load without JAX; the modules and factories on first use.
"""
from __future__ import annotations

from ladsg_jax.lazy import lazy_exports
from ladsg_jax.models.names import BOTTOMS, CONV_BOTTOMS, CONV_GRADIENTS, TOKEN_BOTTOMS, TOPS

__getattr__, __dir__ = lazy_exports(__name__, {
    "factory": ("make_bottom", "make_top", "resolve_conv_gradients"),
    "bag": ("EmbeddingBagBottom",),
    "bottom": ("MLPBottom", "SmallCNNBottom"),
    "resnet": ("CifarResNet",),
    "stateful": ("apply_stateful", "split_variables"),
    "top": ("SumTop", "TopModel"),
})

__all__ = ["MLPBottom", "SmallCNNBottom", "CifarResNet", "EmbeddingBagBottom", "TopModel",
           "SumTop", "make_bottom", "make_top", "apply_stateful", "split_variables", "BOTTOMS",
           "TOKEN_BOTTOMS", "CONV_BOTTOMS", "TOPS", "CONV_GRADIENTS", "resolve_conv_gradients"]
