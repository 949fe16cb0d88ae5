"""TFDS builders for the file-based data sets, made by one factory from `catalog.SPECS`.

A builder reads the original file with the data set's reader (`catalog.py` names it and the
file) and writes array_record files, read back as random-access sources without TensorFlow.
The original file is found (or downloaded) by `sources.py`.

Next to the prepared records lie `source.sha256` (the digest of the file they were built from)
and `ladsg_info.json` (name, source, digest, sizes, classes, vocab_size, options). Asking for the
same data set from a different file in the same `data_dir` is an error, never a silent reuse.
Content options (`max_rows`, `max_train`, ...) name a TFDS config, so copies prepared with other
options live in their own folder.
"""
from __future__ import annotations

import functools
import glob
import json
import os
import shutil
import types

import numpy as np

from ladsg_jax.data.catalog import DatasetSpec, spec_for
from ladsg_jax.data.sources import (default_manual_dir, download_source, locate_source,
                                    missing_source, quiet_tfds, source_digest)
from ladsg_jax.errors import ConfigError, require
from ladsg_jax.results import write_json_atomic, write_text_atomic

INFO_FILE = "ladsg_info.json"
DIGEST_FILE = "source.sha256"
READ_CHUNK = 4096


@functools.lru_cache(maxsize=None)
def _base_class():
    """The builder all data sets share (defined on first use: importing TFDS takes a while)."""
    import tensorflow_datasets as tfds

    class LadsgBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
        """Writes the train and test splits that `SPEC.reader` returns for `source`."""

        VERSION = tfds.core.Version("1.0.0")
        RELEASE_NOTES = {"1.0.0": "The original file, read by ladsg_jax.data's reader."}
        SPEC: DatasetSpec

        def __init__(self, *, source: str | None = None, options: dict | None = None, **kwargs):
            self.source, self.options, self.files = source, options or {}, {}
            super().__init__(**kwargs)

        def _info(self):
            spec = self.SPEC
            encoding = (tfds.features.Encoding.NONE if spec.legacy_layout else
                        tfds.features.Encoding.BYTES)
            return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({
                "features": tfds.features.Tensor(shape=spec.shape, dtype=spec.dtype,
                                                 encoding=encoding),
                "label": tfds.features.ClassLabel(num_classes=spec.num_classes)}),
                supervised_keys=("features", "label"), disable_shuffling=not spec.legacy_layout)

        def _split_generators(self, dl_manager):
            arrays = self.SPEC.reader(self.source, **self.options)
            self.files = arrays.get("files", {})
            for split in ("train", "test"):
                shape = arrays[f"{split}_x"].shape[1:]
                require(shape == self.SPEC.shape, "source",
                        f"{self.source}: {split} samples of shape {shape}; "
                        f"{self.SPEC.name} samples are {self.SPEC.shape}")
            return {split: self._generate_examples(arrays[f"{split}_x"], arrays[f"{split}_y"])
                    for split in ("train", "test")}

        def _generate_examples(self, x, y):
            for i in range(len(y)):
                yield i, {"features": x[i], "label": int(y[i])}

    return LadsgBuilder


_BUILDERS: dict = {}


def builder_class(name: str):
    """The TFDS builder class of data set `name` (made once per process, not registered)."""
    if name not in _BUILDERS:
        spec = spec_for(name)
        camel = "".join(part.capitalize() for part in name.split("_"))
        _BUILDERS[name] = types.new_class(
            f"Ladsg{camel}", (_base_class(),), {"skip_registration": True},
            lambda ns: ns.update(name=f"ladsg_{name}", SPEC=spec, __doc__=spec.description))
    return _BUILDERS[name]


def config_name(options: dict) -> str:
    """The TFDS config naming a prepared copy by its content options, e.g. `max_rows=120000`."""
    return ",".join(f"{key}={'all' if value is None else value}"
                    for key, value in sorted(options.items()))


def make_builder(name: str, data_dir: str, options: dict, source: str | None = None):
    """A builder of `name` under `data_dir`; content options select (name) its config."""
    import tensorflow_datasets as tfds

    config = tfds.core.BuilderConfig(name=config_name(options)) if options else None
    with quiet_tfds():
        return builder_class(name)(source=source, options=options, data_dir=data_dir,
                                   config=config, file_format="array_record")


def _read_json(path: str) -> dict | None:
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def prepare_copy(name: str, data_dir: str, source: str | None = None,
                 manual_dir: str | None = None, **options) -> dict:
    """Prepares data set `name` under `data_dir` once (array_record); returns its info dict.

    A prepared copy is reused, even when its original file is gone; an original file that is
    given and differs from the one the copy was built from is a `ConfigError`.
    """
    return _prepared_builder(name, data_dir, source, manual_dir, options)[1]


