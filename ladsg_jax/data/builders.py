"""TFDS builders for the data sets that ship inside scikit-learn, read from their original files.

Each builder reads the file scikit-learn ships (or any file in the same format, passed as
`source`), splits it once into a stratified train/test split (80/20, fixed seed) and writes
array_record files, read back as random-access sources without TensorFlow.

- `breast_cancer`: Wisconsin Diagnostic Breast Cancer (Street, Wolberg & Mangasarian 1993), the
  CSV whose header line is ``n_samples,n_features,name_0,name_1`` and whose rows are the 30
  features then the label.
- `digits`: UCI optical recognition of handwritten digits, 8×8 images with values 0..16, the
  gzipped CSV whose rows are 64 pixel values then the label.
"""
from __future__ import annotations

import contextlib
import gzip
import os
import sys
from importlib import resources

import numpy as np

from ladsg_jax.errors import ConfigError

TEST_FRACTION = 0.2
SPLIT_SEED = 0


def sklearn_data_file(filename: str) -> str:
    """The path of a data file shipped in `sklearn.datasets.data`."""
    return str(resources.files("sklearn.datasets.data").joinpath(filename))


def read_breast_cancer_csv(path: str) -> tuple[np.ndarray, np.ndarray]:
    """Reads scikit-learn's breast_cancer.csv: a header `n,f,...` then rows of f features, label."""
    with open(path) as f:
        header = f.readline().strip().split(",")
        try:
            n, f_count = int(header[0]), int(header[1])
        except (IndexError, ValueError):
            raise ConfigError("source", f"{path}: first line must be 'n_samples,n_features,...', "
                                        f"got {','.join(header)!r}") from None
        rows = np.loadtxt(f, delimiter=",", ndmin=2)
    if rows.shape != (n, f_count + 1):
        raise ConfigError("source", f"{path}: header promises {n} rows of {f_count + 1} values, "
                                    f"file has {rows.shape[0]} rows of {rows.shape[1]}")
    return rows[:, :-1].astype(np.float32), rows[:, -1].astype(np.int64)


def read_digits_csv(path: str) -> tuple[np.ndarray, np.ndarray]:
    """Reads scikit-learn's digits.csv.gz: rows of 64 pixel values (0..16) then the label."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt") as f:
        rows = np.loadtxt(f, delimiter=",", ndmin=2)
    if rows.shape[1] != 65:
        raise ConfigError("source", f"{path}: digits rows need 64 pixels and a label, "
                                    f"got {rows.shape[1]} values")
    return rows[:, :-1].reshape(-1, 8, 8, 1).astype(np.float32), rows[:, -1].astype(np.int64)


def stratified_split(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Train and test indices: a stratified 80/20 split with a fixed seed (as the data ship unsplit)."""
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(y))
    classes, counts = np.unique(y, return_counts=True)
    stratify = y if counts.min() >= 2 else None
    train, test = train_test_split(idx, test_size=TEST_FRACTION, random_state=SPLIT_SEED,
                                   stratify=stratify)
    return np.sort(train), np.sort(test)


def _make_builder_classes():
    """Defines the TFDS builder classes on first use, so importing the package stays light."""
    import tensorflow_datasets as tfds

    class _FileBuilder(tfds.core.GeneratorBasedBuilder):
        VERSION = tfds.core.Version("1.0.0")
        RELEASE_NOTES = {"1.0.0": "Stratified 80/20 split of the scikit-learn copy."}
        DEFAULT_FILENAME = ""
        NUM_CLASSES = 0

        def __init__(self, *, source: str | None = None, **kwargs):
            self.source = source or sklearn_data_file(self.DEFAULT_FILENAME)
            super().__init__(**kwargs)

        def _split_generators(self, dl_manager):
            x, y = self.read()   # each concrete builder reads its own file format
            train, test = stratified_split(y)
            return {"train": self._generate_examples(x[train], y[train]),
                    "test": self._generate_examples(x[test], y[test])}

        def _generate_examples(self, x, y):
            for i in range(len(y)):
                yield i, {"features": x[i], "label": int(y[i])}

    class LadsgBreastCancer(_FileBuilder):
        """Wisconsin Diagnostic Breast Cancer (569 samples, 30 features, 2 classes)."""

        DEFAULT_FILENAME = "breast_cancer.csv"
        NUM_CLASSES = 2

        def _info(self):
            return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({
                "features": tfds.features.Tensor(shape=(30,), dtype=np.float32),
                "label": tfds.features.ClassLabel(num_classes=2)}),
                supervised_keys=("features", "label"))

        def read(self):
            x, y = read_breast_cancer_csv(self.source)
            if x.shape[1] != 30:
                raise ConfigError("source", f"{self.source}: breast_cancer has 30 features, "
                                            f"file has {x.shape[1]}")
            return x, y

    class LadsgDigits(_FileBuilder):
        """UCI handwritten digits (1797 images of 8×8 pixels, 10 classes)."""

        DEFAULT_FILENAME = "digits.csv.gz"
        NUM_CLASSES = 10

        def _info(self):
            return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({
                "features": tfds.features.Tensor(shape=(8, 8, 1), dtype=np.float32),
                "label": tfds.features.ClassLabel(num_classes=10)}),
                supervised_keys=("features", "label"))

        def read(self):
            return read_digits_csv(self.source)

    return {"breast_cancer": LadsgBreastCancer, "digits": LadsgDigits}


_BUILDERS: dict = {}


def builder_class(name: str):
    """The TFDS builder class registered for `name` ('breast_cancer' or 'digits')."""
    if not _BUILDERS:
        _BUILDERS.update(_make_builder_classes())
    return _BUILDERS[name]


def file_digest(path: str) -> str:
    """SHA-256 of a file, to tell which source a prepared data set was built from."""
    import hashlib

    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def read_prepared(name: str, data_dir: str, source: str | None = None) -> dict:
    """Prepares `name` under `data_dir` once (array_record), then reads both splits to arrays.

    The prepared copy records the digest of the file it was built from; asking for the same name
    from a different file in the same `data_dir` is an error rather than a silent reuse.
    """
    import tensorflow_datasets as tfds

    cls = builder_class(name)
    builder = cls(source=source, data_dir=data_dir, file_format="array_record")
    if not os.path.exists(builder.source):
        raise ConfigError("source", f"{name}: file {builder.source} not found")
    digest = file_digest(builder.source)
    marker = os.path.join(builder.data_path, "source.sha256")
    if os.path.exists(marker):
        with open(marker) as f:
            if f.read().strip() != digest:
                raise ConfigError("data_dir", f"{data_dir} already holds {name} prepared from "
                                              f"another file than {builder.source}; use another "
                                              "data_dir")
    else:
        tfds.disable_progress_bar()
        # TFDS announces the preparation on stdout; keep stdout for our own results.
        with contextlib.redirect_stdout(sys.stderr):
            builder.download_and_prepare()
        with open(marker, "w") as f:
            f.write(digest)
    out = {"num_classes": cls.NUM_CLASSES}
    for split in ("train", "test"):
        source_split = builder.as_data_source(split=split)
        records = source_split.__getitems__(list(range(len(source_split))))
        out[f"{split}_x"] = np.stack([r["features"] for r in records]).astype(np.float32)
        out[f"{split}_y"] = np.asarray([r["label"] for r in records], dtype=np.int32)
    return out
