"""The benchmark's PyTorch reference (`bench.py --reference torch`).

Times the same VFL step written the way the PyTorch reference code bases write it
(`experiments/torch_reference.py`, kept beside this file; PyTorch is optional, not a
dependency) and prints JAX/torch ratios against the JAX steps of the same run (the `step`
group's records).
"""
from __future__ import annotations

import os
import sys
from typing import Iterator

from bench_common import context, summary_ms


# -- torch reference -----------------------------------------------------------------------

def torch_reference():
    """The `torch_reference` module beside this script (importable however bench.py was run)."""
    here = os.path.dirname(os.path.abspath(__file__))
    if here not in sys.path:
        sys.path.insert(0, here)
    import torch_reference as module
    return module


def bench_torch(args, jax_steps: list[dict]) -> Iterator[dict]:
    """The reference PyTorch step per bottom, and JAX/torch ratios from this run's JAX steps."""
    time_torch_step = torch_reference().time_torch_step
    h, w, c = args.image
    for bottom in args.bottoms:
        result = time_torch_step(bottom, args.batch_size, args.repeats,
                                 image_shape=(h, w // 2, c), budget_s=args.budget,
                                 mlp_hidden=tuple(args.mlp_hidden))
        torch_ms = 1000 * result["median_s"]
        yield {"what": "torch_step", "bottom": bottom, "batch_size": args.batch_size,
               **summary_ms(result["times_s"]), "threads": result["threads"],
               "torch": result["torch"], "params": result["params"], **context()}
        for record in jax_steps:
            if record["bottom"] == bottom:
                yield {"what": "jax_vs_torch", "bottom": bottom, "conv": record["conv"],
                       "jax_ms": record["median_ms"], "torch_ms": torch_ms,
                       "jax_over_torch": record["median_ms"] / torch_ms, **context()}
