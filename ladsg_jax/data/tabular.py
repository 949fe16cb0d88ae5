"""Reader of Give Me Some Credit (Kaggle 2011 credit scoring competition).

Source: `cs-training.csv` of https://www.kaggle.com/c/GiveMeSomeCredit/data (a manual download:
sign in and accept the competition's rules). Its header is `HEADER`: a row index, the label
`SeriousDlqin2yrs` (serious delinquency within two years, 0/1), then 10 numeric features; `NA`
marks a missing value (MonthlyIncome and NumberOfDependents). The competition's test file has
no labels, so the 150,000 labelled rows are split 80/20 (stratified, seed 0). A missing value is
replaced at prepare time by the median of its column over the training split, for both splits.
"""
from __future__ import annotations

import csv
import io

import numpy as np

from ladsg_jax.data.archives import reading
from ladsg_jax.data.splits import split_arrays
from ladsg_jax.errors import ConfigError, require

FEATURES = ("RevolvingUtilizationOfUnsecuredLines", "age",
            "NumberOfTime30-59DaysPastDueNotWorse", "DebtRatio", "MonthlyIncome",
            "NumberOfOpenCreditLines", "NumberOfTimes90DaysLate", "NumberRealEstateLoansOrLines",
            "NumberOfTime60-89DaysPastDueNotWorse", "NumberOfDependents")
HEADER = ("", "SeriousDlqin2yrs", *FEATURES)


def _number(text: str, where: str) -> float:
    if text.strip() in ("NA", ""):
        return np.nan
    try:
        return float(text)
    except ValueError:
        raise ConfigError("source", f"{where}: {text!r} is not a number or NA") from None


def _read_gmsc_rows(f, where: str) -> tuple[np.ndarray, np.ndarray]:
    reader = csv.reader(io.TextIOWrapper(f, encoding="utf-8-sig", newline=""))
    header = tuple(next(reader, ()))
    require(header == HEADER, "source",
            f"{where}: header {','.join(header)!r}; cs-training.csv starts with "
            f"{','.join(HEADER)!r}")
    x, y = [], []
    for number, fields in enumerate(reader, 2):
        if not fields:
            continue
        require(len(fields) == len(HEADER), "source",
                f"{where} line {number}: {len(fields)} fields; rows hold {len(HEADER)}")
        require(fields[1] in ("0", "1"), "source",
                f"{where} line {number}: SeriousDlqin2yrs {fields[1]!r}; allowed: 0, 1")
        y.append(int(fields[1]))
        x.append([_number(v, f"{where} line {number}") for v in fields[2:]])
    require(bool(y), "source", f"{where}: no rows")
    return np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.int64)


def read_gmsc_csv(path: str) -> dict:
    """Give Me Some Credit from `cs-training.csv`: stratified 80/20, NA set to the train median."""
    with reading(path), open(path, "rb") as f:
        x, y = _read_gmsc_rows(f, path)
    out = split_arrays(x, y)
    empty = [FEATURES[j] for j in np.flatnonzero(np.isnan(out["train_x"]).all(axis=0))]
    require(not empty, "source", f"{path}: no training value in column(s) {', '.join(empty)}")
    median = np.nanmedian(out["train_x"], axis=0)
    for split in ("train", "test"):
        x = out[f"{split}_x"]
        out[f"{split}_x"] = np.where(np.isnan(x), median, x).astype(np.float32)
    return out
