"""The paper's data sets read from tiny files fabricated in their original formats (DESIGN §7).

Nothing here touches the network: every test passes a manual_dir holding the tiny file.
"""
import csv
import io
import json
import math
import os
import pickle
import socket
import tarfile
import zipfile
import zlib

import numpy as np
import pytest
from PIL import Image

from ladsg_jax import data as D
from ladsg_jax.app.cli import main
from ladsg_jax.errors import ConfigError


# --- writing tiny files in the original formats ------------------------------------------------

def write_archive(path, members: dict) -> str:
    """A .zip or a gzipped tarball holding {member name: bytes}."""
    path = str(path)
    if path.endswith(".zip"):
        with zipfile.ZipFile(path, "w") as archive:
            for name, content in members.items():
                archive.writestr(name, content)
        return path
    with tarfile.open(path, "w:gz") as archive:
        for name, content in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            archive.addfile(info, io.BytesIO(content))
    return path


def encode_image(pixels: np.ndarray, fmt: str) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=fmt)
    return buffer.getvalue()


def cifar_batch(rows: np.ndarray, labels, label_key=b"labels") -> bytes:
    return pickle.dumps({b"batch_label": b"x", b"data": rows, label_key: list(labels),
                         b"filenames": [b"f"] * len(labels)})


def cifar_rows(n, seed):
    return np.random.default_rng(seed).integers(0, 256, size=(n, 3072), dtype=np.uint8)


def make_cifar10(folder, row_length=3072):
    """Five training batches of 2 rows and a test batch of 3; returns the rows and labels."""
    batches, labels = {}, {}
    for i in range(1, 6):
        batches[f"data_batch_{i}"] = cifar_rows(2, i)
        labels[f"data_batch_{i}"] = [(2 * i) % 10, (2 * i + 3) % 10]
    batches["test_batch"], labels["test_batch"] = cifar_rows(3, 9), [7, 0, 9]
    batches["data_batch_3"] = batches["data_batch_3"][:, :row_length]
    members = {"cifar-10-batches-py/batches.meta": pickle.dumps({b"label_names": []})}
    members.update({f"cifar-10-batches-py/{name}": cifar_batch(batches[name], labels[name])
                    for name in batches})
    write_archive(os.path.join(folder, "cifar-10-python.tar.gz"), members)
    return batches, labels


@pytest.fixture
def dirs(tmp_path):
    manual = tmp_path / "manual"
    manual.mkdir()
    return str(manual), str(tmp_path / "prepared")


def party_shapes(data):
    return [x.shape for x in data.train_x], [x.shape for x in data.test_x]


def assert_standardized(data):
    """The training images glued back together have mean 0 and std 1 per channel."""
    whole = np.concatenate(data.train_x, axis=2)
    assert all(x.dtype == np.float32 for x in data.train_x + data.test_x)
    np.testing.assert_allclose(whole.mean(axis=(0, 1, 2)), 0.0, atol=1e-5)
    np.testing.assert_allclose(whole.std(axis=(0, 1, 2)), 1.0, atol=1e-4)


# --- CIFAR-10 / CIFAR-100 ----------------------------------------------------------------------

def test_cifar10_reads_the_python_tarball_in_order(dirs):
    manual, prepared = dirs
    batches, labels = make_cifar10(manual)
    raw = D.read_raw("cifar10", data_dir=prepared, manual_dir=manual)
    assert raw["train_x"].shape == (10, 32, 32, 3) and raw["train_x"].dtype == np.uint8
    assert raw["train_y"].tolist() == sum((labels[f"data_batch_{i}"] for i in range(1, 6)), [])
    assert raw["test_y"].tolist() == [7, 0, 9]
    # Rows are the red, green and blue 32×32 planes: pixel (h, w, c) is value c·1024 + 32h + w.
    row = batches["data_batch_2"][1]
    assert raw["train_x"][3, 5, 7, 2] == row[2 * 1024 + 5 * 32 + 7]
    np.testing.assert_array_equal(raw["train_x"][3], row.reshape(3, 32, 32).transpose(1, 2, 0))
    data = D.load("cifar10", data_dir=prepared, manual_dir=manual)
    assert party_shapes(data) == ([(10, 32, 16, 3)] * 2, [(3, 32, 16, 3)] * 2)
    assert data.vocab_size == 0 and data.kind == "image" and data.num_classes == 10
    assert_standardized(data)


