"""The VFL step as the PyTorch reference code bases write it, for `bench.py --reference torch`.

Fu et al.'s label inference attack code (USENIX Security 2022) and VFLAIR train a split model
party by party: the passive party runs its bottom and sends the embedding; the active party
receives it as a fresh leaf (`h.detach().requires_grad_()`), runs its own bottom and the top,
calls `loss.backward()` and steps its optimizer; the embedding's `.grad` goes back, and the
passive party calls `h.backward(grad)` and steps its own optimizer. Same shapes and models as
`bench.py`'s JAX step: two parties, MLP bottoms (1536 → 512 → 256 → 10) or He et al.'s CIFAR
ResNet-20 with option-A shortcuts (Kaiming-normal convolutions, BatchNorm momentum 0.1, ε 1e-5),
the top model BN → ReLU → Linear per width (20 → 20 → 10), SGD with momentum 0.9.

PyTorch is not a dependency of this project: `import torch` happens inside `require_torch`,
which raises `TorchMissing` with an install hint when it is absent.
"""
from __future__ import annotations

import statistics
import time


class TorchMissing(RuntimeError):
    """PyTorch is not installed; `bench.py --reference torch` needs it."""


def require_torch():
    """The `torch` module, or `TorchMissing` saying how to install a CPU build."""
    try:
        import torch
    except ImportError:
        raise TorchMissing("--reference torch needs PyTorch, which is not a dependency of "
                           "ladsg_jax; install a CPU build into the venv (e.g. `pip install "
                           "torch`) or leave --reference out") from None
    return torch


def build_models(torch, bottom: str, in_shape: tuple, embed_dim: int = 10,
                 top_hidden: tuple = (20,), num_classes: int = 10, num_parties: int = 2,
                 mlp_hidden: tuple = (512, 256)):
    """(bottoms, top) as torch modules: one bottom per party, the top over the concatenation."""
    nn = torch.nn

    def kaiming(module):
        if isinstance(module, (nn.Conv2d, nn.Linear)) and bottom == "resnet20":
            nn.init.kaiming_normal_(module.weight)

    class LambdaLayer(nn.Module):
        def __init__(self, fn):
            super().__init__()
            self.fn = fn

        def forward(self, x):
            return self.fn(x)

    class BasicBlock(nn.Module):
        """conv3×3 → BN → ReLU → conv3×3 → BN, plus the option-A shortcut, then ReLU."""

        def __init__(self, in_planes: int, planes: int, stride: int):
            super().__init__()
            self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(planes)
            self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(planes)
            self.shortcut = nn.Identity()
            if stride != 1 or in_planes != planes:
                extra = planes - in_planes
                self.shortcut = LambdaLayer(lambda x: torch.nn.functional.pad(
                    x[:, :, ::stride, ::stride], (0, 0, 0, 0, extra // 2, extra - extra // 2)))

        def forward(self, x):
            out = torch.relu(self.bn1(self.conv1(x)))
            out = self.bn2(self.conv2(out))
            return torch.relu(out + self.shortcut(x))

    class ResNet20(nn.Module):
        """He et al.'s CIFAR ResNet-20 (3 stages of 3 blocks at 16, 32, 64 channels)."""

        def __init__(self, out_dim: int):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(16)
            layers, in_planes = [], 16
            for stage, planes in enumerate((16, 32, 64)):
                for block in range(3):
                    stride = 2 if stage > 0 and block == 0 else 1
                    layers.append(BasicBlock(in_planes, planes, stride))
                    in_planes = planes
            self.layers = nn.Sequential(*layers)
            self.linear = nn.Linear(64, out_dim)
            self.apply(kaiming)

        def forward(self, x):
            x = self.layers(torch.relu(self.bn1(self.conv1(x))))
            return self.linear(x.mean(dim=(2, 3)))

    def mlp(in_dim: int) -> nn.Module:
        layers, width = [nn.Flatten()], in_dim
        for h in mlp_hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        return nn.Sequential(*layers, nn.Linear(width, embed_dim))

    class Top(nn.Module):
        """Concatenate → (BN → ReLU → Linear) per width, the last Linear giving the logits."""

        def __init__(self):
            super().__init__()
            blocks, width = [], embed_dim * num_parties
            for out in (*top_hidden, num_classes):
                blocks += [nn.BatchNorm1d(width), nn.ReLU(), nn.Linear(width, out)]
                width = out
            self.net = nn.Sequential(*blocks)

        def forward(self, hs):
            return self.net(torch.cat(hs, dim=1))

    in_dim = 1
    for d in in_shape:
        in_dim *= d
    bottoms = [ResNet20(embed_dim) if bottom == "resnet20" else mlp(in_dim)
               for _ in range(num_parties)]
    return bottoms, Top()


def make_vfl_step(torch, bottoms, top, lr: float = 0.1, momentum: float = 0.9):
    """`step(xs, y) -> loss`: one VFL step the reference way (party 0 passive, the last
    active); every party has its own SGD-with-momentum optimizer."""
    passive, active = bottoms[:-1], bottoms[-1]
    sgd = lambda params: torch.optim.SGD(params, lr=lr, momentum=momentum)
    passive_opts = [sgd(b.parameters()) for b in passive]
    active_opt = sgd(list(active.parameters()) + list(top.parameters()))
    loss_fn = torch.nn.CrossEntropyLoss()

    def step(xs, y):
        sent, received = [], []
        for bottom, x in zip(passive, xs[:-1]):           # passive parties: forward, send
            h = bottom(x)
            sent.append(h)
            received.append(h.detach().requires_grad_())
        logits = top(received + [active(xs[-1])])          # active party
        loss = loss_fn(logits, y)
        active_opt.zero_grad()
        loss.backward()
        active_opt.step()
        for h, r, opt in zip(sent, received, passive_opts):  # gradients back, passive updates
            opt.zero_grad()
            h.backward(r.grad)
            opt.step()
        return loss.detach()

    return step


def time_torch_step(bottom: str, batch_size: int = 128, repeats: int = 20, warmup: int = 3,
                    image_shape: tuple = (32, 16, 3), seed: int = 0,
                    budget_s: float | None = None, mlp_hidden: tuple = (512, 256)) -> dict:
    """Seconds of the reference VFL step (warm; the models train step to step) on random
    CIFAR-shaped halves, with `torch.get_num_threads()` left at its default: up to `repeats`
    calls, stopping once `budget_s` is spent (at least one)."""
    torch = require_torch()
    torch.manual_seed(seed)
    h, w, c = image_shape
    shape = (c, h, w) if bottom == "resnet20" else (h, w, c)
    bottoms, top = build_models(torch, bottom, shape, mlp_hidden=tuple(mlp_hidden))
    for module in (*bottoms, top):
        module.train()
    step = make_vfl_step(torch, bottoms, top)
    xs = [torch.randn(batch_size, *shape) for _ in bottoms]
    y = torch.randint(0, 10, (batch_size,))
    for _ in range(warmup):
        step(xs, y)
    times = []
    while len(times) < repeats and not (times and budget_s and sum(times) > budget_s):
        start = time.perf_counter()
        step(xs, y)
        times.append(time.perf_counter() - start)
    return {"median_s": statistics.median(times), "times_s": times,
            "threads": torch.get_num_threads(), "torch": torch.__version__,
            "params": sum(p.numel() for m in (*bottoms, top) for p in m.parameters())}
