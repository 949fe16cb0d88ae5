"""Bottom and top models by name (`names.py` lists them)."""
from __future__ import annotations

import jax

from ladsg_jax.errors import ConfigError, one_of, unknown
from ladsg_jax.models.bag import EmbeddingBagBottom
from ladsg_jax.models.bottom import MLPBottom, SmallCNNBottom
from ladsg_jax.models.fast_conv import fast_conv_general_dilated
from ladsg_jax.models.names import BOTTOMS, CONV_BOTTOMS, CONV_GRADIENTS, TOKEN_BOTTOMS, TOPS
from ladsg_jax.models.resnet import CifarResNet
from ladsg_jax.models.top import SumTop, TopModel


def resolve_conv_gradients(setting: str, backend: str | None = None) -> str:
    """"xla" (`lax`'s own convolution gradients) or "fast" (`models.fast_conv`: the same
    numbers, faster on XLA:CPU); "auto" is "fast" on the CPU and "xla" on accelerators, where a
    conditional's predicate would go to the host every step."""
    one_of("conv_gradients", setting, CONV_GRADIENTS)
    if setting != "auto":
        return setting
    return "fast" if (backend or jax.default_backend()) == "cpu" else "xla"


def make_bottom(name: str, hidden, out_dim: int, vocab_size: int | None = None,
                conv_gradients: str = "auto"):
    """A bottom module by name (see `BOTTOMS` for what `hidden` means to each);
    `conv_gradients` (see `resolve_conv_gradients`) matters to the `CONV_BOTTOMS` only."""
    if name in CONV_BOTTOMS:
        fast = resolve_conv_gradients(conv_gradients) == "fast"
        conv = fast_conv_general_dilated if fast else None
        if name == "cnn":
            return SmallCNNBottom(channels=tuple(hidden), out_dim=out_dim,
                                  conv_general_dilated=conv)
        return CifarResNet(depth=int(name[len("resnet"):]), out_dim=out_dim,
                           conv_general_dilated=conv)
    if name == "mlp":
        return MLPBottom(hidden=tuple(hidden), out_dim=out_dim)
    if name in TOKEN_BOTTOMS:
        if not vocab_size:
            raise ConfigError("vocab_size", f"bottom {name!r} embeds token ids and needs the "
                                            "vocabulary size (the data set's vocab_size)")
        return EmbeddingBagBottom(vocab_size=vocab_size, hidden=tuple(hidden), out_dim=out_dim,
                                  reduce="sum" if name == "hashed_mlp" else "mean")
    raise unknown("bottom", name, BOTTOMS)


def make_top(name: str, hidden, num_classes: int):
    """The top module by name: 'mlp' (BN-ReLU-Dense blocks) or 'none' (sum of embeddings)."""
    if name == "mlp":
        return TopModel(hidden=tuple(hidden), num_classes=num_classes)
    if name == "none":
        return SumTop()
    raise unknown("top_model", name, TOPS)
