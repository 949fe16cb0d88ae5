"""Per-epoch checkpoints of a training run with orbax, so a killed run resumes where it stopped.

A run's checkpoint directory holds `run.json` (what run it is: `vfl.identity.run_identity`),
`.lock` (held while a run uses the folder) and one orbax `CheckpointManager` per group of seeds
trained together (`group_0`, ...: one group when seeds are vmapped, one per seed when they run in
sequence). Each checkpoint is the training state after an epoch (PRNG key included, as raw key
data) and the epoch metrics so far, so resuming continues the same key sequence and gives the
same final numbers as a run that was never stopped.

What can go wrong, and what happens:
- another setting in the same folder (a changed config, defense, data set, data option, split
  or shares, seeds or grid): `ConfigError` naming what differs, before anything trains;
- two runs on one folder at once: the second gets a `ConfigError` naming the folder and the
  first run (its pid, host and command), from the lock;
- a kill mid-save: orbax writes each checkpoint to a temporary folder and renames it when
  complete, so the previous checkpoint stays; the temporary folder is removed when the folder
  is next opened. Ctrl-C (SIGINT) during a save is held until the save is complete;
- a damaged checkpoint (a truncated array file, a broken `_METADATA`: any file that differs
  from the digest written beside it, `digests/group_G/EPOCH.json`, or that orbax cannot read):
  restoring falls back to the newest intact one with a warning line on stderr and removes the
  damaged ones; with none intact, or an unreadable `run.json`, a `ConfigError` says so and how
  to start over.
"""
from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
import shutil
import signal
import socket
import sys
import threading
import time

import jax
import numpy as np
from flax import serialization

from ladsg_jax.errors import ConfigError
from ladsg_jax.results import check_writable_dir, write_json_atomic
from ladsg_jax.vfl.identity import differences
from ladsg_jax.vfl.train import WireRecord

