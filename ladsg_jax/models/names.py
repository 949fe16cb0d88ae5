"""The names of the models, for configs and the command line (imported without JAX)."""
from __future__ import annotations

# name -> what `bottom_hidden` means for it
BOTTOMS = {
    "mlp": "hidden layer widths",
    "cnn": "3x3 conv channel widths",
    "resnet20": "ignored (He et al.'s CIFAR ResNet-20, 0.27M parameters)",
    "resnet56": "ignored (He et al.'s CIFAR ResNet-56, 0.85M parameters)",
    "hashed_mlp": "widths after the summed embedding of hashed feature ids (Criteo: 64, 16)",
    "text": "widths after the mean word embedding (fastText-style encoder)",
}
TOKEN_BOTTOMS = ("hashed_mlp", "text")
CONV_BOTTOMS = ("cnn", "resnet20", "resnet56")
TOPS = ("mlp", "none")
# how the convolutional bottoms differentiate their convolutions (`resolve_conv_gradients`)
CONV_GRADIENTS = ("auto", "xla", "fast")
