"""Readers of the image data sets' original files: CIFAR-10/100, CINIC-10 and Tiny ImageNet.

Each returns uint8 images (N, H, W, 3) and int64 labels per split, in a fixed order.

- CIFAR-10 and CIFAR-100 (Krizhevsky 2009, "Learning multiple layers of features from tiny
  images"), the python tarballs of https://www.cs.toronto.edu/~kriz/cifar.html: pickled
  batches whose `data` rows are 3072 bytes, the red, green and blue 32×32 planes in row-major
  order. CIFAR-100 labels are the 100 fine labels.
- CINIC-10 (Darlow et al. 2018, "CINIC-10 is not ImageNet or CIFAR-10"), `CINIC-10.tar.gz`
  from https://datashare.ed.ac.uk/handle/10283/3192: 32×32 PNGs in `train/<class>/`,
  `valid/<class>/` and `test/<class>/`. Our train split is `train`, our test split `test`;
  `valid` is not used. A few images are grayscale and are converted to RGB.
- Tiny ImageNet (Le & Yang 2015, the CS231n challenge), `tiny-imagenet-200.zip` from
  http://cs231n.stanford.edu/: 200 classes, ids in the order of `wnids.txt`; our train split is
  `train/<wnid>/images/*.JPEG`, our test split `val/images/*.JPEG` labelled by
  `val/val_annotations.txt` (the challenge's `test` folder has no labels). Grayscale images are
  converted to RGB.
"""
from __future__ import annotations

import io
import pickle
import posixpath
import re

import numpy as np

from ladsg_jax.data.archives import iter_members, reading
from ladsg_jax.errors import ConfigError, require

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                   "ship", "truck")
CIFAR_ROW = 3 * 32 * 32
TINY_IMAGENET_CLASSES = 200


