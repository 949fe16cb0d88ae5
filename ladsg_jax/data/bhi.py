"""Reader of Breast Histopathology Images (BHI, invasive ductal carcinoma patches).

Source: Janowczyk & Madabhushi 2016, "Deep learning for digital pathology image analysis";
distributed on Kaggle as "Breast Histopathology Images"
(https://www.kaggle.com/datasets/paultimothymooney/breast-histopathology-images, a manual
download: `archive.zip`, or the folder it unpacks to). Each patient folder
`<patient>/<0|1>/` holds 50×50 RGB patches `<patient>_idx5_x<X>_y<Y>_class<0|1>.png`, class 1
meaning IDC positive. The archive holds every patch twice (also under
`IDC_regular_ps50_idx5/`); each file name is read once.

Following Fu et al. (USENIX Security 2022), a sample is two patches of the same patient and the
same class side by side, (50, 100, 3) uint8, so that splitting the pixel columns in two gives
each of two parties one patch. Within a patient and class the patches are taken in sorted file
name order and paired consecutively; an odd last patch is dropped. Patches at a slide's edge
that are smaller than 50×50 are skipped (not padded). Train and test are split by patient
(80/20 of the patients, seed 0), so no patient has samples on both sides.
"""
from __future__ import annotations

import os
import re
from collections import defaultdict

import numpy as np

from ladsg_jax.data.archives import iter_members, reading
from ladsg_jax.data.images import decode_rgb
from ladsg_jax.data.splits import group_split
from ladsg_jax.errors import require

PATCH = 50
BHI_MEMBER = re.compile(
    r"(?:^|/)(\d+)/([01])/((\d+)_idx5_x\d+_y\d+_class([01])\.png)$", re.IGNORECASE)


def looks_like_bhi_folder(path: str) -> bool:
    """Whether `path` holds patient folders `<digits>/0` or `<digits>/1` (an unpacked archive)."""
    for entry in sorted(os.listdir(path)):
        if entry.isdigit() and any(os.path.isdir(os.path.join(path, entry, c)) for c in "01"):
            return True
    return False


def _read_patches(path: str) -> dict:
    """{(patient, label): {file name: patch}}, full-size patches only, each name once."""
    groups = defaultdict(dict)
    with reading(path):
        for member, f in iter_members(path):
            match = BHI_MEMBER.search(member)
            if match is None:
                continue
            folder, label, filename, patient, file_label = match.groups()
            require(folder == patient and label == file_label, "source",
                    f"{path}:{member}: the folders say patient {folder}, class {label}, the "
                    f"file name patient {patient}, class {file_label}")
            key = (int(patient), int(label))
            if filename in groups[key]:
                continue
            patch = decode_rgb(f.read(), None, f"{path}:{member}")
            if patch.shape[:2] == (PATCH, PATCH):
                groups[key][filename] = patch
    return groups


def read_bhi(path: str) -> dict:
    """BHI from `archive.zip` or its unpacked folder: pairs of patches, split by patient."""
    groups = _read_patches(path)
    pairs = defaultdict(list)           # patient -> [(label, pair image)]
    for (patient, label), patches in sorted(groups.items()):
        names = sorted(patches)
        for a, b in zip(names[0::2], names[1::2]):
            pairs[patient].append((label, np.concatenate([patches[a], patches[b]], axis=1)))
    require(bool(pairs), "source", f"{path}: no pair of 50×50 patches "
                                   "'<patient>/<0|1>/<patient>_idx5_x*_y*_class<0|1>.png' found")
    train, test = group_split(pairs, "source")
    out = {}
    for split, patients in (("train", train), ("test", test)):
        samples = [sample for patient in patients for sample in pairs[patient]]
        out[f"{split}_x"] = np.stack([image for _, image in samples])
        out[f"{split}_y"] = np.asarray([label for label, _ in samples], dtype=np.int64)
        out[f"{split}_patients"] = np.asarray(
            [patient for patient in patients for _ in pairs[patient]], dtype=np.int64)
    return out
