#!/usr/bin/env bash
# Our training step against the original implementation's (VittuD/simple-ijepa @ 403e8e9), in
# alternating rounds on the same machine: the seed, then each of our layouts, ROUNDS times
# (default 2). The default model at 96 px, batch 32, fp32, 2 threads. Logs to $OUT/log.txt and
# one JSON per run in $OUT (default bench/results/cpu_vs_seed/shared_context, the README's rounds).
#   SEED=/path/to/unpacked/seed SEED_BENCH=../shared/tools/seed_bench.py bash bench/cpu_vs_seed.sh
# Getting the seed: see the docstring of seed_bench.py (an unpacked snapshot + `pip install einops`).
# Run it on an idle machine (pause other jobs with kill -STOP): every figure drifts with the load.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${SEED:?set SEED to an unpacked snapshot of the original implementation}"
SEED_BENCH=${SEED_BENCH:-../shared/tools/seed_bench.py}
OUT=${OUT:-bench/results/cpu_vs_seed/shared_context}
ROUNDS=${ROUNDS:-2}
PY=${PYTHON:-python}
mkdir -p "$OUT"
ours=(
  "budget025|mask.context_budget=0.25"
  "budget025_shared|mask.context_budget=0.25 model.predictor_shared_context=true"
  "null|"
  "null_shared|model.predictor_shared_context=true"
)
for round in $(seq 1 "$ROUNDS"); do
  echo "== round $round seed" | tee -a "$OUT/log.txt"
  "$PY" "$SEED_BENCH" --seed-root "$SEED" --variants baseline --batch-sizes 32 --steps 8 --warmup 2 \
    --threads 2 2>&1 | tail -2 | tee -a "$OUT/log.txt" | tail -1 > "$OUT/seed_$round.json"
  for row in "${ours[@]}"; do
    name=${row%%|*}; overrides=${row#*|}
    echo "== round $round ours $name ($overrides)" | tee -a "$OUT/log.txt"
    # shellcheck disable=SC2086
    "$PY" bench/throughput.py dataloader.batch_size=32 $overrides --threads 2 --steps 8 --warmup 2 \
      --json "$OUT/ours_${name}_$round.json" 2>&1 | grep -v '^{' | tee -a "$OUT/log.txt"
  done
done