def test_cifar100_uses_the_fine_labels(dirs):
    manual, prepared = dirs
    members = {"cifar-100-python/train": pickle.dumps({
        b"data": cifar_rows(4, 1), b"fine_labels": [99, 3, 50, 0], b"coarse_labels": [1] * 4}),
        "cifar-100-python/test": pickle.dumps({
            b"data": cifar_rows(2, 2), b"fine_labels": [42, 98], b"coarse_labels": [0, 0]})}
    write_archive(os.path.join(manual, "cifar-100-python.tar.gz"), members)
    data = D.load("cifar100", data_dir=prepared, manual_dir=manual, num_parties=4)
    assert data.num_classes == 100 and data.train_y.tolist() == [99, 3, 50, 0]
    assert data.test_y.tolist() == [42, 98]
    assert [x.shape for x in data.train_x] == [(4, 32, 8, 3)] * 4


def test_a_cifar_batch_with_short_rows_is_named(dirs):
    manual, prepared = dirs
    make_cifar10(manual, row_length=3071)
    with pytest.raises(ConfigError, match=r"source: .*data_batch_3: data of shape \(2, 3071\); "
                                          "CIFAR rows hold 3072"):
        D.load("cifar10", data_dir=prepared, manual_dir=manual)


def test_a_cifar_pickle_may_hold_nothing_but_arrays(dirs):
    manual, prepared = dirs
    evil = pickle.dumps({b"data": cifar_rows(1, 0), b"labels": [os.getcwd]})
    write_archive(os.path.join(manual, "cifar-10-python.tar.gz"),
                  {"cifar-10-batches-py/test_batch": evil})
    with pytest.raises(ConfigError, match="not a CIFAR python batch.*posix.getcwd"):
        D.read_raw("cifar10", data_dir=prepared, manual_dir=manual)


# --- CINIC-10 ----------------------------------------------------------------------------------

CINIC_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
                 "truck")


def test_cinic10_reads_train_and_test_pngs_not_valid(dirs):
    manual, prepared = dirs
    members, rng = {}, np.random.default_rng(0)
    for label, name in enumerate(CINIC_CLASSES):
        for split in ("train", "valid", "test"):
            pixels = rng.integers(0, 256, size=(32, 32, 3), dtype=np.uint8)
            pixels[0, 0] = (label, ("train", "valid", "test").index(split), 0)
            members[f"{split}/{name}/n0_{label}.png"] = encode_image(pixels, "PNG")
    gray = np.full((32, 32), 77, dtype=np.uint8)
    members["train/cat/cifar10-train-9.png"] = encode_image(gray, "PNG")     # grayscale
    write_archive(os.path.join(manual, "CINIC-10.tar.gz"), members)
    raw = D.read_raw("cinic10", data_dir=prepared, manual_dir=manual)
    assert raw["train_x"].shape == (11, 32, 32, 3) and raw["test_x"].shape == (10, 32, 32, 3)
    assert raw["train_y"].tolist() == [0, 1, 2, 3, 3, 4, 5, 6, 7, 8, 9]
    assert raw["test_y"].tolist() == list(range(10))
    assert set(raw["test_x"][:, 0, 0, 1].tolist()) == {2}          # no valid/ image came in
    cat = raw["train_x"][3]                                        # sorted by class, then name
    assert (cat == 77).all() and cat.shape == (32, 32, 3)
    data = D.load("cinic10", data_dir=prepared, manual_dir=manual)
    assert party_shapes(data) == ([(11, 32, 16, 3)] * 2, [(10, 32, 16, 3)] * 2)
    assert_standardized(data)


# --- BHI ---------------------------------------------------------------------------------------

BHI_PATIENTS = {8863: (3, 2), 9036: (2, 5), 10253: (4, 1), 12345: (2, 2), 13400: (1, 3)}