def _prepared_builder(name: str, data_dir: str, source: str | None, manual_dir: str | None,
                      options: dict):
    """`prepare_copy`'s work: (a builder that reads the prepared copy, its info dict)."""
    spec = spec_for(name)
    options = spec.content_options(options)
    manual_dir = os.path.expanduser(manual_dir) if manual_dir else default_manual_dir(data_dir)
    builder = make_builder(name, data_dir, options)
    path = os.fspath(builder.data_path)
    info = _read_json(os.path.join(path, INFO_FILE))
    local = locate_source(spec, source, manual_dir)
    if local is None and info is None:
        if spec.source.url is None:
            raise missing_source(spec, manual_dir)
        local = download_source(spec, data_dir, manual_dir)
    if local is None:
        return builder, info
    digest = source_digest(local, info)
    built_from = info["digest"] if info else _read_text(os.path.join(path, DIGEST_FILE))
    if built_from is not None and built_from != digest:
        raise ConfigError("data_dir", f"{data_dir} already holds {name} prepared from another "
                                      f"file than {local}; use another data_dir")
    if info is not None:
        return builder, info
    # a builder made before its copy was prepared is not asked to read it: a new one is
    info = _build(builder, spec, local, digest, options)
    return make_builder(name, data_dir, options), info


def _build(builder, spec: DatasetSpec, local: str, digest: str, options: dict) -> dict:
    """Runs the builder on `local`, then writes its extra files, the digest and the info."""
    path = os.fspath(builder.data_path)
    if os.path.isdir(path) and not spec.legacy_layout:
        shutil.rmtree(path)     # records without an info file: a preparation cut short
    builder.source = local
    with quiet_tfds():
        builder.download_and_prepare()
    for filename, content in builder.files.items():
        write_text_atomic(os.path.join(path, filename), content)
    write_text_atomic(os.path.join(path, DIGEST_FILE), digest)
    stat = os.stat(local)
    splits = builder.info.splits
    info = {"name": spec.name, "kind": spec.kind, "source": os.path.abspath(local),
            "source_size": stat.st_size, "source_mtime": stat.st_mtime, "digest": digest,
            "num_train": splits["train"].num_examples, "num_test": splits["test"].num_examples,
            "num_classes": spec.num_classes, "vocab_size": spec.vocab_size, "options": options,
            "shape": list(spec.shape), "dtype": np.dtype(spec.dtype).name,
            "path": os.path.abspath(path),
            "files": sorted(builder.files)}
    write_json_atomic(os.path.join(path, INFO_FILE), info)
    return info


def _read_text(path: str) -> str | None:
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return f.read().strip()


def prepared_copies(data_dir: str) -> list[dict]:
    """The info dicts of every copy prepared under `data_dir`, by name then path."""
    infos = []
    for path in glob.glob(os.path.join(glob.escape(data_dir), "ladsg_*", "**", INFO_FILE),
                          recursive=True):
        info = _read_json(path)
        if info is not None and "name" in info:
            infos.append({**info, "path": os.path.abspath(os.path.dirname(path))})
    return sorted(infos, key=lambda info: (info["name"], info["path"]))


def read_split(builder, split: str) -> tuple[np.ndarray, np.ndarray]:
    """A split's features (stored dtype) and int32 labels, read in chunks of READ_CHUNK."""
    source = builder.as_data_source(split=split)
    features, labels = [], []
    for start in range(0, len(source), READ_CHUNK):
        records = source.__getitems__(list(range(start, min(start + READ_CHUNK, len(source)))))
        features.append(np.stack([r["features"] for r in records]))
        labels.append(np.asarray([r["label"] for r in records], dtype=np.int32))
    return np.concatenate(features), np.concatenate(labels)


def read_prepared(name: str, data_dir: str, source: str | None = None,
                  manual_dir: str | None = None, **options) -> dict:
    """Prepares `name` under `data_dir` once (see `prepare_copy`), then reads both splits.

    Features keep the stored dtype (uint8 images, int32 token ids, float32 otherwise); the
    result also holds num_classes, vocab_size and the info dict.
    """
    spec = spec_for(name)
    split = None
    try:
        builder, info = _prepared_builder(name, data_dir, source, manual_dir, options)
        out = {"num_classes": spec.num_classes, "vocab_size": spec.vocab_size, "info": info}
        for split in ("train", "test"):
            out[f"{split}_x"], out[f"{split}_y"] = read_split(builder, split)
    except ConfigError:
        raise
    except Exception as err:            # noqa: BLE001 (TFDS, protobuf and Riegeli raise many)
        raise broken_copy(name, data_dir, spec.content_options(options), split, err) from None
    return out


def broken_copy(name: str, data_dir: str, options: dict, split: str | None,
                err: Exception) -> ConfigError:
    """The one-line error for a prepared copy that cannot be read: the file at fault (a split's
    array_record file, or a JSON file that does not parse) and the commands that rebuild it."""
    root = os.path.join(data_dir, f"ladsg_{name}")
    files = glob.glob(os.path.join(glob.escape(root), "**", "*"), recursive=True)
    culprit = None
    if split is not None:
        culprit = next((f for f in sorted(files) if f"-{split}.array_record" in f), None)
    for path in sorted(f for f in files if f.endswith(".json")):
        if culprit is None:
            try:
                with open(path) as f:
                    json.load(f)
            except (OSError, ValueError):
                culprit = path
    folder = os.path.dirname(culprit) if culprit else root
    flags = "".join(f" --option {k}={v}" for k, v in options.items())
    reason = (str(err).strip().splitlines() or [type(err).__name__])[0][:160]
    return ConfigError(f"dataset {name}",
                       f"the prepared copy cannot be read ({culprit or root}: "
                       f"{type(err).__name__}: {reason}); rebuild it: rm -r {folder} && "
                       f"ladsg-jax data prepare {name} --data-dir {data_dir}{flags}")
