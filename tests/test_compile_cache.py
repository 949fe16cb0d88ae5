"""The persistent compilation cache (`ladsg_jax.compile_cache`): on by default in the commands,
in `$LADSG_JAX_CACHE_DIR`; it changes no number (the same run cold, warm and with the cache off
gives identical results), a warm run loads its programs instead of compiling them (or says in
one line that it could not), and `ladsg-jax cache clear` empties the folder."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from ladsg_jax import compile_cache

TRAIN = ["train", "--dataset", "synthetic", "--data-option", "num_train=128",
         "--data-option", "num_test=64", "--epochs", "2", "--seeds", "2", "--no-progress",
         "--bottom-hidden", "8", "--top-hidden", "8"]


def cli(args, cache: str, tmp_path) -> subprocess.CompletedProcess:
    env = {**os.environ, compile_cache.ENV: cache}
    return subprocess.run([sys.executable, "-m", "ladsg_jax", *args], env=env,
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)


def trained(name: str, cache: str, tmp_path, *extra) -> tuple[dict, str]:
    done = cli([*TRAIN, "--runs-dir", str(tmp_path / "runs"), "--name", name, *extra], cache,
               tmp_path)
    assert done.returncode == 0, done.stderr
    return json.loads((tmp_path / "runs" / name / "result.json").read_text()), done.stderr


@pytest.mark.slow
def test_cold_warm_and_off_give_identical_numbers(tmp_path):
    cache = str(tmp_path / "xla")
    cold, _ = trained("cold", cache, tmp_path)
    warm, warm_err = trained("warm", cache, tmp_path)
    off, _ = trained("off", cache, tmp_path, "--no-compile-cache")
    for record in (warm, off):
        for key in ("test_accuracy", "train_loss", "train_accuracy"):
            np.testing.assert_array_equal(np.asarray(record["per_seed"][key]),
                                          np.asarray(cold["per_seed"][key]), err_msg=key)
    assert cold["timing"]["cache_hits"] == 0 and cold["timing"]["cache_entries_at_start"] == 0
    assert cold["timing"]["compilations"] == cold["timing"]["programs"] > 0
    assert compile_cache.entries(cache) >= cold["timing"]["programs"]
    assert warm["timing"]["programs"] == cold["timing"]["programs"]
    if warm["timing"]["cache_hits"] == 0:       # jax rejected the cached executables
        assert "none of this run's" in warm_err and "38445" in warm_err
    else:
        assert warm["timing"]["cache_hits"] == warm["timing"]["programs"]
        assert warm["timing"]["compilations"] == 0
    assert off["timing"]["cache_dir"] is None and off["timing"]["cache_requests"] == 0
    assert off["timing"]["compilations"] == cold["timing"]["programs"]


def test_cache_clear_and_info(tmp_path):
    cache = tmp_path / "xla"
    cache.mkdir()
    for i in range(3):
        (cache / f"jit_f-{i}-cache").write_bytes(b"x" * 1000)
    done = cli(["cache", "info"], str(cache), tmp_path)
    assert done.returncode == 0 and "3 cached programs" in done.stdout
    done = cli(["cache", "clear"], str(cache), tmp_path)
    assert done.returncode == 0 and "3 cached programs" in done.stdout
    assert not cache.exists()
    assert cli(["cache", "frobnicate"], str(cache), tmp_path).returncode == 2


def test_the_cache_folder_and_its_settings(monkeypatch, tmp_path):
    monkeypatch.delenv(compile_cache.ENV, raising=False)
    assert compile_cache.cache_dir().endswith(os.path.join(".cache", "ladsg_jax", "xla"))
    assert compile_cache.cache_dir({compile_cache.ENV: "/x/y"}) == "/x/y"
    assert compile_cache.entries(str(tmp_path / "missing")) == 0


def test_a_warm_cache_that_served_nothing_is_said_in_one_line():
    timing = {"cache_entries_at_start": 5, "cache_requests": 4, "cache_hits": 0,
              "cache_dir": "/c"}
    line = compile_cache.no_hit_line(timing)
    assert "5 programs were cached in /c" in line and "none of this run's 4" in line
    assert "\n" not in line
    assert compile_cache.no_hit_line({**timing, "cache_hits": 1}) is None
    assert compile_cache.no_hit_line({**timing, "cache_entries_at_start": 0}) is None


def test_prune_drops_the_least_recently_used_programs_down_to_the_bound(tmp_path):
    """Recency is the later of a file's access and modification times: a program written long
    ago but read lately stays; JAX's recency file goes with its program."""
    times = {"a": (100, 100), "b": (200, 200), "c": (900, 300), "d": (400, 400),
             "e": (500, 500)}                                  # name: (atime, mtime)
    for name, stamp in times.items():
        program = tmp_path / f"jit_{name}-cache"
        program.write_bytes(b"x" * 1000)
        os.utime(program, stamp)
    (tmp_path / "jit_a-atime").write_bytes(b"12345678")
    (tmp_path / "other.txt").write_bytes(b"y" * 5000)          # not a program: never counted
    assert compile_cache.prune(str(tmp_path), 2500) == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["jit_c-cache", "jit_e-cache",
                                                          "other.txt"]
    assert compile_cache.prune(str(tmp_path), 2500) == 0
    assert compile_cache.prune(str(tmp_path), 0) == 2 and compile_cache.entries(str(tmp_path)) == 0