def bhi_members(prefix=""):
    """Per patient (n0, n1) patches of class 0 and 1; channel 0 = patient number, channel 1 =
    the patch's rank in sorted name order, channel 2 = class. One extra edge patch is 50×30."""
    members = {}
    for p_index, (patient, counts) in enumerate(BHI_PATIENTS.items()):
        for label, count in enumerate(counts):
            names = sorted(f"{patient}_idx5_x{100 * (k + 1)}_y{51 * k + 1}_class{label}.png"
                           for k in range(count))
            for rank, name in enumerate(names):
                pixels = np.zeros((50, 50, 3), dtype=np.uint8)
                pixels[..., 0], pixels[..., 1], pixels[..., 2] = p_index, rank, label
                members[f"{prefix}{patient}/{label}/{name}"] = encode_image(pixels, "PNG")
        edge = np.zeros((50, 30, 3), dtype=np.uint8)
        members[f"{prefix}{patient}/0/{patient}_idx5_x9_y9_class0.png"] = encode_image(edge, "PNG")
    return members


def test_bhi_pairs_patches_of_a_patient_and_splits_by_patient(dirs):
    manual, prepared = dirs
    members = {**bhi_members(), **bhi_members("IDC_regular_ps50_idx5/")}   # Kaggle's twin copy
    write_archive(os.path.join(manual, "archive.zip"), members)
    raw = D.read_raw("bhi", data_dir=prepared, manual_dir=manual)
    pairs = sum(n0 // 2 + n1 // 2 for n0, n1 in BHI_PATIENTS.values())
    assert len(raw["train_y"]) + len(raw["test_y"]) == pairs == 10
    x = np.concatenate([raw["train_x"], raw["test_x"]])
    assert x.shape[1:] == (50, 100, 3) and x.dtype == np.uint8
    left, right = x[:, :, :50], x[:, :, 50:]
    np.testing.assert_array_equal(left[..., 0], right[..., 0])          # the same patient
    np.testing.assert_array_equal(left[..., 2], right[..., 2])          # the same class
    assert ((left[:, 0, 0, 1] % 2 == 0) & (right[:, 0, 0, 1] == left[:, 0, 0, 1] + 1)).all()
    np.testing.assert_array_equal(np.concatenate([raw["train_y"], raw["test_y"]]),
                                  x[:, 0, 0, 2])
    train_patients = set(raw["train_x"][:, 0, 0, 0].tolist())
    test_patients = set(raw["test_x"][:, 0, 0, 0].tolist())
    assert not train_patients & test_patients and len(test_patients) == 1
    assert len(train_patients | test_patients) == 5                 # 13400 has one class-1 pair
    data = D.load("bhi", data_dir=prepared, manual_dir=manual)
    assert [x.shape[1:] for x in data.train_x] == [(50, 50, 3)] * 2
    assert data.num_classes == 2


def test_bhi_reads_an_unpacked_folder(dirs, tmp_path):
    manual, prepared = dirs
    for name, content in bhi_members().items():
        os.makedirs(os.path.join(manual, os.path.dirname(name)), exist_ok=True)
        with open(os.path.join(manual, name), "wb") as f:
            f.write(content)
    raw = D.read_raw("bhi", data_dir=prepared, manual_dir=manual)
    assert len(raw["train_y"]) + len(raw["test_y"]) == 10


# --- Yahoo! Answers ----------------------------------------------------------------------------

YAHOO_TRAIN = [
    ("5", "Why is the sky blue?", "I mean, really \"blue\"?\\nThanks", "Rayleigh scattering, sky"),
    ("1", "Sky or sea", "", "the sea is blue\\nthe sky too"),
    ("10", "What's up", "Don't know", "nothing's up, really"),
]
YAHOO_TEST = [("3", "Blue whale?", "", "a big whale, blue"),
              ("10", "", "", "")]


def csv_text(rows) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, quoting=csv.QUOTE_ALL, lineterminator="\n").writerows(rows)
    return buffer.getvalue().encode()


def make_yahoo(folder):
    write_archive(os.path.join(folder, "yahoo_answers_csv.tgz"), {
        "yahoo_answers_csv/classes.txt": b"Society & Culture\n",
        "yahoo_answers_csv/train.csv": csv_text(YAHOO_TRAIN),
        "yahoo_answers_csv/test.csv": csv_text(YAHOO_TEST),
        "yahoo_answers_csv/readme.txt": b"Yahoo! Answers Topic Classification Dataset\n"})


