"""Data builders read the original file formats; partitioning and input checks."""
import gzip

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_digits

from ladsg_jax import data as D
from ladsg_jax.data.partition import column_counts
from ladsg_jax.errors import ConfigError


def test_digits_builder_reads_the_sklearn_file_and_splits_by_columns(digits):
    assert digits.num_classes == 10 and digits.kind == "image"
    assert [x.shape for x in digits.train_x] == [(1437, 8, 4, 1), (1437, 8, 4, 1)]
    assert [x.shape for x in digits.test_x] == [(360, 8, 4, 1), (360, 8, 4, 1)]
    # Party 0 holds the left columns: gluing the slices back gives sklearn's images, scaled.
    images = np.concatenate(
        [np.concatenate(digits.train_x, axis=2), np.concatenate(digits.test_x, axis=2)])
    labels = np.concatenate([digits.train_y, digits.test_y])
    reference = load_digits()
    ref_images = reference.images[..., None] / 16.0
    order = np.lexsort(images.reshape(len(images), -1).T)
    ref_order = np.lexsort(ref_images.reshape(len(ref_images), -1).T)
    np.testing.assert_allclose(images[order], ref_images[ref_order], atol=1e-6)
    np.testing.assert_array_equal(labels[order], reference.target[ref_order])


def test_split_is_stratified_and_fixed(digits):
    counts = np.bincount(digits.test_y, minlength=10)
    assert counts.min() >= 35 and counts.max() <= 37   # 20% of ~180 per class
    again = D.load("digits")
    np.testing.assert_array_equal(again.train_y, digits.train_y)


def test_breast_cancer_is_standardized_on_the_training_split(breast_cancer):
    assert [x.shape for x in breast_cancer.train_x] == [(455, 15), (455, 15)]
    whole = np.concatenate(breast_cancer.train_x, axis=1)
    np.testing.assert_allclose(whole.mean(axis=0), 0.0, atol=1e-4)
    np.testing.assert_allclose(whole.std(axis=0), 1.0, atol=1e-3)
    ref = load_breast_cancer()
    assert np.bincount(np.concatenate([breast_cancer.train_y, breast_cancer.test_y])).tolist() \
        == np.bincount(ref.target).tolist()


def write_breast_cancer_csv(path, rows):
    with open(path, "w") as f:
        f.write(f"{len(rows)},30,malignant,benign\n")
        for features, label in rows:
            f.write(",".join(f"{v:g}" for v in features) + f",{label}\n")


def test_builder_reads_a_tiny_file_in_the_breast_cancer_format(tmp_path):
    rng = np.random.default_rng(0)
    rows = [(rng.normal(size=30), i % 2) for i in range(20)]
    src = tmp_path / "tiny.csv"
    write_breast_cancer_csv(src, rows)
    data = D.load("breast_cancer", num_parties=3, data_dir=str(tmp_path / "prepared"),
                  source=str(src))
    assert data.num_train == 16 and data.test_y.shape == (4,)
    assert [x.shape[1] for x in data.train_x] == [10, 10, 10]
    assert sorted(np.concatenate([data.train_y, data.test_y]).tolist()) == [0] * 10 + [1] * 10


def test_builder_reads_a_tiny_gzipped_digits_file(tmp_path):
    src = tmp_path / "digits.csv.gz"
    with gzip.open(src, "wt") as f:
        for i in range(30):
            pixels = [(i + j) % 17 for j in range(64)]
            f.write(",".join(map(str, pixels)) + f",{i % 3}\n")
    raw = D.read_raw("digits", data_dir=str(tmp_path / "prepared"), source=str(src))
    assert raw["train_x"].shape == (24, 8, 8, 1) and raw["test_x"].shape == (6, 8, 8, 1)
    first = raw["train_x"][np.argmin(raw["train_x"][:, 0, 0, 0])]
    assert first.max() <= 16 and set(np.unique(raw["train_y"])) == {0, 1, 2}


def test_a_prepared_copy_is_never_reused_for_another_file(tmp_path):
    rng = np.random.default_rng(1)
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    write_breast_cancer_csv(a, [(rng.normal(size=30), i % 2) for i in range(10)])
    write_breast_cancer_csv(b, [(rng.normal(size=30), i % 2) for i in range(12)])
    prepared = str(tmp_path / "prepared")
    D.read_raw("breast_cancer", data_dir=prepared, source=str(a))
    with pytest.raises(ConfigError, match="data_dir.*another file"):
        D.read_raw("breast_cancer", data_dir=prepared, source=str(b))


