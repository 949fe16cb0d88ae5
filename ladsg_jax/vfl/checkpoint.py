"""Per-epoch checkpoints of a training run with orbax, so a killed run resumes where it stopped.

A run's checkpoint directory holds `run.json` (what run it is: config, data set, seeds) and one
orbax `CheckpointManager` per group of seeds trained together (`group_0`, ...: one group when
seeds are vmapped, one per seed when they run in sequence). Each checkpoint is the training
state after an epoch (PRNG key included, as raw key data) and the epoch metrics so far, so
resuming continues the same key sequence and gives the same final numbers as a run that was
never stopped. orbax writes each checkpoint to a temporary folder and renames it when complete:
a kill mid-save leaves the previous checkpoint.
"""
from __future__ import annotations

import json
import os

import jax
import numpy as np
from flax import serialization

from ladsg_jax.errors import ConfigError
from ladsg_jax.results import check_writable_dir, write_json_atomic
from ladsg_jax.vfl.train import WireRecord

KEEP = 2   # checkpoints kept per group


def run_identity(config, data_name: str, keys, hparams=None) -> dict:
    """What must match for a checkpoint to belong to a run: config, data set, seed keys and
    the runs' hyperparameters."""
    key_data = (keys if isinstance(keys, np.ndarray) else
                np.asarray(jax.random.key_data(keys))).tolist()
    identity = {"config": repr(config), "data": data_name, "keys": key_data}
    if hparams is not None:
        identity["hparams"] = [np.asarray(leaf).tolist() for leaf in jax.tree.leaves(hparams)]
    return identity


class EpochCheckpoints:
    """Save and restore one run's per-epoch checkpoints under `directory`."""

    def __init__(self, directory: str, identity: dict):
        import orbax.checkpoint as ocp

        check_writable_dir("checkpoint_dir", directory)
        self._ocp, self.directory = ocp, os.path.abspath(directory)
        marker = os.path.join(self.directory, "run.json")
        if os.path.exists(marker):
            with open(marker) as f:
                if json.load(f) != identity:
                    raise ConfigError("checkpoint_dir", f"{directory} holds checkpoints of "
                                                        "another run (config, data or seeds "
                                                        "differ); use another directory")
        else:
            write_json_atomic(marker, identity)
        self._managers: dict[int, object] = {}

    def _manager(self, group: int):
        if group not in self._managers:
            ocp = self._ocp
            self._managers[group] = ocp.CheckpointManager(
                os.path.join(self.directory, f"group_{group}"),
                options=ocp.CheckpointManagerOptions(max_to_keep=KEEP))
        return self._managers[group]

    def save(self, group: int, epoch: int, state, history: list, wires: list) -> None:
        """Checkpoint after `epoch` epochs (1-based) of seed group `group`."""
        item = {"state": serialization.to_state_dict(state.replace(
                    key=jax.random.key_data(state.key))),
                "history": stack(history),
                "wires": stack([{"indices": w.indices, "messages": list(w.messages)}
                                for w in wires])}
        manager = self._manager(group)
        manager.save(epoch, args=self._ocp.args.StandardSave(item))
        manager.wait_until_finished()

    def restore(self, group: int, template):
        """`(epochs done, state, history, wires)` of the group's latest checkpoint, or None.

        `template` is a state of the right structure (e.g. the freshly initialized one);
        history and wires come back as lists of per-epoch entries, as `Runner.fit` keeps them.
        """
        manager = self._manager(group)
        epoch = manager.latest_step()
        if epoch is None:
            return None
        item = manager.restore(epoch, args=self._ocp.args.StandardRestore())
        raw_template = template.replace(key=jax.random.key_data(template.key))
        state = serialization.from_state_dict(raw_template, item["state"])
        state = state.replace(key=jax.random.wrap_key_data(state.key))
        wires = [WireRecord(indices=w["indices"], messages=tuple(
                     w["messages"][str(k)] for k in range(len(w["messages"]))))
                 for w in unstack(item["wires"], None)]
        return epoch, state, unstack(item["history"], epoch), wires

    def close(self) -> None:
        for manager in self._managers.values():
            manager.close()


def stack(entries: list):
    """Per-epoch pytrees stacked on a new leading axis ({} when there are none)."""
    if not entries:
        return {}
    return jax.tree.map(lambda *xs: np.stack([np.asarray(x) for x in xs]), *entries)


def unstack(stacked, count: int | None) -> list:
    """The inverse of `stack`: a list of per-epoch pytrees."""
    leaves = jax.tree.leaves(stacked)
    if not leaves:
        return []
    count = leaves[0].shape[0] if count is None else count
    return [jax.tree.map(lambda a, i=i: a[i], stacked) for i in range(count)]
