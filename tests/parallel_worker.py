"""Subprocess entry point of tests/test_parallel.py and tests/test_multihost.py.

The device count is fixed when JAX starts, so the multi-device checks run here, in a process
whose environment sets XLA_FLAGS=--xla_force_host_platform_device_count=N and JAX_PLATFORMS=cpu.

    python tests/parallel_worker.py devices                 # one process, all its devices
    python tests/parallel_worker.py multihost --coordinator 127.0.0.1:PORT --num-processes 2 \
        --process-id I --out FILE.npz                       # one of several processes

`devices` prints one JSON line: the scaled differences (max |a − b| / max |b|) of the pmap and
shard_map steps from the single-device step, the compilations of repeated calls and the errors
of bad input. `multihost` trains `STEPS` data-parallel steps on this process's rows of every
batch and saves the final state and its rows of the messages.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np

from ladsg_jax import compile_cache
from ladsg_jax.compilation import count_compilations
from ladsg_jax.data import load
from ladsg_jax.defenses import CAE, LADSG, make_defense
from ladsg_jax.vfl import parallel
from ladsg_jax.distributed import add_distributed_arguments, initialize_from_args
from ladsg_jax.errors import ConfigError
from ladsg_jax.presets import preset_config
from ladsg_jax.vfl.model import VFLModel
from ladsg_jax.vfl.optim import make_optimizers
from ladsg_jax.vfl.parallel import STRATEGIES, gather_batch, make_parallel_step
from ladsg_jax.vfl.runner import Runner, seed_keys
from ladsg_jax.vfl.train import make_trainer

STEPS = 3
# the digits preset's MLP, narrowed so that compiling stays quick
DIGITS = dict(bottom_hidden=(16,), top_hidden=(8,), batch_size=32)
CASES = {
    "top_mlp": dict(top_model="mlp"),
    "top_none": dict(top_model="none"),
    # PER_SAMPLE defenses, run as they are: randomized response's noisy labels looked up by
    # the shard's indices; CAE's soft labels and decoded accuracy (a short autoencoder fit)
    "label_dp": dict(top_model="mlp", defense=make_defense("label_dp")),
    "cae": dict(top_model="mlp", defense=CAE(steps=50)),
    # BATCH_CUT defenses, their cut on the whole batch (GatheredCut): substitution with
    # per-sample noise directions, gathered by the batch's indices; LADSG's default, which
    # draws its directions per step; Laplace noise in the batch's shape; compression's top-k
    "ladsg_sg": dict(top_model="mlp", defense=LADSG(stages=("sg",), noise="per_sample")),
    "ladsg_default": dict(top_model="mlp", defense=LADSG()),
    "laplace": dict(top_model="mlp", defense=make_defense("laplace")),
    "compression": dict(top_model="mlp", defense=make_defense("compression")),
}


def start(mode: str, devices: int, *args: str) -> subprocess.Popen:
    """This script as a child process in `mode`, with `devices` simulated CPU devices (set in
    its environment before JAX starts), stdout and stderr captured."""
    flags = f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count={devices}"
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "XLA_FLAGS": flags.strip()}
    return subprocess.Popen([sys.executable, __file__, mode, *args], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def synthetic_data():
    return load("synthetic", num_parties=2, num_classes=3, num_features=8, separation=3.0,
                num_train=256, num_test=64)


def scaled_difference(a, b) -> float:
    """max |a − b| / max |b| over the leaves of two pytrees of arrays (inf if their
    structures differ, 0 if they have no leaves)."""
    if jax.tree.structure(a) != jax.tree.structure(b):
        return float("inf")
    if not jax.tree.leaves(b):
        return 0.0
    a, b = (np.concatenate([np.ravel(np.asarray(x, np.float64)) for x in jax.tree.leaves(t)])
            for t in (a, b))
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-30))


def compared(result) -> dict:
    state, metrics, messages = result
    return {"params": state.params, "batch_stats": state.batch_stats,
            "opt_state": state.opt_state, "loss": metrics["loss"],
            "accuracy": metrics["accuracy"], "messages": messages,
            "key": jax.random.key_data(state.key), "step": state.step,
            "defense_state": state.defense_state, "hparams": state.hparams}


def run_steps(step, state, batches) -> list:
    """The step applied along `batches` with the state carried: each step's outputs."""
    results = []
    for batch in batches:
        result = step(state, batch)
        state = result[0]
        results.append(result)
    return results


def check_case(data, config) -> dict:
    """For each strategy and each of `STEPS` steps (state carried): the scaled differences
    from the single-device step and the backend compilations the call ran."""
    trainer = make_trainer(config)
    state, indices = first_batches(trainer, data)
    single = jax.jit(trainer.step_on_indices)
    reference = run_steps(lambda s, i: single(s, data, i), state, indices)
    report = {}
    for strategy in STRATEGIES:
        step = make_parallel_step(config, data, strategy)
        counted = []

        def counting(s, batch):
            with count_compilations() as stats:
                result = step(s, batch)
            counted.append(stats.count)
            return result

        results = run_steps(counting, state, [gather_batch(data, i) for i in indices])
        report[strategy] = [
            {"compilations": count, **{name: scaled_difference(value, compared(ref)[name])
                                       for name, value in compared(res).items()}}
            for count, res, ref in zip(counted, results, reference)]
    return report