def test_yahoo_answers_become_two_segments_of_word_ids(dirs):
    manual, prepared = dirs
    make_yahoo(manual)
    data = D.load("yahoo_answers", data_dir=prepared, manual_dir=manual)
    assert data.kind == "tokens" and data.vocab_size == 20002
    assert party_shapes(data) == ([(3, 64)] * 2, [(2, 64)] * 2)
    assert all(x.dtype == np.int32 for x in data.train_x + data.test_x)
    assert data.train_y.tolist() == [4, 0, 9] and data.test_y.tolist() == [2, 9]
    # Word counts over all training text: sky 4; blue 3, the 3; is, really, sea, up 2; then
    # the words seen once in word order ("don't", i, know, ...): ids are 2 + rank.
    vocab = open(os.path.join(D.prepared(prepared)[0]["path"], "vocab.txt")).read().split("\n")
    assert vocab[:10] == ["<pad>", "<unk>", "sky", "blue", "the", "is", "really", "sea", "up",
                          "don't"]
    ids = {word: i for i, word in enumerate(vocab)}
    question = "why is the sky blue i mean really blue thanks".split()
    expected = [ids[w] for w in question] + [0] * (64 - len(question))
    assert data.train_x[0][0].tolist() == expected
    answer = [ids[w] for w in ("rayleigh", "scattering", "sky")]
    assert data.train_x[1][0, :4].tolist() == answer + [0]
    # Test words unseen in training are unknown (1): "whale", "a", "big".
    assert data.test_x[0][0, :3].tolist() == [ids["blue"], 1, 0]
    assert data.test_x[1][0, :5].tolist() == [1, 1, 1, ids["blue"], 0]
    assert data.test_x[0][1].sum() == 0 and data.test_x[1][1].sum() == 0


def test_yahoo_subsets_are_prepared_apart(dirs):
    manual, prepared = dirs
    make_yahoo(manual)
    full = D.prepare("yahoo_answers", data_dir=prepared, manual_dir=manual)
    small = D.prepare("yahoo_answers", data_dir=prepared, manual_dir=manual, max_train=2,
                      max_test=1)
    assert (full["num_train"], full["num_test"]) == (3, 2)
    assert (small["num_train"], small["num_test"]) == (2, 1) and full["path"] != small["path"]
    assert small["options"] == {"max_train": 2, "max_test": 1}
    assert len(D.prepared(prepared)) == 2
    for name in ("ladsg_info.json", "vocab.txt"):          # as if cut short before the end
        os.remove(os.path.join(small["path"], name))
    again = D.prepare("yahoo_answers", data_dir=prepared, manual_dir=manual, max_train=2,
                      max_test=1)
    assert again["num_train"] == 2 and os.path.exists(os.path.join(again["path"], "vocab.txt"))
    with pytest.raises(ConfigError, match="max_train: must be a positive integer or None"):
        D.prepare("yahoo_answers", data_dir=prepared, manual_dir=manual, max_train=0)


# --- Give Me Some Credit -----------------------------------------------------------------------

GMSC_HEADER = (",SeriousDlqin2yrs,RevolvingUtilizationOfUnsecuredLines,age,"
               "NumberOfTime30-59DaysPastDueNotWorse,DebtRatio,MonthlyIncome,"
               "NumberOfOpenCreditLines,NumberOfTimes90DaysLate,NumberRealEstateLoansOrLines,"
               "NumberOfTime60-89DaysPastDueNotWorse,NumberOfDependents")


def make_gmsc(folder, rows=20):
    """Row i: label i % 2, age 20 + i, MonthlyIncome 1000·(i + 1) except NA in rows 3 and 8."""
    lines = [GMSC_HEADER]
    for i in range(rows):
        income = "NA" if i in (3, 8) else str(1000 * (i + 1))
        dependents = "NA" if i == 5 else str(i % 3)
        lines.append(f"{i + 1},{i % 2},0.{i + 1},{20 + i},0,0.5,{income},{i},0,1,0,{dependents}")
    with open(os.path.join(folder, "cs-training.csv"), "w") as f:
        f.write("\n".join(lines) + "\n")


