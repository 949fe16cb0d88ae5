"""A training session as the CLI and the demo run it: data, seeds, timing, a result record."""
from __future__ import annotations

import time

import jax
import numpy as np

from ladsg_jax.compilation import count_compilations
from ladsg_jax.config import TrainConfig
from ladsg_jax.data.arrays import VFLData
from ladsg_jax.divergence import count_diverged, divergence, kept, message_norms
from ladsg_jax.models import resolve_conv_gradients
from ladsg_jax.results import summary
from ladsg_jax.vfl.runner import Runner, seed_keys


def config_record(config: TrainConfig) -> dict:
    """The config as plain JSON values (the defense as its name and fields)."""
    import dataclasses

    record = {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}
    defense = config.defense
    record["defense"] = {"name": defense.name, **defense.options}
    return record


def train_seeds(config: TrainConfig, data: VFLData, num_seeds: int, seed: int = 0,
                progress: bool | str = False, checkpoint_dir: str | None = None) -> dict:
    """Trains `num_seeds` runs of `config` on `data`; returns the JSON record of the session.
    With `checkpoint_dir` it checkpoints every epoch and resumes an interrupted session.
    A diverged seed (`ladsg_jax.divergence`) has its reason in `per_seed.diverged`, None as
    its final accuracy, and is left out of `test_accuracy`; `diverged` counts them."""
    runner = Runner(config)
    start = time.perf_counter()
    with count_compilations() as compiles:
        result = runner.fit(data, seed_keys(seed, num_seeds), progress=progress,
                            checkpoint_dir=checkpoint_dir)
        result = jax.block_until_ready(result)
    wall = time.perf_counter() - start
    diverged = divergence(result, data.num_classes)
    final = kept(result.final_test_accuracy, diverged)
    return {
        "dataset": data.name,
        "num_parties": data.num_parties,
        "feature_shapes": [list(x.shape[1:]) for x in data.train_x],
        "config": config_record(config),
        "strategy": {"loop": runner.loop, "seeds": runner.seeds,
                     "conv_gradients": resolve_conv_gradients(config.conv_gradients),
                     "backend": jax.default_backend()},
        "seed": seed,
        "num_seeds": num_seeds,
        "test_accuracy": summary(final),
        "diverged": count_diverged(diverged),
        "message_norm": message_norms(result.message_norm, diverged),
        "per_seed": {
            "diverged": diverged,
            "final_test_accuracy": final,
            "test_accuracy": np.asarray(result.test_accuracy),
            "train_loss": np.asarray(result.train_loss),
            "train_accuracy": np.asarray(result.train_accuracy),
        },
        "timing": {"wall_s": wall, **compiles.record()},
    }
