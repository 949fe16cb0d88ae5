#!/usr/bin/env bash
# The paper's size on a GPU, as one script (issue 36): about 8 minutes on one GPU, or a few on
# 2 CPU cores with --smoke (the same steps, tiny sizes: it shows the script works).
#
#   experiments/gpu_check.sh [--smoke] [--out DIR]
#
# Steps, each a JSON file under DIR (default experiments/results/gpu_check_<backend>_<size>_<date>):
#   1. sweep.jsonl      the vmapped grid (experiments/bench_sweep.py): LADSG's rho at 5 values
#                       x 32 seeds on digits as one compiled program, against one setting with
#                       one seed (compilation included, median of 3).
#   2. epoch.jsonl      one CIFAR-shaped ResNet-20 epoch (50,000 generated 32x32x3 images,
#                       experiments/epoch_time.py) under no defense and under LADSG's default:
#                       the epoch apart from LADSG's teacher (the paper's < 3% overhead claim).
#   3. effectiveness/   none against LADSG's default under the paper's attacks (direct argmin,
#                       passive and active model completion), `ladsg-jax attack` on generated
#                       CIFAR-sized data: `synthetic`, 3,072 features (32x32x3 flattened),
#                       10 Gaussian classes, 50,000 training samples, 5 seeds.
#   log.txt             every step's output and its seconds.
#
# It runs on the GPU machine as that machine is: its own python3 (env PYTHON to choose another)
# with jax, flax, optax, chex, orbax, scikit-learn and tqdm; tensorflow-datasets and
# dp-accounting are not needed (the library imports them only where they are used). No data is
# downloaded: everything is generated or ships with scikit-learn. A step that fails or outlasts
# its time limit is logged and the script goes on; the exit status is the number of such steps.
set -uo pipefail

SIZE=gpu
OUT=""
while [ $# -gt 0 ]; do
    case "$1" in
        --smoke) SIZE=smoke ;;
        --out) OUT="${2:?--out needs a folder}"; shift ;;
        -h|--help) sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "gpu_check.sh: unknown argument '$1'; allowed: --smoke, --out DIR" >&2; exit 2 ;;
    esac
    shift
done

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
case "$OUT" in ""|/*) ;; *) OUT="$PWD/$OUT" ;; esac
cd "$ROOT"                      # the log and the results name paths relative to the checkout
PY="${PYTHON:-python3}"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
BACKEND="$("$PY" -c 'import jax; print(jax.default_backend())')" || {
    echo "gpu_check.sh: $PY cannot import jax" >&2; exit 2; }
OUT="${OUT:-experiments/results/gpu_check_${BACKEND}_${SIZE}_$(date -u +%Y-%m-%d)}"
mkdir -p "$OUT/effectiveness"
LOG="$OUT/log.txt"

if [ "$SIZE" = gpu ]; then
    SWEEP=(--seeds 32 --repeats 3)
    EPOCH=(--repeats 3)
    DATA=(num_features=3072 num_classes=10 num_train=50000 num_test=10000 separation=3)
    ATTACK=(--seeds 5 --bottom-hidden 256 128)
    LIMITS=(150 90 150 150)
else
    SWEEP=(--seeds 2 --repeats 1 --epochs 1 --values 0.1,0.9)
    EPOCH=(--num-train 256 --repeats 1)
    DATA=(num_features=48 num_classes=4 num_train=256 num_test=128 separation=3)
    ATTACK=(--seeds 2 --epochs 2 --mc-steps 20)
    LIMITS=(300 300 300 300)
fi
OPTIONS=()
for option in "${DATA[@]}"; do OPTIONS+=(--data-option "$option"); done

FAILED=0
step() {        # step NAME LIMIT_S COMMAND...: runs it, logs its output and seconds
    local name="$1" limit="$2"; shift 2
    local start=$SECONDS status
    echo "== $name (limit ${limit} s): $*" | tee -a "$LOG"
    timeout "$limit" "$@" >>"$LOG" 2>&1
    status=$?
    echo "== $name: exit $status after $((SECONDS - start)) s" | tee -a "$LOG"
    [ "$status" -eq 0 ] || FAILED=$((FAILED + 1))
}

echo "gpu_check.sh $SIZE on $BACKEND: $("$PY" -c 'import jax; print(jax.devices())'), $(date -u)" \
    | tee "$LOG"
step sweep "${LIMITS[0]}" "$PY" experiments/bench_sweep.py --dataset digits \
    --defense ladsg --field rho --skip-separate "${SWEEP[@]}" --out "$OUT/sweep.jsonl"
for defense in none ladsg; do
    step "epoch $defense" "${LIMITS[1]}" "$PY" experiments/epoch_time.py \
        --defense "$defense" "${EPOCH[@]}" --out "$OUT/epoch.jsonl"
done
step effectiveness "${LIMITS[2]}" "$PY" -m ladsg_jax attack --dataset synthetic "${OPTIONS[@]}" \
    --attack direct_argmin passive_mc active_mc "${ATTACK[@]}" --defense none \
    --runs-dir "$OUT/effectiveness" --name none --no-progress
step "effectiveness ladsg" "${LIMITS[3]}" "$PY" -m ladsg_jax attack --dataset synthetic \
    "${OPTIONS[@]}" --attack direct_argmin passive_mc active_mc "${ATTACK[@]}" --defense ladsg \
    --runs-dir "$OUT/effectiveness" --name ladsg --no-progress
echo "gpu_check.sh: $FAILED step(s) failed; results in $OUT" | tee -a "$LOG"
exit "$FAILED"