def check_runner(data, config) -> dict:
    """`Runner.fit` with `parallel` set against the single-device step loop: scaled differences
    of the final parameters and the per-epoch losses, and the largest test-accuracy gap."""
    config = config.replace(epochs=2)
    single = Runner(config.replace(loop="step")).fit(data, seed_keys(0, 1))
    report = {}
    for strategy in STRATEGIES:
        runner = Runner(config.replace(parallel=strategy))
        result = runner.fit(data, seed_keys(0, 1))
        report[strategy] = {
            "strategy": [runner.loop, runner.seeds],
            "params": scaled_difference(result.state.params, single.state.params),
            "train_loss": scaled_difference(result.train_loss, single.train_loss),
            "test_accuracy_gap": float(np.max(np.abs(np.asarray(result.test_accuracy)
                                                     - np.asarray(single.test_accuracy))))}
    return report


def per_shard_cut_difference(data, config) -> float:
    """The negative control of `GatheredCut`: the shard_map step's messages after one step when
    the defense's batch-wide cut runs on each device's rows alone (scaled difference from the
    single-device messages)."""
    trainer = make_trainer(config)
    state, indices = first_batches(trainer, data)
    single = jax.jit(trainer.step_on_indices)(state, data, indices[0])
    assert isinstance(parallel.cut_policy_for(config.defense), parallel.GatheredCut)
    real = parallel.cut_policy_for
    parallel.cut_policy_for = lambda defense, axis_name=parallel.AXIS: defense   # no gather
    try:
        alone = make_parallel_step(config, data, "shard_map")(state, gather_batch(data, indices[0]))
    finally:
        parallel.cut_policy_for = real
    return scaled_difference(alone[2], single[2])


def error_of(fn) -> str | None:
    try:
        fn()
    except ConfigError as error:
        return str(error)
    return None


def devices_mode() -> dict:
    # with one device every comparison below would hold trivially
    assert jax.device_count() > 1, f"XLA_FLAGS gave {jax.device_count()} device; see `start`"
    data = jax.tree.map(jnp.asarray, load("digits", num_parties=2))
    base = preset_config("digits", **DIGITS)
    report = {"device_count": jax.device_count(),
              "cases": {name: check_case(data, base.replace(**case))
                        for name, case in CASES.items()}}
    report["runner"] = check_runner(data, base)
    report["control"] = per_shard_cut_difference(data, base.replace(
        defense=make_defense("laplace")))
    odd = gather_batch(data, jnp.arange(30))
    # the batch is checked before the state is looked at
    report["errors"] = {
        **{f"{strategy}_batch": error_of(lambda s=strategy: make_parallel_step(
            base, data, s)(None, odd)) for strategy in STRATEGIES},
        "config_batch_size": error_of(lambda: make_parallel_step(
            base.replace(batch_size=30), data)),
        "strategy": error_of(lambda: make_parallel_step(base, data, "vmap")),
        # a WHOLE_BATCH defense, refused by both steps as they are built
        **{f"dcor_{strategy}": error_of(lambda s=strategy: make_parallel_step(
            base.replace(defense=make_defense("dcor")), data, s)) for strategy in STRATEGIES},
        **{f"dcor_{name}_step": error_of(lambda make=make: make(
            VFLModel.from_config(base, data.num_classes),
            lambda rate: make_optimizers(base, None, None, rate), make_defense("dcor")))
           for name, make in (("pmap", parallel.make_pmap_step),
                              ("shard_map", parallel.make_shard_map_step))}}
    return report


def named_leaves(prefix: str, tree) -> dict:
    """The leaves of `tree` as numpy arrays keyed by `prefix` and their path."""
    return {f"{prefix}{jax.tree_util.keystr(path)}": np.asarray(leaf)
            for path, leaf in jax.tree_util.tree_leaves_with_path(tree)}


def multihost_setting():
    """The data, config and batches' indices of the multi-process check (the same in every
    process and in the parent test): `STEPS` batches of the synthetic preset."""
    data = jax.tree.map(jnp.asarray, synthetic_data())
    config = preset_config("synthetic", batch_size=16, defense=LADSG())   # a GatheredCut
    return data, config, *first_batches(make_trainer(config), data)


def first_batches(trainer, data) -> tuple:
    """The initial state of key 0 and the indices of the first epoch's first `STEPS` batches."""
    state = jax.jit(trainer.init)(jax.random.key(0), data)
    state, indices = jax.jit(trainer.draw_epoch)(state, data)
    return state, indices[:STEPS]


def multihost_mode(args) -> None:
    """`STEPS` steps of each strategy on this process's rows of every batch; saves what the
    last step returned (state, metrics, this process's rows of the messages)."""
    initialize_from_args(args)
    assert jax.process_count() == args.num_processes, (jax.process_count(), args.num_processes)
    data, config, state, indices = multihost_setting()
    rows = indices.shape[1] // jax.process_count()
    mine = indices[:, jax.process_index() * rows:(jax.process_index() + 1) * rows]
    saved = {}
    for strategy in STRATEGIES:
        results = run_steps(make_parallel_step(config, data, strategy), state,
                            [gather_batch(data, i) for i in mine])
        saved.update(named_leaves(strategy, compared(results[-1])))
    np.savez(args.out, process_count=jax.process_count(), device_count=jax.device_count(),
             **saved)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=("devices", "multihost"))
    parser.add_argument("--out", default=None)
    add_distributed_arguments(parser)
    args = parser.parse_args(argv)
    jax.config.update("jax_default_matmul_precision", "highest")
    if args.mode == "devices":
        cache = os.environ.get(compile_cache.ENV)        # the suite's own (tests/conftest.py)
        if cache and os.environ.get("LADSG_JAX_TEST_CACHE", "on") != "off":
            compile_cache.enable(cache)
        print(json.dumps(devices_mode()))
    else:
        multihost_mode(args)


if __name__ == "__main__":
    sys.exit(main())
