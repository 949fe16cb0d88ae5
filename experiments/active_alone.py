"""The active party alone: the main-task accuracy it reaches on its own feature slice and labels,
without VFL: the utility any defense can fall back to (a defense that ignores the passive party
loses nothing beyond it).

The model is the active party's bottom architecture of the preset plus a linear head, trained
with the preset's SGD settings for its epochs (`ladsg_jax.defenses.teacher.train_teacher`, the
model LADSG's teacher is), seeds vmapped; scored on the test split.

    python experiments/active_alone.py --dataset mnist5k --seeds 3
"""
from __future__ import annotations

import argparse
import json
import sys

from ladsg_jax import compile_cache
from ladsg_jax.errors import ConfigError


def active_alone(dataset: str, seeds: int, seed: int = 0) -> dict:
    """{"per_seed", "mean", "std", "epochs"} of the active party's own test accuracy."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    from ladsg_jax.data import load
    from ladsg_jax.defenses.teacher import train_teacher
    from ladsg_jax.presets import preset_config
    from ladsg_jax.vfl.runner import seed_keys

    data, config = load(dataset), preset_config(dataset)
    x, y = jnp.asarray(data.train_x[-1]), jnp.asarray(data.train_y)
    test_x = jnp.asarray(data.test_x[-1])

    def accuracy(key):
        logits = train_teacher(key, x, y, data.num_classes, config, config.epochs,
                               predict_x=test_x)
        return jnp.mean(jnp.argmax(logits, -1) == jnp.asarray(data.test_y))

    per_seed = np.asarray(jax.jit(jax.vmap(accuracy))(seed_keys(seed, seeds))).tolist()
    return {"dataset": dataset, "per_seed": per_seed, "mean": float(np.mean(per_seed)),
            "std": float(np.std(per_seed)), "epochs": config.epochs}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    compile_cache.add_argument(parser)
    args = parser.parse_args(argv)
    compile_cache.from_args(args)
    try:
        print(json.dumps(active_alone(args.dataset, args.seeds, args.seed)))
    except ConfigError as err:
        print(f"active_alone: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