def test_give_me_some_credit_imputes_na_with_the_train_median(dirs):
    manual, prepared = dirs
    make_gmsc(manual)
    raw = D.read_raw("give_me_some_credit", data_dir=prepared, manual_dir=manual)
    assert raw["train_x"].shape == (16, 10) and raw["test_x"].shape == (4, 10)
    assert np.bincount(raw["test_y"]).tolist() == [2, 2]                  # stratified
    train_rows = (raw["train_x"][:, 1] - 20).astype(int).tolist()         # age = 20 + row
    train_incomes = [1000 * (i + 1) for i in train_rows if i not in (3, 8)]
    median = np.median(train_incomes)
    dependents = np.median([i % 3 for i in train_rows if i != 5])
    for split in ("train", "test"):
        for x, y in zip(raw[f"{split}_x"], raw[f"{split}_y"]):
            row = int(x[1]) - 20
            assert y == row % 2
            assert x[4] == (median if row in (3, 8) else 1000 * (row + 1))
            assert x[9] == (dependents if row == 5 else row % 3)
    assert not np.isnan(raw["train_x"]).any() and not np.isnan(raw["test_x"]).any()
    data = D.load("give_me_some_credit", data_dir=prepared, manual_dir=manual)
    assert party_shapes(data) == ([(16, 5)] * 2, [(4, 5)] * 2)
    np.testing.assert_allclose(np.concatenate(data.train_x, axis=1).mean(axis=0), 0, atol=1e-5)


def test_a_gmsc_file_with_another_header_is_refused(dirs):
    manual, prepared = dirs
    with open(os.path.join(manual, "cs-training.csv"), "w") as f:
        f.write("id,label,x\n1,0,2\n")
    with pytest.raises(ConfigError, match="source: .*cs-training.csv starts with"):
        D.load("give_me_some_credit", data_dir=prepared, manual_dir=manual)


# --- Criteo ------------------------------------------------------------------------------------

def criteo_lines(n=20):
    rng = np.random.default_rng(0)
    lines = []
    for i in range(n):
        ints = [str(int(v)) for v in rng.integers(-1, 400, size=13)]
        cats = [f"{int(v):08x}" for v in rng.integers(0, 2 ** 32, size=26)]
        if i % 3 == 0:
            ints[2], cats[25] = "", ""                      # missing fields
        lines.append("\t".join([str(i % 2), *ints, *cats]))
    lines[0] = "\t".join(["1", "100", "-1", "", "2", "3"] + ["0"] * 8 + ["68fd1e64"] + [""] * 25)
    return lines


def criteo_ids(line):
    """The hashed ids, computed here independently of the reader."""
    fields, out = line.split("\t")[1:], []
    for j, value in enumerate(fields):
        if j < 13:
            bucket = "NA" if value == "" else (
                int(math.floor(math.log(int(value)) ** 2)) if int(value) > 2 else int(value))
            token = f"I{j + 1}:{bucket}"
        else:
            token = f"C{j - 12}:{value or 'NA'}"
        out.append(zlib.crc32(token.encode()) % 8191 + 1)
    return out