def test_malformed_and_missing_files_are_named(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("not,a,header\n1,2\n")
    with pytest.raises(ConfigError, match="source.*n_samples,n_features"):
        D.read_raw("breast_cancer", data_dir=str(tmp_path / "p1"), source=str(bad))
    with pytest.raises(ConfigError, match="source.*not found"):
        D.read_raw("digits", data_dir=str(tmp_path / "p2"), source=str(tmp_path / "nope.gz"))


def test_unknown_names_list_what_is_allowed():
    with pytest.raises(ConfigError, match="dataset: unknown value 'cifar'; allowed: bhi, "
                                          "breast_cancer, cifar10, cifar100, cinic10, criteo, "
                                          "digits, give_me_some_credit, mnist5k, synthetic, "
                                          "tiny_imagenet, yahoo_answers"):
        D.load("cifar")
    with pytest.raises(ConfigError, match="unknown value 'colour'.*num_classes"):
        D.load("synthetic", colour=3)


@pytest.mark.parametrize("width, parties, shares, expected", [
    (8, 2, None, [4, 4]),
    (30, 2, None, [15, 15]),
    (8, 2, (0.25, 0.75), [2, 6]),
    (8, 2, (3, 5), [3, 5]),
    (10, 3, None, [4, 3, 3]),
    (7, 2, (1.0, 1.0), [4, 3]),
])
def test_column_counts(width, parties, shares, expected):
    assert column_counts(width, parties, shares) == expected


def test_shares_that_do_not_fit_are_rejected():
    with pytest.raises(ConfigError, match="shares: 3 shares for 2 parties"):
        column_counts(8, 2, (1, 1, 1))
    with pytest.raises(ConfigError, match="shares: every share must be positive"):
        column_counts(8, 2, (0.0, 1.0))
    with pytest.raises(ConfigError, match="shares.*leave a party no column"):
        column_counts(8, 2, (0.01, 0.99))
    with pytest.raises(ConfigError, match="num_parties: 9 parties but only 8 columns"):
        D.load("digits", num_parties=9)


def test_image_shares_move_pixel_columns(digits):
    skewed = D.load("digits", num_parties=2, shares=(0.25, 0.75))
    assert skewed.train_x[0].shape == (1437, 8, 2, 1)
    np.testing.assert_array_equal(skewed.train_x[0], digits.train_x[0][:, :, :2])


def tiny_arrays(n=12, f=4):
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, f)), np.arange(n) % 3


def test_from_arrays_rejects_nan_and_infinite_features():
    x, y = tiny_arrays()
    x[5, 2] = np.nan
    with pytest.raises(ConfigError, match="train.features: NaN or infinite feature in sample 5"):
        D.from_arrays(x, y, x[:2] * 0, y[:2], num_classes=3)
    x, y = tiny_arrays()
    t = x[:3].copy()
    t[1, 0] = np.inf
    with pytest.raises(ConfigError, match="test.features: NaN or infinite feature in sample 1"):
        D.from_arrays(x, y, t, y[:3], num_classes=3)


def test_from_arrays_rejects_labels_out_of_range_and_mismatches():
    x, y = tiny_arrays()
    with pytest.raises(ConfigError, match=r"train.labels: label 3 out of range; allowed: 0..2"):
        D.from_arrays(x, np.where(y == 2, 3, y), x, y, num_classes=3)
    with pytest.raises(ConfigError, match="train.labels: label -1 out of range"):
        D.from_arrays(x, y - 1, x, y, num_classes=3)
    with pytest.raises(ConfigError, match="train: 12 feature rows but 11 labels"):
        D.from_arrays(x, y[:-1], x, y, num_classes=3)
    with pytest.raises(ConfigError, match="train.labels: labels must be integers"):
        D.from_arrays(x, y.astype(float), x, y, num_classes=3)
    with pytest.raises(ConfigError, match="train.features: image data needs 4-d arrays"):
        D.from_arrays(x, y, x, y, num_classes=3, kind="image")
    with pytest.raises(ConfigError, match="test.features: test sample shape"):
        D.from_arrays(x, y, x[:, :3], y, num_classes=3)


def test_synthetic_separation_controls_difficulty():
    from sklearn.linear_model import LogisticRegression

    def score(separation):
        raw = D.read_raw("synthetic", num_classes=4, num_features=6, separation=separation,
                         num_train=800, num_test=400, seed=3)
        clf = LogisticRegression(max_iter=500).fit(raw["train_x"], raw["train_y"])
        return clf.score(raw["test_x"], raw["test_y"])

    assert score(0.0) < 0.35          # chance is 0.25
    assert score(6.0) > 0.95
    a = D.read_raw("synthetic", seed=5)
    b = D.read_raw("synthetic", seed=5)
    np.testing.assert_array_equal(a["train_x"], b["train_x"])
