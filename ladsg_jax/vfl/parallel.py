"""Data-parallel VFL training steps: the step of `vfl/step.py` under `jax.pmap` and under
`jax.shard_map` on a 1-D `Mesh`, both over the axis `"batch"` (DESIGN §2).

    step = make_shard_map_step(model, optimizers, defense)      # or make_pmap_step(...)
    state, metrics, messages = step(state, batch)               # as train_step(state, batch)

Every device gets an equal, contiguous shard of the global batch (device j: rows j·b..(j+1)·b,
b = batch / devices); the state is replicated. The result equals the single-device step on the
global batch (to float rounding: sums run in another order):

- **Loss and gradients.** Each device differentiates its share of the global-batch mean loss,
  Σ_{i in shard} ℓ_i / B, so the cotangent reaching the cut, and therefore every message and
  every defense's view of it, is the single-device one. The parameter gradients are then
  `lax.psum`-ed over "batch", which equals the `lax.pmean` of the gradients of each device's
  local-mean loss, the usual data-parallel reduction (`pmean(∇ mean_shard ℓ) = psum(∇ Σ_shard ℓ
  / B)`); the local-mean form would send every message n times too large. The loss metric is the
  psum of the shares, the accuracy the pmean of the shards' accuracies. Every replica then
  applies the same optax update to the same replicated parameters, so they stay identical.
- **BatchNorm** (the top model, ResNet bottoms) normalizes with the statistics of the whole
  global batch, as the single-device step does, with no change to the models: inside the step
  every `flax.linen.BatchNorm` call is intercepted (`flax.linen.intercept_methods`) and run as a
  copy of the same module with `axis_name="batch"` on the same variables, so its batch mean and
  mean square are `lax.pmean`-ed across devices (Flax's own cross-device BatchNorm,
  `nn.BatchNorm(axis_name=...)`, see its docstring). The running statistics are updated from
  those global statistics, identically on every replica, and the backward pass runs through
  the pmean, so gradients and messages carry the cross-sample BatchNorm terms of the whole batch.
- **PRNG key.** The state's typed key is replicated and split exactly as the single-device step
  splits it, so every replica draws the single-device key sequence.
- **Messages** (the wire) come back in global batch order, shape (B, d) per passive party.
- **Defenses** follow what they declare they need (`Defense.needs`, DESIGN §2): `PER_SAMPLE`
  defenses run as they are; `BATCH_CUT` ones (their only batch-wide computation is the cut's
  message: a max, top-k, mean or class means over the batch's true messages, or noise drawn
  for the whole batch at once) run their cut on the whole batch (`GatheredCut`): every device
  `all_gather`s the batch's true messages and the cut contexts' per-sample arrays (labels,
  targets, indices, noise directions), applies the defense's cut with the replicated key,
  exactly the single-device computation, and keeps its own rows (a gather of B·d floats per
  passive party and a B·d cut on every device). `WHOLE_BATCH` defenses (a loss over all pairs
  of the batch, screens on batch-mean norms, a top-model pullback at 1/B) are refused with a
  `ConfigError` naming what they need. The step itself is `vfl/step.py`'s, with a
  `Reduction` over "batch".

`jax.pmap` (JAX's older API; in JAX 0.10 it is `jit` of `shard_map` with `check_vma=False`, see
its docstring and https://docs.jax.dev/en/latest/migrate_pmap.html) takes the process-local batch
reshaped to (local devices, b, ...) and returns the replicated outputs (`out_axes=None`) without
checking that they agree. `jax.shard_map` (https://docs.jax.dev/en/latest/notebooks/
shard_map.html) runs with `check_vma=True`: JAX checks that everything declared replicated (the
new state, the metrics) really is; without the BatchNorm treatment above it rejects the step,
as the running statistics would differ per device. Under it the parameters are cast to
"varying" (`lax.pcast`) before differentiation, so their gradients stay per device until the
explicit psum (JAX would otherwise psum the gradient of a replicated input by itself). With
several processes (`ladsg_jax.distributed`) both
steps take each process's own rows of the global batch (process p: the p-th equal part, in device
order) and return that process's rows of the messages; the state is the same on every process.
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
from typing import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from ladsg_jax.config import TrainConfig, check_against_data
from ladsg_jax.data.arrays import VFLData
from ladsg_jax.defenses.base import BATCH_CUT, PER_SAMPLE, Defense, call_hook
from ladsg_jax.errors import ConfigError, one_of, require
from ladsg_jax.vfl.model import VFLModel
from ladsg_jax.vfl.optim import make_optimizers
from ladsg_jax.vfl.state import Batch, TrainState
from ladsg_jax.vfl.step import Reduction, make_train_step

AXIS = "batch"
STRATEGIES = ("shard_map", "pmap")
# the cut contexts' arrays with a row per sample of the batch (the rest are replicated)
PER_SAMPLE_CONTEXT = ("labels", "targets", "index", "noise")


def check_parallel_defense(defense: Defense) -> None:
    """Raises `ConfigError` naming the defense unless what it declares it needs of the batch
    lets data-parallel steps give the single-device result."""
    if defense.needs not in (PER_SAMPLE, BATCH_CUT):
        raise ConfigError("defense", f"{defense.name} cannot run data-parallel with the "
                                     f"single-device result: it needs the whole batch outside "
                                     f"the cut ({defense.needs}); allowed: defenses whose "
                                     f"needs are {PER_SAMPLE} or {BATCH_CUT} (see `ladsg-jax "
                                     f"list defenses`)")


def gather_rows(tree, gather):
    """The cut context `tree` (a dict, or tuples of them for a chain) with its per-sample
    entries gathered over the devices."""
    if isinstance(tree, dict):
        return {name: gather(value) if name in PER_SAMPLE_CONTEXT else gather_rows(value, gather)
                for name, value in tree.items()}
    if isinstance(tree, (tuple, list)):
        return type(tree)(gather_rows(value, gather) for value in tree)
    return tree


@dataclasses.dataclass(frozen=True)
class GatheredCut:
    """The cut policy (`vfl/cut.py`) of `inner` computed on the whole global batch inside a map
    over `axis_name`: every device gathers the true messages g of all shards (`lax.all_gather`,
    in shard order: the global batch's rows) and the cut context's per-sample arrays, applies
    `inner.cut` with the replicated key, exactly as the single-device step does, and keeps its
    own rows. Only the cut changes; every other hook stays `inner`'s."""

    inner: Defense
    axis_name: str = AXIS

    def cut(self, hp, g, ctx):
        rows = g.shape[0]
        gather = functools.partial(jax.lax.all_gather, axis_name=self.axis_name, axis=0,
                                   tiled=True)
        message = call_hook(self.inner, "cut", hp, gather(g), gather_rows(ctx, gather))
        start = jax.lax.axis_index(self.axis_name) * rows
        return jax.lax.dynamic_slice_in_dim(message, start, rows, axis=0)


def cut_policy_for(defense: Defense, axis_name: str = AXIS):
    """The cut policy of the data-parallel step: `defense` itself, or its `GatheredCut`; a
    `ConfigError` if it cannot give the single-device result."""
    check_parallel_defense(defense)
    return GatheredCut(defense, axis_name) if defense.needs == BATCH_CUT else defense


@contextlib.contextmanager
def synced_batch_norm(axis_name: str):
    """Within the block, every `nn.BatchNorm` call of a module being applied uses batch
    statistics `lax.pmean`-ed over `axis_name`: it runs as the same module with that
    `axis_name` on the same variables, and writes the updated running statistics back."""

    def interceptor(next_fun, args, kwargs, context):
        module = context.module
        if (not isinstance(module, nn.BatchNorm) or context.method_name != "__call__"
                or module.axis_name is not None or module.is_initializing()):
            return next_fun(*args, **kwargs)
        synced = module.clone(parent=None, name=None, axis_name=axis_name)
        out, updates = synced.apply(module.variables, *args, mutable=["batch_stats"], **kwargs)
        if module.is_mutable_collection("batch_stats"):
            for name, value in updates["batch_stats"].items():
                module.put_variable("batch_stats", name, value)
        return out

    with nn.intercept_methods(interceptor):
        yield


def varying(tree, axis_name: str):
    """`tree` marked as differing across `axis_name` (shard_map's varying type), so that its
    gradient stays per device until the explicit reduction."""
    return jax.lax.pcast(tree, axis_name, to="varying")


def make_device_step(model: VFLModel, optimizers, defense: Defense,
                     axis_name: str = AXIS) -> Callable:
    """The per-device body `(state, shard) -> (state, metrics, messages)` of the data-parallel
    steps, to run under a map that binds `axis_name` (see the module docstring): `vfl/step.py`'s
    step with its reduction over `axis_name`. `shard.index` must hold the shard's positions in
    the training set. `cut_policy_for` refuses a defense that needs the whole batch."""
    reduction = Reduction(axis_name=axis_name,
                          batch_norm=functools.partial(synced_batch_norm, axis_name),
                          varying=functools.partial(varying, axis_name=axis_name),
                          cut_policy=functools.partial(cut_policy_for, axis_name=axis_name))
    return make_train_step(model, optimizers, defense, reduction)


def with_index(batch: Batch) -> Batch:
    """`batch` with `index` filled as the single-device step fills it (positions 0..B-1 of the
    global batch; this process's part of them when there are several processes)."""
    if batch.index is not None:
        return batch
    local = batch.y.shape[0]
    return batch.replace(index=jax.process_index() * local + jnp.arange(local))


def check_divisible(batch: Batch, devices: int) -> None:
    """Raises `ConfigError` unless this process's batch splits evenly over its devices."""
    size = batch.y.shape[0]
    if size % devices:
        raise ConfigError("batch_size", f"a batch of {size} samples does not split evenly over "
                                        f"this process's {devices} devices; allowed: multiples "
                                        f"of {devices}")


def make_pmap_step(model: VFLModel, optimizers, defense: Defense,
                   devices=None) -> Callable:
    """`step(state, batch) -> (state, metrics, messages)` under `jax.pmap(axis_name="batch")`.

    `devices`: the devices to map over (default: all; with several processes, give the same
    list on each). The batch is this process's rows, split over its devices in order.
    """
    mapped = jax.pmap(make_device_step(model, optimizers, defense), axis_name=AXIS,
                      in_axes=(None, 0), out_axes=(None, None, 0), devices=devices)
    local = [d for d in (jax.devices() if devices is None else devices)
             if d.process_index == jax.process_index()]
    # where pmap leaves a replicated output: the state's first placement, so that the first
    # call and the later ones (which get pmap's output back) compile the same program
    local_mesh = Mesh(np.array(local), (AXIS,))
    replicated, split = NamedSharding(local_mesh, P()), NamedSharding(local_mesh, P(AXIS))

    def step(state: TrainState, batch: Batch):
        check_divisible(batch, len(local))
        shards = jax.tree.map(lambda a: a.reshape((len(local), -1) + a.shape[1:]),
                              with_index(batch))
        shards = jax.device_put(shards, split)      # also when the batch is committed elsewhere
        state, metrics, messages = mapped(jax.device_put(state, replicated), shards)
        return state, metrics, tuple(m.reshape((-1,) + m.shape[2:]) for m in messages)

    return step


def batch_mesh(devices=None) -> Mesh:
    """A 1-D mesh with axis "batch" over `devices` (default: all devices of all processes)."""
    return Mesh(np.array(jax.devices() if devices is None else devices), (AXIS,))


def make_shard_map_step(model: VFLModel, optimizers, defense: Defense,
                        mesh: Mesh | None = None) -> Callable:
    """`step(state, batch) -> (state, metrics, messages)` under `jax.shard_map` on `mesh`
    (default `batch_mesh()`), jitted: the batch sharded along "batch", the state replicated.

    The batch is this process's rows (all of them with one process); arrays are placed on the
    mesh with `multihost_utils.host_local_array_to_global_array`, and the messages come back as
    this process's rows.
    """
    mesh = mesh or batch_mesh()
    require(mesh.axis_names == (AXIS,), "mesh",
            f"must be 1-D with the axis {AXIS!r}, got axes {mesh.axis_names}")
    in_specs, out_specs = (P(), P(AXIS)), (P(), P(), P(AXIS))
    mapped = jax.jit(jax.shard_map(make_device_step(model, optimizers, defense), mesh=mesh,
                                   in_specs=in_specs, out_specs=out_specs))
    local = mesh.local_mesh.size

    def step(state: TrainState, batch: Batch):
        check_divisible(batch, local)
        args = multihost_utils.host_local_array_to_global_array(
            (state, with_index(batch)), mesh, in_specs)
        return multihost_utils.global_array_to_host_local_array(mapped(*args), mesh, out_specs)

    return step


def gather_batch(data: VFLData, indices) -> Batch:
    """The training samples at `indices` as a `Batch` (as `Trainer.step_on_indices` builds it)."""
    return Batch(x=tuple(x[indices] for x in data.train_x), y=data.train_y[indices],
                 index=indices)


def make_parallel_step(config: TrainConfig, data: VFLData, strategy: str = "shard_map",
                       optimizers: dict | None = None, devices=None) -> Callable:
    """The data-parallel step of `config` on `data`, with the model and optimizers
    `make_trainer(config, optimizers)` builds: `strategy` "shard_map" or "pmap", over
    `devices` (default all). Apply it to `gather_batch(data, indices)` in place of
    `Trainer.step_on_indices(state, data, indices)`. `config.batch_size` is the global batch,
    a multiple of the device count; with several processes each feeds its equal part of it
    (process p: rows p·B/P..(p+1)·B/P of the batch the single-process run would use)."""
    one_of("strategy", strategy, STRATEGIES)
    check_against_data(config, data.num_parties, data.num_classes, data.num_train,
                       data.vocab_size)
    count = len(jax.devices() if devices is None else devices)
    if config.batch_size % count:
        raise ConfigError("batch_size", f"{config.batch_size} does not split evenly over "
                                        f"{count} devices; allowed: multiples of {count}")
    model = VFLModel.from_config(config, data.num_classes)
    steps = data.num_train // config.batch_size
    opts = lambda rate: make_optimizers(config, optimizers, steps, rate)      # noqa: E731
    if strategy == "pmap":
        return make_pmap_step(model, opts, config.defense, devices)
    return make_shard_map_step(model, opts, config.defense, batch_mesh(devices))


__all__ = ["AXIS", "STRATEGIES", "check_parallel_defense", "GatheredCut", "cut_policy_for",
           "synced_batch_norm", "make_device_step", "make_pmap_step", "make_shard_map_step",
           "batch_mesh", "gather_batch", "make_parallel_step"]
