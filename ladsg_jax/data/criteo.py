"""Reader of the Criteo display advertising challenge (click-through rate) as hashed field ids.

Source: Criteo Labs' Kaggle Display Advertising Challenge (2014), `dac.tar.gz` or its
`train.txt` (a manual download; Criteo's own page is gone, a copy is
https://www.kaggle.com/datasets/mrkmakr/criteo-dataset). Each line is tab-separated: the label
(clicked 0/1), 13 integer fields I1..I13 and 26 categorical fields C1..C26 (hex hashes); an
empty field is missing. The file is 11 GB, so it is read as a stream and only the first
`max_rows` lines are kept, then split 80/20 (stratified, seed 0).

Every field becomes one id by the hashing trick: the token `I{j}:{bucket}` with
bucket = floor(log(x)²) for x > 2, else x itself (the bucketing of the challenge's winning
entry), or `C{j}:{value}`, a missing field giving `I{j}:NA` / `C{j}:NA`; its id is
crc32(token as UTF-8) mod (2¹³ − 1) + 1, in [1, 2¹³), 0 staying free for padding. A sample is
int32 (39,) in file order, so splitting the columns in two gives party 0 the 13 integer and the
first 7 categorical fields and party 1 the other 19.
"""
from __future__ import annotations

import io
import math
import posixpath
import zlib

import numpy as np

from ladsg_jax.data.archives import iter_members, reading
from ladsg_jax.data.splits import split_arrays
from ladsg_jax.errors import require

NUM_INTEGER, NUM_CATEGORICAL = 13, 26
NUM_FIELDS = NUM_INTEGER + NUM_CATEGORICAL
VOCAB_SIZE = 2 ** 13
DEFAULT_MAX_ROWS = 120_000
CACHE_SIZE = 1 << 20       # field values whose ids are remembered while reading


def field_token(column: int, value: str) -> str:
    """The token of field `column` (0-based over the 39 fields) holding `value` (text)."""
    if column >= NUM_INTEGER:
        return f"C{column - NUM_INTEGER + 1}:{value or 'NA'}"
    if not value:
        return f"I{column + 1}:NA"
    x = int(value)
    return f"I{column + 1}:{math.floor(math.log(x) ** 2) if x > 2 else x}"


def token_id(token: str) -> int:
    """The hashed id of a token: crc32 mod (VOCAB_SIZE − 1), plus 1."""
    return zlib.crc32(token.encode("utf-8")) % (VOCAB_SIZE - 1) + 1


def _read_lines(f, where: str, max_rows: int) -> tuple[np.ndarray, np.ndarray]:
    ids, labels, cache = [], [], {}
    for number, line in enumerate(io.TextIOWrapper(f, encoding="utf-8", newline="\n"), 1):
        if len(labels) >= max_rows:
            break
        fields = line.rstrip("\r\n").split("\t")
        require(len(fields) == NUM_FIELDS + 1, "source",
                f"{where} line {number}: {len(fields)} tab-separated fields; a line holds the "
                f"label, {NUM_INTEGER} integer and {NUM_CATEGORICAL} categorical fields")
        require(fields[0] in ("0", "1"), "source",
                f"{where} line {number}: label {fields[0]!r}; allowed: 0, 1")
        row = []
        for column, value in enumerate(fields[1:]):
            key = (column, value)
            if key not in cache:
                if len(cache) >= CACHE_SIZE:
                    cache.clear()
                require(column >= NUM_INTEGER or not value or value.lstrip("-").isdigit(),
                        "source", f"{where} line {number}: I{column + 1} is {value!r}, not an "
                                  "integer")
                cache[key] = token_id(field_token(column, value))
            row.append(cache[key])
        ids.append(row)
        labels.append(int(fields[0]))
    require(bool(labels), "source", f"{where}: no lines")
    return np.asarray(ids, dtype=np.int32), np.asarray(labels, dtype=np.int64)


def read_criteo_tsv(path: str, max_rows: int = DEFAULT_MAX_ROWS) -> dict:
    """Criteo from `train.txt` or `dac.tar.gz`: the first `max_rows` lines as hashed ids."""
    found = None
    with reading(path):
        for member, f in iter_members(path):
            if member == posixpath.basename(path) or posixpath.basename(member) == "train.txt":
                found = _read_lines(f, f"{path}:{member}", max_rows)
                break
    require(found is not None, "source", f"{path}: no train.txt inside; expected dac.tar.gz")
    return split_arrays(*found)
