#!/usr/bin/env bash
# The README's Gated I-JEPA table: experiment=cpu_small variant=gated on Fashion-MNIST, 500 steps,
# seeds 0 1 2 per row (about 4 min per seed on the 2-core development CPU). Appends one JSON line per
# row to ${OUT:-bench/results/gated_batch_hold.jsonl}; rows run one after another.
#   bash bench/gated_table.sh            # every row
#   bash bench/gated_table.sh defaults   # rows whose name matches
#   BENCH_ARGS="--train_samples 5000" bash bench/gated_table.sh   # extra bench/gated_fashion_mnist.py options
# Measured when cpu_small's EMA ramp still went from 0.99 to 1.0, its rate decayed on a cosine to 1e-6, its predictor
# had 2 blocks, its batch was 96, its target the last block and the bench ran 500 steps: all six are kept here.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-bench/results/gated_batch_hold.jsonl}
mkdir -p "$(dirname "$OUT")"
rows=(
  "defaults|"
  "block 1 attn|model.gate_layer_index=1 model.gate_location=attn"
  "block 1 post|model.gate_layer_index=1 model.gate_location=post"
  "block 1 skip|model.gate_layer_index=1 model.gate_location=skip"
  "lambda_gates=0.1|model.lambda_gates=0.1"
  "lambda_gates=10|model.lambda_gates=10"
  "seed penalty (gate_target_open=null)|model.gate_target_open=null"
)
for row in "${rows[@]}"; do
  name=${row%%|*}; overrides=${row#*|}
  if [[ $# -gt 0 && "$name" != *"$1"* ]]; then continue; fi
  echo "== $name: $overrides"
  # shellcheck disable=SC2086
  "${PYTHON:-python}" bench/gated_fashion_mnist.py ema.gamma=0.99 ema.gamma_end=1.0 optim.min_lr=1e-6 model.predictor_depth=2 dataloader.batch_size=96 model.target_layers=1 $overrides ${BENCH_ARGS:-} --name "$name" --json "$OUT"
done
