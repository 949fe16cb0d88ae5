"""Reading the members of an original distribution file: a tarball, a zip, a folder or one file.

The readers of the paper's data sets (`images`, `bhi`, `text`, `tabular`, `criteo`) walk the
members once, in the archive's own order: a gzipped tarball is read as a stream (never
unpacked to disk, never read twice), so each member's file object is valid only until the next
one is yielded. The kind of archive is told from its content, not its name, so a file TFDS
downloaded under a mangled name reads the same.
"""
from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import os
import tarfile
import zipfile
import zlib
from typing import BinaryIO, Iterator

from ladsg_jax.errors import ConfigError

CHUNK = 1 << 20


def _walk_folder(path: str) -> Iterator[tuple[str, str]]:
    """(relative POSIX name, full path) of every file below `path`, in sorted order."""
    for root, dirs, files in os.walk(path):
        dirs.sort()
        rel = os.path.relpath(root, path)
        for name in sorted(files):
            member = name if rel == "." else f"{rel}/{name}".replace(os.sep, "/")
            yield member, os.path.join(root, name)


class _ForwardOnly(io.RawIOBase):
    """A member of a streamed tarball as a raw stream that `io.TextIOWrapper` accepts."""

    def __init__(self, member):
        super().__init__()
        self._member = member

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self._member.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)


def iter_members(path: str) -> Iterator[tuple[str, BinaryIO]]:
    """Yields (member name, binary file object) for every regular file inside `path`.

    Names use '/' and lose a leading './'. A plain file yields itself under its base name.
    Walk it inside `reading(path)`, so that a corrupt archive is reported by name.
    """
    if os.path.isdir(path):
        for member, full in _walk_folder(path):
            with open(full, "rb") as f:
                yield member, f
    elif zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if not info.is_dir():
                    with archive.open(info) as f:
                        yield info.filename.removeprefix("./"), f
    elif tarfile.is_tarfile(path):
        with tarfile.open(path, "r|*") as archive:
            for info in archive:
                if info.isfile():
                    stream = io.BufferedReader(_ForwardOnly(archive.extractfile(info)), CHUNK)
                    yield info.name.removeprefix("./"), stream
    else:
        with open(path, "rb") as f:
            yield os.path.basename(path), f


@contextlib.contextmanager
def reading(path: str):
    """Turns the errors of a truncated or corrupt archive, or of a text member that is not UTF-8
    or not CSV, into `ConfigError('source', ...)` naming the file."""
    try:
        yield
    except (tarfile.TarError, zipfile.BadZipFile, zlib.error, EOFError, OSError,
            UnicodeDecodeError, csv.Error) as err:
        raise ConfigError("source", f"{path}: unreadable ({type(err).__name__}: {err})") from None


def file_digest(path: str) -> str:
    """SHA-256 of a file read in chunks; of a folder, of its files' relative names and sizes."""
    digest = hashlib.sha256()
    if os.path.isdir(path):
        for member, full in _walk_folder(path):
            digest.update(f"{member}\0{os.path.getsize(full)}\n".encode())
        return digest.hexdigest()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()
