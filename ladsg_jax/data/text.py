"""Reader of Yahoo! Answers topic classification as token ids for two parties.

Source: Zhang, Zhao & LeCun 2015, "Character-level convolutional networks for text
classification", `yahoo_answers_csv.tgz` (public mirror
https://s3.amazonaws.com/fast-ai-nlp/yahoo_answers_csv.tgz): `train.csv` (1,400,000 rows) and
`test.csv` (60,000 rows) of `"class","title","content","answer"`, class 1..10, line breaks
written as the two characters `\\n`.

Text is lower-cased and cut into words by the regular expression `[a-z0-9']+`. The vocabulary
is the `VOCAB_WORDS` most frequent words of the training rows read (ties broken by the word);
id 0 is padding, 1 an unknown word, 2.. the vocabulary in that order, so `VOCAB_SIZE` ids in
all. Party 0's segment is the first `SEGMENT` words of title and content, party 1's the first
`SEGMENT` words of the answer, each padded with 0: int32 rows of 2 × `SEGMENT` ids, labels the
class minus 1. The vocabulary is written as `vocab.txt` next to the prepared data, one word a
line, line i (from 0) holding id i (`<pad>`, `<unk>`, then the words).
"""
from __future__ import annotations

import csv
import io
import posixpath
import re
from array import array
from collections import Counter

import numpy as np

from ladsg_jax.data.archives import iter_members, reading
from ladsg_jax.errors import require

VOCAB_WORDS = 20_000
PAD, UNKNOWN = 0, 1
VOCAB_SIZE = VOCAB_WORDS + 2
SEGMENT = 64
NUM_CLASSES = 10
WORD = re.compile(r"[a-z0-9']+")


def words(text: str) -> list[str]:
    """The words of a Yahoo! Answers field: `\\n` escapes as spaces, lower case, `[a-z0-9']+`."""
    return WORD.findall(text.replace("\\n", " ").lower())


def _read_rows(f, where: str, limit: int | None, table: dict, counts: Counter | None):
    """Labels and (rows, 2·SEGMENT) provisional word ids of one CSV; counts words if asked.

    Words get provisional ids in order of first appearance (`table`), so that only numbers,
    not strings, are kept per row while the vocabulary is not yet known.
    """
    labels, ids = [], array("i")
    reader = csv.reader(io.TextIOWrapper(f, encoding="utf-8", newline=""))
    for number, fields in enumerate(reader, 1):
        if limit is not None and len(labels) >= limit:
            break
        require(len(fields) == 4, "source", f"{where} row {number}: {len(fields)} fields; "
                                            "rows are class,title,content,answer")
        require(fields[0].strip().isdigit() and 1 <= int(fields[0]) <= NUM_CLASSES,
                "source", f"{where} row {number}: class {fields[0]!r}; allowed: "
                          f"1..{NUM_CLASSES}")
        question, answer = words(fields[1] + " " + fields[2]), words(fields[3])
        if counts is not None:
            counts.update(question)
            counts.update(answer)
        for segment in (question[:SEGMENT], answer[:SEGMENT]):
            ids.extend([table.setdefault(w, len(table) + 1) for w in segment])
            ids.extend([PAD] * (SEGMENT - len(segment)))
        labels.append(int(fields[0]) - 1)
    require(bool(labels), "source", f"{where}: no rows")
    rows = np.frombuffer(ids, dtype=np.int32).reshape(-1, 2 * SEGMENT)
    return np.asarray(labels, dtype=np.int64), rows


def vocabulary(counts: Counter) -> list[str]:
    """The `VOCAB_WORDS` most frequent words, most frequent first, ties in word order."""
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return [word for word, _ in ranked[:VOCAB_WORDS]]


def read_yahoo_tgz(path: str, max_train: int | None = None, max_test: int | None = None) -> dict:
    """Yahoo! Answers from `yahoo_answers_csv.tgz`: the first `max_train`/`max_test` rows (None:
    all), as token ids; also returns the vocabulary as the text of `vocab.txt`."""
    table, counts, read = {}, Counter(), {}
    limits = {"train.csv": max_train, "test.csv": max_test}
    with reading(path):
        for member, f in iter_members(path):
            name = posixpath.basename(member)
            if name in limits and name not in read:
                read[name] = _read_rows(f, f"{path}:{member}", limits[name], table,
                                        counts if name == "train.csv" else None)
    for name in limits:
        require(name in read, "source",
                f"{path}: no {name} inside; expected yahoo_answers_csv.tgz")
    vocab = vocabulary(counts)
    final = np.full(len(table) + 1, UNKNOWN, dtype=np.int32)     # provisional id -> final id
    final[PAD] = PAD
    for rank, word in enumerate(vocab):
        final[table[word]] = rank + 2
    out = {"files": {"vocab.txt": "\n".join(["<pad>", "<unk>", *vocab]) + "\n"}}
    for split, name in (("train", "train.csv"), ("test", "test.csv")):
        labels, rows = read[name]
        out[f"{split}_x"], out[f"{split}_y"] = final[rows], labels
    return out