def test_criteo_hashes_each_field_and_splits_20_19(dirs):
    manual, prepared = dirs
    lines = criteo_lines()
    with open(os.path.join(manual, "train.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    data = D.load("criteo", data_dir=prepared, manual_dir=manual)
    assert data.kind == "tokens" and data.vocab_size == 8192
    assert party_shapes(data) == ([(16, 20), (16, 19)], [(4, 20), (4, 19)])
    rows = np.concatenate([np.concatenate(data.train_x, axis=1),
                           np.concatenate(data.test_x, axis=1)])
    labels = np.concatenate([data.train_y, data.test_y])
    expected = {tuple(criteo_ids(line)): int(line[0]) for line in lines}
    assert len(expected) == 20
    assert {tuple(r): int(y) for r, y in zip(rows.tolist(), labels)} == expected
    first = criteo_ids(lines[0])
    assert first[0] == zlib.crc32(b"I1:21") % 8191 + 1           # floor(log(100)²) = 21
    assert first[1:4] == [zlib.crc32(t) % 8191 + 1 for t in (b"I2:-1", b"I3:NA", b"I4:2")]
    assert rows.min() >= 1 and rows.max() < 8192


def test_criteo_max_rows_reads_the_head_of_dac_tar_gz(dirs):
    manual, prepared = dirs
    lines = criteo_lines()
    write_archive(os.path.join(manual, "dac.tar.gz"), {
        "readme.txt": b"Criteo\n", "train.txt": ("\n".join(lines) + "\n").encode()})
    raw = D.read_raw("criteo", data_dir=prepared, manual_dir=manual, max_rows=10)
    rows = np.concatenate([raw["train_x"], raw["test_x"]])
    assert rows.shape == (10, 39) and rows.dtype == np.int32
    assert {tuple(r) for r in rows.tolist()} == {tuple(criteo_ids(line)) for line in lines[:10]}
    assert D.prepared(prepared)[0]["options"] == {"max_rows": 10}


def test_a_criteo_line_with_missing_tabs_is_named(dirs):
    manual, prepared = dirs
    with open(os.path.join(manual, "train.txt"), "w") as f:
        f.write("\t".join(["0"] * 40) + "\n" + "\t".join(["1"] * 30) + "\n")
    with pytest.raises(ConfigError, match="train.txt line 2: 30 tab-separated fields"):
        D.load("criteo", data_dir=prepared, manual_dir=manual)


# --- Tiny ImageNet -----------------------------------------------------------------------------

def test_tiny_imagenet_takes_classes_from_wnids_and_test_from_val(dirs):
    manual, prepared = dirs
    wnids = [f"n{10000000 + 7 * i}" for i in range(200)]
    root, rng = "tiny-imagenet-200", np.random.default_rng(0)

    def jpeg(gray=False):
        if gray:
            return encode_image(np.full((64, 64), 200, dtype=np.uint8), "JPEG")
        return encode_image(rng.integers(0, 256, size=(64, 64, 3), dtype=np.uint8), "JPEG")

    members = {f"{root}/wnids.txt": ("\n".join(wnids) + "\n").encode(),
               f"{root}/words.txt": b"n0\tthing\n"}
    for c in (199, 5, 0):
        members[f"{root}/train/{wnids[c]}/{wnids[c]}_boxes.txt"] = b"x\t0\t0\t1\t1\n"
        for k in range(2):
            members[f"{root}/train/{wnids[c]}/images/{wnids[c]}_{k}.JPEG"] = jpeg(c == 5 and k)
    val = [("val_0.JPEG", 5), ("val_1.JPEG", 199), ("val_2.JPEG", 0)]
    for name, _ in val:
        members[f"{root}/val/images/{name}"] = jpeg()
    members[f"{root}/val/val_annotations.txt"] = "".join(
        f"{name}\t{wnids[c]}\t0\t0\t63\t63\n" for name, c in val).encode()
    members[f"{root}/test/images/test_0.JPEG"] = jpeg()
    write_archive(os.path.join(manual, "tiny-imagenet-200.zip"), members)
    raw = D.read_raw("tiny_imagenet", data_dir=prepared, manual_dir=manual)
    assert raw["train_y"].tolist() == [0, 0, 5, 5, 199, 199]
    assert raw["test_y"].tolist() == [5, 199, 0]
    gray = raw["train_x"][3]                                # class 5, image 1: grayscale JPEG
    assert gray.shape == (64, 64, 3) and (gray[..., 0] == gray[..., 1]).all()
    assert abs(int(gray.mean()) - 200) <= 2
    data = D.load("tiny_imagenet", data_dir=prepared, manual_dir=manual)
    assert data.num_classes == 200
    assert party_shapes(data) == ([(6, 64, 32, 3)] * 2, [(3, 64, 32, 3)] * 2)
    assert_standardized(data)


# --- finding files, reusing prepared copies, the CLI --------------------------------------------

@pytest.mark.parametrize("name, filename, url", [
    ("give_me_some_credit", "cs-training.csv", "https://www.kaggle.com/c/GiveMeSomeCredit/data"),
    ("criteo", "train.txt", "https://www.kaggle.com/datasets/mrkmakr/criteo-dataset"),
    ("bhi", "archive.zip",
     "https://www.kaggle.com/datasets/paultimothymooney/breast-histopathology-images"),
])
def test_a_missing_manual_download_says_what_to_fetch_and_where(dirs, name, filename, url):
    manual, prepared = dirs
    with pytest.raises(ConfigError) as err:
        D.load(name, data_dir=prepared, manual_dir=manual)
    message = str(err.value)
    assert message.startswith("manual_dir: ") and filename in message and url in message
    assert f"put it in {manual}" in message


def test_prepare_twice_reuses_the_prepared_copy(dirs):
    manual, prepared = dirs
    make_cifar10(manual)
    first = D.prepare("cifar10", data_dir=prepared, manual_dir=manual)
    assert (first["num_train"], first["num_test"], first["num_classes"]) == (10, 3, 10)
    info_file = os.path.join(first["path"], "ladsg_info.json")
    assert json.load(open(info_file))["digest"] == first["digest"]
    assert open(os.path.join(first["path"], "source.sha256")).read() == first["digest"]
    records = [os.path.join(first["path"], f) for f in os.listdir(first["path"])
               if "array_record" in f]
    stamps = [os.stat(p).st_mtime_ns for p in records]
    os.remove(os.path.join(manual, "cifar-10-python.tar.gz"))      # the copy suffices now
    again = D.prepare("cifar10", data_dir=prepared, manual_dir=manual)
    assert again == first and [os.stat(p).st_mtime_ns for p in records] == stamps
    assert D.load("cifar10", data_dir=prepared, manual_dir=manual).num_train == 10
    assert [info["name"] for info in D.prepared(prepared)] == ["cifar10"]
    rows = cifar_rows(3, 10)
    write_archive(os.path.join(manual, "cifar-10-python.tar.gz"), {
        "cifar-10-batches-py/test_batch": cifar_batch(rows, [1, 2, 3])})
    with pytest.raises(ConfigError, match="data_dir: .* already holds cifar10 prepared from "
                                          "another file"):
        D.prepare("cifar10", data_dir=prepared, manual_dir=manual)


def test_token_arrays_are_checked_against_the_vocabulary():
    x = np.arange(24).reshape(6, 4) % 8
    data = D.from_arrays(x, np.arange(6) % 2, x[:2], np.arange(2), num_classes=2,
                         kind="tokens", vocab_size=8)
    assert data.train_x[0].dtype == np.int32 and [p.shape for p in data.train_x] == [(6, 2)] * 2
    assert data.vocab_size == 8
    with pytest.raises(ConfigError, match=r"train.features: token id 8 out of range; "
                                          r"allowed: 0..7"):
        D.from_arrays(x + 1, np.arange(6) % 2, x[:2], np.arange(2), num_classes=2,
                      kind="tokens", vocab_size=8)
    with pytest.raises(ConfigError, match="test.features: token ids must be integers"):
        D.from_arrays(x, np.arange(6) % 2, x[:2] * 1.0, np.arange(2), num_classes=2,
                      kind="tokens", vocab_size=8)
    with pytest.raises(ConfigError, match="kind: unknown value 'text'; allowed: image, "
                                          "tabular, tokens"):
        D.from_arrays(x, np.arange(6) % 2, x[:2], np.arange(2), num_classes=2, kind="text")


def test_the_registry_lists_every_paper_data_set():
    names = {"cifar10", "cifar100", "cinic10", "bhi", "yahoo_answers", "give_me_some_credit",
             "criteo", "tiny_imagenet", "breast_cancer", "digits", "mnist5k", "synthetic"}
    assert set(D.DATASETS) == names
    assert D.DATASETS["criteo"][:2] == ("tokens", ("manual_dir", "max_rows"))
    assert D.DATASETS["yahoo_answers"][1] == ("manual_dir", "max_train", "max_test")
    with pytest.raises(ConfigError, match="unknown value 'max_rows'.*manual_dir"):
        D.load("cifar10", max_rows=3)


def test_cli_data_prepare_and_list(dirs, capsys):
    manual, prepared = dirs
    with open(os.path.join(manual, "train.txt"), "w") as f:
        f.write("\n".join(criteo_lines()) + "\n")
    assert main(["data", "list", "--data-dir", prepared]) == 0
    out = capsys.readouterr().out
    for name in D.DATASETS:
        assert name in out
    assert "https://www.kaggle.com/c/GiveMeSomeCredit/data" in out
    code = main(["data", "prepare", "criteo", "--manual-dir", manual, "--data-dir", prepared,
                 "--option", "max_rows=15"])
    assert code == 0
    assert "criteo: 12 train / 3 test samples of 39 int32, 2 classes" in capsys.readouterr().out
    main(["data", "list", "--data-dir", prepared])
    line = [row for row in capsys.readouterr().out.splitlines() if row.startswith("criteo")]
    assert line[0].split()[1:5] == ["tokens", "yes", "12", "3"] and "max_rows=15" in line[0]
    assert main(["data", "prepare", "give_me_some_credit", "--manual-dir", manual,
                 "--data-dir", prepared]) == 2
    assert "ladsg-jax: error: manual_dir: give_me_some_credit: cs-training.csv not found" in \
        capsys.readouterr().err


@pytest.fixture
def local_server(tmp_path):
    """An HTTP server on localhost serving tmp_path/www, standing in for a public URL."""
    import functools
    import http.server
    import threading

    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield str(root), f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_public_file_missing_from_manual_dir_is_downloaded(dirs, local_server, monkeypatch):
    import dataclasses

    from ladsg_jax.data import catalog

    manual, prepared = dirs
    root, base = local_server
    make_cifar10(root)
    spec = catalog.SPECS["cifar10"]
    url = f"{base}/cifar-10-python.tar.gz"
    monkeypatch.setitem(catalog.SPECS, "cifar10", dataclasses.replace(
        spec, source=dataclasses.replace(spec.source, url=url)))
    info = D.prepare("cifar10", data_dir=prepared, manual_dir=manual)
    assert (info["num_train"], info["num_test"]) == (10, 3)
    assert info["source"].startswith(os.path.join(prepared, "downloads"))
    with socket.socket() as closed:                    # a port nobody listens on: offline
        closed.bind(("127.0.0.1", 0))
        offline = f"http://127.0.0.1:{closed.getsockname()[1]}/cifar-10-python.tar.gz"
    for url, reason in ((f"{base}/moved.tar.gz", "DownloadError"),
                        (offline, "ConnectionRefusedError")):
        monkeypatch.setitem(catalog.SPECS, "cifar10", dataclasses.replace(
            spec, source=dataclasses.replace(spec.source, url=url)))
        with pytest.raises(ConfigError, match=rf"manual_dir: cifar10: could not download "
                                              rf"{url} \({reason}.*; download "
                                              "cifar-10-python.tar.gz from https://www.cs.toronto"
                                              r".edu/~kriz/cifar.html and put it in "):
            D.prepare("cifar10", data_dir=prepared + "-2", manual_dir=manual)


# --- the presets train on what the builders make ------------------------------------------------

def test_the_token_presets_train_on_tiny_criteo_and_yahoo_files(dirs):
    import jax

    from ladsg_jax.presets import preset_config
    from ladsg_jax.vfl.train import make_train

    manual, prepared = dirs
    with open(os.path.join(manual, "train.txt"), "w") as f:
        f.write("\n".join(criteo_lines()) + "\n")
    make_yahoo(manual)
    for name, batch in (("criteo", 8), ("yahoo_answers", 3)):
        data = D.load(name, data_dir=prepared, manual_dir=manual)
        config = preset_config(name, epochs=2, batch_size=batch)
        result = jax.jit(make_train(config))(jax.random.key(0), data)
        assert np.isfinite(np.asarray(result.train_loss)).all()
        assert 0.0 <= float(result.final_test_accuracy) <= 1.0
        with pytest.raises(D.ConfigError, match="bottom: the data are token ids"):
            make_train(config.replace(bottom="mlp", vocab_size=None))(jax.random.key(0), data)