def decode_rgb(data: bytes, size: tuple[int, int] | None, where: str) -> np.ndarray:
    """A PNG or JPEG as uint8 (height, width, 3), grayscale or palette images made RGB.

    `size` is (height, width), another size being a `ConfigError` naming `where`; None: any.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            pixels = np.asarray(image.convert("RGB"), dtype=np.uint8)
    except (UnidentifiedImageError, OSError, SyntaxError) as err:
        raise ConfigError("source", f"{where}: not a readable image ({err})") from None
    if size is not None and pixels.shape[:2] != tuple(size):
        raise ConfigError("source", f"{where}: image of {pixels.shape[0]}×{pixels.shape[1]} "
                                    f"pixels; this data set's images are {size[0]}×{size[1]}")
    return pixels


class _NumpyOnly(pickle.Unpickler):
    """Unpickles the CIFAR batches, refusing any global that is not a numpy array part."""

    ALLOWED = {"_reconstruct", "ndarray", "dtype", "scalar", "_frombuffer"}

    def find_class(self, module, name):
        if ((module.split(".")[0] == "numpy" and name in self.ALLOWED)
                or (module, name) == ("_codecs", "encode")):     # bytes in protocol 2
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"global {module}.{name} is not part of a CIFAR batch")


def _cifar_batch(f, where: str, label_key: bytes, num_classes: int):
    try:
        batch = _NumpyOnly(f, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as err:
        raise ConfigError("source", f"{where}: not a CIFAR python batch ({err})") from None
    require(isinstance(batch, dict) and b"data" in batch and label_key in batch, "source",
            f"{where}: a CIFAR batch is a dict with keys b'data' and {label_key!r}")
    data, labels = np.asarray(batch[b"data"]), np.asarray(batch[label_key])
    require(data.ndim == 2 and data.shape[1] == CIFAR_ROW, "source",
            f"{where}: data of shape {data.shape}; CIFAR rows hold {CIFAR_ROW} values "
            "(3 planes of 32×32)")
    require(labels.shape == (data.shape[0],), "source",
            f"{where}: {data.shape[0]} images but {labels.size} labels")
    require(data.size == 0 or (data.min() >= 0 and data.max() <= 255), "source",
            f"{where}: pixel values outside 0..255")
    require(labels.size == 0 or (labels.min() >= 0 and labels.max() < num_classes), "source",
            f"{where}: labels outside 0..{num_classes - 1}")
    images = data.astype(np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), labels.astype(np.int64)


def read_cifar_tarball(path: str, fine: bool = False) -> dict:
    """CIFAR-10 (`fine=False`) or CIFAR-100 (`fine=True`, fine labels) from the python tarball."""
    folder, label_key, num_classes = (("cifar-100-python", b"fine_labels", 100) if fine else
                                      ("cifar-10-batches-py", b"labels", 10))
    splits = ({"train": ["train"], "test": ["test"]} if fine else
              {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]})
    wanted = {f"{folder}/{name}" for names in splits.values() for name in names}
    batches = {}
    with reading(path):
        for member, f in iter_members(path):
            key = "/".join(member.split("/")[-2:])
            if key in wanted:
                batches[key] = _cifar_batch(f, f"{path}:{member}", label_key, num_classes)
    out = {}
    for split, names in splits.items():
        missing = [f"{folder}/{n}" for n in names if f"{folder}/{n}" not in batches]
        require(not missing, "source", f"{path}: no {', '.join(missing)} inside; expected the "
                                       f"{'CIFAR-100' if fine else 'CIFAR-10'} python tarball")
        parts = [batches[f"{folder}/{n}"] for n in names]
        out[f"{split}_x"] = np.concatenate([p[0] for p in parts])
        out[f"{split}_y"] = np.concatenate([p[1] for p in parts])
    return out


def _stack_sorted(items: list, where: str) -> tuple[np.ndarray, np.ndarray]:
    """Images and labels from (sort key, label, image) triples, in sort-key order."""
    require(bool(items), "source", f"{where}: no images found")
    items.sort(key=lambda item: item[0])
    return (np.stack([image for _, _, image in items]),
            np.asarray([label for _, label, _ in items], dtype=np.int64))


CINIC_MEMBER = re.compile(r"(?:^|/)(train|valid|test)/([^/]+)/([^/]+\.png)$")


def read_cinic_tarball(path: str) -> dict:
    """CINIC-10 from `CINIC-10.tar.gz`: train from `train/`, test from `test/` (not `valid/`)."""
    splits = {"train": [], "test": []}
    with reading(path):
        for member, f in iter_members(path):
            match = CINIC_MEMBER.search(member)
            if match is None or match[1] == "valid":
                continue
            split, name, filename = match.groups()
            require(name in CIFAR10_CLASSES, "source",
                    f"{path}:{member}: unknown class folder {name!r}; allowed: "
                    f"{', '.join(CIFAR10_CLASSES)}")
            label = CIFAR10_CLASSES.index(name)
            image = decode_rgb(f.read(), (32, 32), f"{path}:{member}")
            splits[split].append(((label, filename), label, image))
    out = {}
    for split, items in splits.items():
        out[f"{split}_x"], out[f"{split}_y"] = _stack_sorted(items, f"{path}: {split}/")
    return out


TINY_TRAIN = re.compile(r"(?:^|/)train/([^/]+)/images/([^/]+\.jpe?g)$", re.IGNORECASE)
TINY_VAL = re.compile(r"(?:^|/)val/images/([^/]+\.jpe?g)$", re.IGNORECASE)


def _tiny_wnids(text: str, where: str) -> dict:
    wnids = [line.strip() for line in text.splitlines() if line.strip()]
    require(len(wnids) == TINY_IMAGENET_CLASSES and len(set(wnids)) == len(wnids), "source",
            f"{where}: {len(wnids)} lines ({len(set(wnids))} distinct); wnids.txt lists "
            f"{TINY_IMAGENET_CLASSES} distinct class ids")
    return {wnid: i for i, wnid in enumerate(wnids)}


def _tiny_val_labels(text: str, where: str) -> list[tuple[str, str]]:
    rows = []
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip():
            fields = line.split("\t")
            require(len(fields) >= 2, "source",
                    f"{where} line {number}: expected 'FILE<TAB>WNID<TAB>box...', got {line!r}")
            rows.append((fields[0], fields[1]))
    return rows


def read_tiny_imagenet_zip(path: str) -> dict:
    """Tiny ImageNet from `tiny-imagenet-200.zip`: train = train, test = val (labelled)."""
    train, val, texts = [], {}, {}
    with reading(path):
        for member, f in iter_members(path):
            where = f"{path}:{member}"
            if posixpath.basename(member) in ("wnids.txt", "val_annotations.txt"):
                texts[posixpath.basename(member)] = (f.read().decode("utf-8"), where)
            elif match := TINY_TRAIN.search(member):
                train.append((match[1], match[2], decode_rgb(f.read(), (64, 64), where)))
            elif match := TINY_VAL.search(member):
                val[match[1]] = decode_rgb(f.read(), (64, 64), where)
    for name in ("wnids.txt", "val_annotations.txt"):
        require(name in texts, "source", f"{path}: no {name} inside; expected "
                                         "tiny-imagenet-200.zip")
    classes = _tiny_wnids(*texts["wnids.txt"])
    where = texts["val_annotations.txt"][1]
    items = []
    for wnid, filename, image in train:
        require(wnid in classes, "source", f"{path}: train/{wnid} is not in wnids.txt")
        items.append(((classes[wnid], filename), classes[wnid], image))
    out = {}
    out["train_x"], out["train_y"] = _stack_sorted(items, f"{path}: train/")
    items = []
    for order, (filename, wnid) in enumerate(_tiny_val_labels(*texts["val_annotations.txt"])):
        require(wnid in classes, "source", f"{where}: {filename} has class {wnid!r}, "
                                           "which is not in wnids.txt")
        require(filename in val, "source", f"{where}: val/images/{filename} is missing")
        items.append((order, classes[wnid], val[filename]))
    out["test_x"], out["test_y"] = _stack_sorted(items, f"{path}: val/")
    return out
