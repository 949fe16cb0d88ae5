import os
import tempfile

import jax
import pytest

from ladsg_jax import compile_cache

# Tests compare gradients with hand-assembled ones; on GPUs JAX's default float32 matmul runs
# at reduced (TF32-like) precision, so the suite asks for full precision everywhere.
jax.config.update("jax_default_matmul_precision", "highest")

# Prepared data sets go to a fresh directory for the test session, never the user's cache.
_DATA_DIR = tempfile.mkdtemp(prefix="ladsg-test-data-")
os.environ["LADSG_DATA_DIR"] = _DATA_DIR

# Compiled programs go to a persistent cache of the suite's own (never the user's), shared by
# the xdist workers and the commands the tests start, so a second run compiles almost nothing.
# $LADSG_JAX_TEST_CACHE_DIR moves it; LADSG_JAX_TEST_CACHE=off runs the suite without it.
_CACHE_DIR = os.environ.get("LADSG_JAX_TEST_CACHE_DIR") or os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), ".pytest_cache", "ladsg_jax_xla")
os.environ[compile_cache.ENV] = _CACHE_DIR
if os.environ.get("LADSG_JAX_TEST_CACHE", "on") != "off":
    compile_cache.enable(_CACHE_DIR)


@pytest.fixture(scope="session")
def data_dir() -> str:
    return _DATA_DIR


@pytest.fixture(scope="session")
def digits():
    from ladsg_jax.data import load
    return load("digits", num_parties=2)


@pytest.fixture(scope="session")
def breast_cancer():
    from ladsg_jax.data import load
    return load("breast_cancer", num_parties=2)


@pytest.fixture(scope="session")
def synthetic():
    from ladsg_jax.data import load
    return load("synthetic", num_parties=2, num_classes=3, num_features=8, separation=3.0,
                num_train=256, num_test=128)
