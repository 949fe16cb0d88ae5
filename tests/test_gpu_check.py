"""`experiments/gpu_check.sh`, the GPU run of the paper's size (issue 36): it runs on a machine
that has jax, flax, optax and scikit-learn but neither tensorflow-datasets nor dp-accounting,
so the paths it takes must not import them; bad arguments stop it before anything runs."""
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "experiments", "gpu_check.sh")

WITHOUT = """
import sys
for name in ("tensorflow_datasets", "dp_accounting"):
    sys.modules[name] = None                    # importing either now raises ImportError
sys.path.insert(0, {experiments!r})
import bench_sweep, epoch_time                  # noqa: E401,F401 - the script's benchmarks
from ladsg_jax.app.cli import main
sys.exit(main(["attack", "--dataset", "synthetic", "--data-option", "num_train=64",
               "--data-option", "num_test=32", "--attack", "direct_argmin", "--epochs", "1",
               "--seeds", "1", "--defense", "ladsg", "--defense.teacher_epochs", "1",
               "--runs-dir", {runs!r}, "--no-progress"]))
"""


def test_the_script_paths_need_neither_tensorflow_datasets_nor_dp_accounting(tmp_path):
    code = WITHOUT.format(experiments=os.path.join(ROOT, "experiments"),
                          runs=str(tmp_path / "runs"))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "direct_argmin" in done.stdout
    assert any(p.name == "result.json" for p in (tmp_path / "runs").rglob("*"))


def test_an_unknown_argument_is_one_line_and_exit_2(tmp_path):
    done = subprocess.run(["bash", SCRIPT, "--size", "huge"], capture_output=True, text=True,
                          timeout=60, cwd=tmp_path)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip() == ("gpu_check.sh: unknown argument '--size'; allowed: --smoke, "
                                   "--out DIR")
