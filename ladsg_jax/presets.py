"""Per-data-set training settings: the starting point the CLI and the experiments override.

From Fu et al., "Label Inference Attacks Against Vertical Federated Learning" (USENIX Security
2022), as their code trains:
- CIFAR-10, CINIC-10, CIFAR-100: ResNet-20 bottoms, SGD lr 0.1, momentum 0.9, weight decay
  5e-4, batch 32, the rate × 0.1 at epochs 50 and 85; 100 epochs (CIFAR-100: 150).
- Criteo: MLP bottoms on the hashed features (→ 64 → 16 → 4), SGD lr 0.05, momentum 0.5,
  7 epochs.
- breast_cancer (BCW): MLP 20-20, SGD lr 1e-2, batch 16, 30 epochs.

Our choices where the paper gives none (say so when you report them): digits (DESIGN §3's
measured setting); mnist5k (digits' settings with a small CNN bottom: 3×3 convolutions of 8
and 16 channels over each party's 28×14 half, flattened); Tiny ImageNet (ResNet-56 with the
CIFAR schedule); the IDC patches (ResNet-20, 30 epochs, decay at 15 and 25); Give Me Some
Credit (BCW's MLP, batch 64, 10 epochs); Yahoo Answers (the fastText-style text encoder,
64-wide word vectors, batch 64, 10 epochs). The top model is BN → ReLU → Dense over the concatenated embeddings with one hidden
layer as wide as the concatenation.
"""
from __future__ import annotations

from ladsg_jax.config import TrainConfig

CIFAR_SCHEDULE = dict(optimizer="sgd", learning_rate=0.1, momentum=0.9, weight_decay=5e-4,
                      batch_size=32, lr_decay_epochs=(50, 85), lr_decay=0.1)

PRESETS = {
    "breast_cancer": dict(bottom="mlp", bottom_hidden=(20, 20), learning_rate=0.01,
                          momentum=0.9, batch_size=16, epochs=30),
    "digits": dict(bottom="mlp", bottom_hidden=(64,), learning_rate=0.05, momentum=0.9,
                   batch_size=32, epochs=30),
    "mnist5k": dict(bottom="cnn", bottom_hidden=(8, 16), learning_rate=0.05, momentum=0.9,
                    batch_size=32, epochs=30),
    "synthetic": dict(bottom="mlp", bottom_hidden=(32,), learning_rate=0.05, momentum=0.9,
                      batch_size=32, epochs=10),
    "cifar10": dict(bottom="resnet20", top_hidden=(20,), epochs=100, **CIFAR_SCHEDULE),
    "cinic10": dict(bottom="resnet20", top_hidden=(20,), epochs=100, **CIFAR_SCHEDULE),
    "cifar100": dict(bottom="resnet20", top_hidden=(200,), epochs=150, **CIFAR_SCHEDULE),
    "tiny_imagenet": dict(bottom="resnet56", top_hidden=(400,), epochs=100, **CIFAR_SCHEDULE),
    "bhi": dict(bottom="resnet20", top_hidden=(4,), epochs=30,
                **{**CIFAR_SCHEDULE, "lr_decay_epochs": (15, 25)}),
    "criteo": dict(bottom="hashed_mlp", bottom_hidden=(64, 16), embed_dim=4, top_hidden=(8,),
                   vocab_size=2 ** 13, learning_rate=0.05, momentum=0.5, batch_size=32,
                   epochs=7),
    "give_me_some_credit": dict(bottom="mlp", bottom_hidden=(20, 20), top_hidden=(4,),
                                learning_rate=0.01, momentum=0.9, batch_size=64, epochs=10),
    "yahoo_answers": dict(bottom="text", bottom_hidden=(64,), top_hidden=(20,),
                          vocab_size=20_002, learning_rate=0.1, momentum=0.9, batch_size=64,
                          epochs=10),
}


# The attacker's known labels (DESIGN §7).
KNOWN_LABELS = {"breast_cancer": 20, "digits": 40, "mnist5k": 40, "cifar10": 40, "cinic10": 40,
                "cifar100": 400,
                "bhi": 70, "yahoo_answers": 100, "give_me_some_credit": 20, "criteo": 100,
                "tiny_imagenet": 800}


def known_labels_for(dataset: str, num_classes: int) -> int:
    """DESIGN §7's known labels for `dataset`; 4 per class for data sets it does not list."""
    return KNOWN_LABELS.get(dataset, 4 * num_classes)


def preset_config(dataset: str, **overrides) -> TrainConfig:
    """The preset of `dataset` (DESIGN defaults where it has none) with `overrides` applied."""
    return TrainConfig(**{**PRESETS.get(dataset, {}), **overrides})
