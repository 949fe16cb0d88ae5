"""What a training run is, for a checkpoint folder to belong to it: everything that changes its
numbers (`run_identity`), and which of those parts two identities differ in."""
from __future__ import annotations

import dataclasses
import hashlib

import jax
import numpy as np

# what each part of the identity covers, for the message when a folder holds another run's
PARTS = {"config": "the training config or the defense", "data": "the data set",
         "data_fingerprint": "the data (an option, the split or the shares)",
         "feature_shapes": "the parties' feature shapes", "keys": "the seeds",
         "hparams": "the grid's values", "optimizers": "a party's own optimizer (e.g. the "
                                                       "malicious one's rule)"}


def data_fingerprint(data) -> str:
    """A digest of every array of a `VFLData` (values, shapes, dtypes) and its static fields:
    equal only for the same data set, options, split and shares."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(repr((data.name, data.num_classes, data.kind, data.vocab_size)).encode())
    for leaf in jax.tree.leaves(data):
        leaf = np.ascontiguousarray(np.asarray(leaf))
        digest.update(f"{leaf.dtype}{leaf.shape}".encode())
        digest.update(memoryview(leaf).cast("B"))
    return digest.hexdigest()


def run_identity(config, data, keys, hparams=None, optimizers: dict | None = None) -> dict:
    """What must match for a checkpoint to belong to a run: everything that changes its
    numbers (the config with its defense, the data set and a fingerprint of its arrays, the
    seed keys, the runs' hyperparameters and the parties' own optimizers: a dataclass value by
    its repr, any other transformation by its type alone)."""
    key_data = (keys if isinstance(keys, np.ndarray) else
                np.asarray(jax.random.key_data(keys))).tolist()
    identity = {"config": repr(config), "data": data.name,
                "data_fingerprint": data_fingerprint(data),
                "feature_shapes": [list(np.shape(x)[1:]) for x in data.train_x],
                "keys": key_data}
    if optimizers:
        identity["optimizers"] = {
            name: repr(opt) if dataclasses.is_dataclass(opt) else type(opt).__name__
            for name, opt in sorted(optimizers.items())}
    if hparams is not None:
        identity["hparams"] = [np.asarray(leaf).tolist() for leaf in jax.tree.leaves(hparams)]
    return identity


def differences(identity: dict, held: dict) -> list[str]:
    """What the parts in which two identities differ cover (empty: the same run)."""
    return [PARTS.get(k, k) for k in dict.fromkeys([*identity, *held])
            if identity.get(k) != held.get(k)]