KEEP = 2   # checkpoints kept per group
@contextlib.contextmanager
def sigint_held():
    """Ctrl-C inside the block takes effect when it ends (a checkpoint is written whole)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:        # None: a handler not set from Python, which Python cannot put back
        signal.signal(signal.SIGINT, signal.default_int_handler if previous is None
                      else previous)
        if caught:
            raise KeyboardInterrupt


def warn(message: str) -> None:
    print(f"ladsg-jax: warning: checkpoint_dir: {message}", file=sys.stderr)


class EpochCheckpoints:
    """Save and restore one run's per-epoch checkpoints under `directory`; holds the folder's
    lock until `close` (use it as a context manager)."""

    def __init__(self, directory: str, identity: dict):
        import orbax.checkpoint as ocp

        check_writable_dir("checkpoint_dir", directory)
        self._ocp, self.directory = ocp, os.path.abspath(directory)
        os.makedirs(self.directory, exist_ok=True)
        self._lock = self._take_lock()
        try:
            self._check_identity(identity)
        except BaseException:
            self.close()
            raise
        for tmp in glob.glob(os.path.join(self.directory, "group_*", "*orbax-checkpoint-tmp*")):
            shutil.rmtree(tmp, ignore_errors=True)       # a save cut short by a kill
        self._managers: dict[int, object] = {}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _take_lock(self) -> int:
        import fcntl

        path = os.path.join(self.directory, ".lock")
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.read(fd, 4096).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise ConfigError("checkpoint_dir", f"{self.directory} is in use by another run "
                                                f"({holder}); wait for it to end or use "
                                                "another folder") from None
        os.ftruncate(fd, 0)
        os.write(fd, (f"pid {os.getpid()} on {socket.gethostname()} since "
                      f"{time.strftime('%Y-%m-%d %H:%M:%S')}: "
                      f"{' '.join(sys.argv) or 'python'}").encode())
        return fd

    def _check_identity(self, identity: dict) -> None:
        marker = os.path.join(self.directory, "run.json")
        if not os.path.exists(marker):
            write_json_atomic(marker, identity)
            return
        try:
            with open(marker) as f:
                held = json.load(f)
            if not isinstance(held, dict):
                raise ValueError("not a JSON object")
        except (OSError, ValueError) as err:
            raise ConfigError("checkpoint_dir", f"{marker} is unreadable ({err}); delete "
                                                f"{self.directory} to start over") from None
        differ = differences(identity, held)
        if differ:
            raise ConfigError("checkpoint_dir", f"{self.directory} holds checkpoints of "
                                                f"another run ({', '.join(differ)} differ); "
                                                "use another folder")

    def _manager(self, group: int):
        if group not in self._managers:
            ocp = self._ocp
            self._managers[group] = ocp.CheckpointManager(
                os.path.join(self.directory, f"group_{group}"),
                options=ocp.CheckpointManagerOptions(max_to_keep=KEEP,
                                                     enable_async_checkpointing=False))
        return self._managers[group]

    def save(self, group: int, epoch: int, state, history: list, wires: list) -> None:
        """Checkpoint after `epoch` epochs (1-based) of seed group `group`."""
        item = {"state": serialization.to_state_dict(state.replace(
                    key=jax.random.key_data(state.key))),
                "history": stack(history),
                "wires": stack([{"indices": w.indices, "messages": list(w.messages),
                                 **({} if w.embeddings is None else
                                    {"embeddings": list(w.embeddings)})} for w in wires])}
        manager = self._manager(group)
        with sigint_held():
            manager.save(epoch, args=self._ocp.args.StandardSave(item))
            manager.wait_until_finished()
            self._write_digests(group, epoch, manager.all_steps())

    def _step_dir(self, group: int, epoch: int) -> str:
        return os.path.join(self.directory, f"group_{group}", str(epoch))

    def _digest_path(self, group: int, epoch: int) -> str:
        return os.path.join(self.directory, "digests", f"group_{group}", f"{epoch}.json")

    def _write_digests(self, group: int, epoch: int, kept) -> None:
        """A digest of every file of the step just written (checked before orbax reads it,
        which reports damage in many ways, some only as log noise); digests of steps orbax
        has dropped are removed."""
        write_json_atomic(self._digest_path(group, epoch),
                          file_digests(self._step_dir(group, epoch)))
        folder = os.path.dirname(self._digest_path(group, epoch))
        for name in os.listdir(folder):
            if name.endswith(".json") and name[:-5].isdigit() and int(name[:-5]) not in kept:
                os.unlink(os.path.join(folder, name))

    def _damage(self, group: int, epoch: int) -> str | None:
        """What is wrong with a step's files against their digests (None: nothing, or no
        digest to check against)."""
        path = self._digest_path(group, epoch)
        if not os.path.exists(path):
            return None
        try:
            with open(path) as f:
                want = json.load(f)
        except (OSError, ValueError):
            return f"its digest file {path} is unreadable"
        got = file_digests(self._step_dir(group, epoch))
        for name in sorted(set(want) | set(got)):
            if want.get(name) != got.get(name):
                return f"{name} {'is missing' if name not in got else 'changed'}"
        return None

    def restore(self, group: int, template):
        """`(epochs done, state, history, wires)` of the group's newest intact checkpoint, or
        None when it has none.

        `template` is a state of the right structure (e.g. the freshly initialized one);
        history and wires come back as lists of per-epoch entries, as `Runner.fit` keeps them.
        A damaged checkpoint is reported, removed, and the next older one tried.
        """
        damaged = []
        try:
            steps = sorted(self._manager(group).all_steps(), reverse=True)
        except Exception as err:                    # noqa: BLE001 (orbax raises many kinds)
            steps, damaged = [], [f"group_{group}: {type(err).__name__}: {err}"]
        for epoch in steps:
            problem = self._damage(group, epoch)
            if problem is None:
                try:
                    restored = self._restore_step(group, epoch, template)
                except Exception as err:            # noqa: BLE001
                    problem = f"{type(err).__name__}: {str(err).splitlines()[0][:120]}"
            if problem is not None:
                damaged.append(f"{self._step_dir(group, epoch)}: {problem}")
                continue
            if damaged:
                self._remove_steps(group, [s for s in steps if s > epoch])
                warn(f"damaged, removed: {'; '.join(damaged)}; resuming seed group {group} "
                     f"from epoch {epoch}")
            return restored
        if damaged:
            raise ConfigError("checkpoint_dir", f"no intact checkpoint of seed group {group} "
                                                f"({'; '.join(damaged)}); delete "
                                                f"{self.directory} to start over")
        return None

    def _restore_step(self, group: int, epoch: int, template):
        item = self._manager(group).restore(epoch, args=self._ocp.args.StandardRestore())
        raw_template = template.replace(key=jax.random.key_data(template.key))
        state = serialization.from_state_dict(raw_template, item["state"])
        for want, got in zip(jax.tree.leaves(raw_template), jax.tree.leaves(state)):
            if np.shape(want) != np.shape(got):
                raise ValueError(f"array of shape {np.shape(got)}, expected {np.shape(want)}")
        state = state.replace(key=jax.random.wrap_key_data(state.key))
        wires = [WireRecord(indices=w["indices"], messages=in_order(w["messages"]),
                            embeddings=in_order(w["embeddings"]) if "embeddings" in w else None)
                 for w in unstack(item["wires"], None)]
        return epoch, state, unstack(item["history"], epoch), wires

    def _remove_steps(self, group: int, steps: list) -> None:
        manager = self._managers.pop(group)
        manager.close()
        for step in steps:
            shutil.rmtree(self._step_dir(group, step), ignore_errors=True)
            if os.path.exists(self._digest_path(group, step)):
                os.unlink(self._digest_path(group, step))

    def close(self) -> None:
        """Closes the orbax managers and releases the folder's lock (idempotent)."""
        for manager in getattr(self, "_managers", {}).values():
            manager.close()
        self._managers = {}
        if self._lock is not None:
            os.close(self._lock)            # releases the flock
            self._lock = None


def file_digests(folder: str) -> dict:
    """{path relative to `folder`: blake2b digest} of every file under `folder`."""
    out = {}
    for root, _, files in os.walk(folder):
        for name in files:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                out[os.path.relpath(path, folder)] = hashlib.file_digest(
                    f, lambda: hashlib.blake2b(digest_size=16)).hexdigest()
    return out


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


def in_order(by_party) -> tuple:
    """A restored list (a list, or {"0": ..., "1": ...} as orbax may key it) as the tuple it
    was saved from."""
    if isinstance(by_party, dict):
        return tuple(by_party[str(k)] for k in range(len(by_party)))
    return tuple(by_party)
