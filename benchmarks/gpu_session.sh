#!/usr/bin/env bash
# One GPU session's evidence for spaces/wide.py, as two device calls back to back on the same warm machine:
#
#   (a) bash benchmarks/gpu_session.sh bench    data regeneration, then bench_gpu.py (about 3 minutes)
#   (b) bash benchmarks/gpu_session.sh search   the wide search end to end (8 minutes or less) and, beside it, the
#                                               hand-picked configuration under the final retrain's protocol
#
# On the device machine, after ../shared/tools/device-bundle here (its header says how), each call is
#   source .device/env.sh && bash benchmarks/gpu_session.sh bench|search
# Everything is logged under $OUT as it happens, so a call that runs past its limit still returns its logs.
# (b) regenerates the data if the machine was given back in between. WIDE_FLAGS replaces the search's GPU flags.
# SMOKE=1 tries the plumbing on CPU with tiny settings (no GPU flags, the quick space, 2-epoch hand pick).
set -uo pipefail
cd "$(dirname "$0")/.."
: "${OUT:?set OUT to the folder that comes back}"
DATA=${DATA:-/tmp/3d-mnist.h5}
PY=${PYTHON:-python3}
mkdir -p "$OUT"

regenerate() {
  [ -f "$DATA" ] || { start=$SECONDS; $PY -m search data --out "$DATA" 2>&1 | tee -a "$OUT/data.log"
                      echo "data: $((SECONDS - start)) s" | tee -a "$OUT/data.log"; }
}

gpu_log() {  # utilization and memory every second, for the whole call
  command -v nvidia-smi >/dev/null &&
    nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used --format=csv -l 1 > "$OUT/smi.csv" 2>/dev/null &
}

# The hand pick of the 2026-11-29 evidence: 4 residual 'same' blocks 32/64/128/256, BatchNorm, global average
# pooling, no dense layer, head dropout 0.5, occupancy input, batch 64, lr 1e-3, augment 0.75, cosine over 150.
HANDPICK='{"blocks": 4, "padding": "same", "filters": 32, "filter_growth": 2.0, "kernel_size": 3, "residual": true,
 "batchnorm": true, "dropout": 0.0, "head": "global_avg", "dense_units": 0, "head_dropout": 0.5,
 "input_mode": "occupancy", "batch_size": 64, "learning_rate": 0.001, "augment": 0.75, "schedule": "cosine",
 "epochs": 150, "seed": 0}'

case "${1:-}" in
  bench)
    gpu_log
    regenerate
    if [ -n "${SMOKE:-}" ]; then $PY benchmarks/bench_gpu.py --data "$DATA" --cpu-smoke; else
      KERAS_BACKEND=jax $PY benchmarks/bench_gpu.py --data "$DATA"; fi 2>&1 | tee "$OUT/bench_gpu.log"
    ;;
  search)
    gpu_log
    regenerate
    if [ -n "${SMOKE:-}" ]; then
      space=spaces/quick.py; flags="--samples 2 --max-epochs 3"; hand_epochs=2
    else
      space=spaces/wide.py; flags=${WIDE_FLAGS:---backend jax --gpus-per-trial 0.0625 --cpus-per-trial 1 --mps}
      hand_epochs=150
    fi
    # The hand pick beside the search, as in the evidence: trained on train + validation, tested once.
    $PY -m search train --params "$HANDPICK" --epochs "$hand_epochs" --val-fraction 0 --test --data "$DATA" \
      --out "$OUT/handpick" > "$OUT/handpick.log" 2>&1 &
    hand=$!
    # shellcheck disable=SC2086 # flags are words on purpose
    start=$SECONDS
    timeout 560 $PY -m search run "$space" --data "$DATA" $flags --results "$OUT/results" --name wide \
      > "$OUT/search.log" 2>&1
    echo "search exit code: $?, wall: $((SECONDS - start)) s" >> "$OUT/search.log"
    wait "$hand"; echo "hand pick exit code: $?" >> "$OUT/handpick.log"
    $PY benchmarks/session_summary.py "$OUT/results/wide" "$OUT/handpick" | tee "$OUT/summary.txt"
    ;;
  *)
    echo "usage: OUT=folder bash benchmarks/gpu_session.sh bench|search" >&2; exit 2
    ;;
esac
