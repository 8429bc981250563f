#!/usr/bin/env bash
# The README's learning ablation: one change per row against experiment=cpu_small on Fashion-MNIST,
# 500 steps, seeds 0 1 2, calibrated linear probe fit on 5,000 train images + 20-NN, scored on the 10k
# test images (bench/fashion_mnist_probe.py; raw-pixel and random-init probes are fitted once and kept
# in bench/results/probe_cache.json). Appends one JSON line per row to
# ${OUT:-bench/results/learning_ablation.jsonl}; rows run one after another.
#   bash bench/learning_ablation.sh               # every row, in this file's order
#   bash bench/learning_ablation.sh "EMA end 0.999" "cpu_small"   # these rows (exact names), in this order
#   BENCH_ARGS="--steps 2000 --seeds 0" bash bench/learning_ablation.sh recipe
# The rows were measured when cpu_small's EMA ramp still went from 0.99 to 1.0 and its rate decayed on a cosine
# to 1e-6, its predictor had 2 blocks in the official layout, its batch was 96 and its target the last block:
# every row starts from those (BASE), which a row's own overrides override.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-bench/results/learning_ablation.jsonl}
BASE=${BASE:-ema.gamma=0.99 ema.gamma_end=1.0 optim.min_lr=1e-6 model.predictor_depth=2 model.predictor_shared_context=false dataloader.batch_size=96 model.target_layers=1}
mkdir -p "$(dirname "$OUT")"
rows=(
  "cpu_small|"
  "context budget 0.25|mask.context_budget=0.25"
  "target centred|model.target_center=true"
  "context budget 0.25 + target centred|mask.context_budget=0.25 model.target_center=true"
  "context budget 0.35|mask.context_budget=0.35"
  "context budget 0.15|mask.context_budget=0.15"
  "weight decay 0.04 -> 0.4|optim.weight_decay=0.04 optim.weight_decay_end=0.4"
  "EMA end 0.999|ema.gamma_end=0.999"
  "target = last 2 blocks|model.target_layers=2"
  # Screens on top of the best single change (run with BENCH_ARGS="--seeds 0" first).
  "EMA end 0.999 + predictor depth 4|ema.gamma_end=0.999 model.predictor_depth=4"
  "EMA end 0.999 + last 2 blocks|ema.gamma_end=0.999 model.target_layers=2"
  "EMA end 0.999 + weight decay 0.04 -> 0.4|ema.gamma_end=0.999 optim.weight_decay=0.04 optim.weight_decay_end=0.4"
  "EMA end 0.999 + lr 5e-4|ema.gamma_end=0.999 optim.learning_rate=5e-4"
  "EMA end 0.999 + crops 0.3-1|ema.gamma_end=0.999 data.crop_scale=[0.3,1.0]"
  "EMA end 0.999 + context budget 0.25|ema.gamma_end=0.999 mask.context_budget=0.25"
  "EMA end 0.999 + smooth L1|ema.gamma_end=0.999 model.loss=smooth_l1"
  "EMA end 0.999 + pooled target 1|ema.gamma_end=0.999 model.global_weight=1.0"
  "EMA end 0.999 + pooled target 0.3|ema.gamma_end=0.999 model.global_weight=0.3"
  "EMA end 0.999 + pooled target 1 + SIGReg 0.02|ema.gamma_end=0.999 model.global_weight=1.0 model.sigreg_weight=0.02"
  # The student probes above its teacher in most rows: a teacher that follows it faster.
  "EMA 0.99 constant|ema.gamma_end=0.99"
  "EMA 0.99 constant + predictor depth 4|ema.gamma_end=0.99 model.predictor_depth=4"
  # More screens: a predictor too shallow to carry the task alone, and a higher rate once position
  # alone cannot predict the targets (the rate collapsed through a positional shortcut; collapse.md).
  "EMA end 0.999 + predictor depth 1|ema.gamma_end=0.999 model.predictor_depth=1"
  "EMA end 0.999 + target centred + lr 1e-3|ema.gamma_end=0.999 model.target_center=true optim.learning_rate=1e-3"
  "EMA end 0.999 + batch 48|ema.gamma_end=0.999 dataloader.batch_size=48"
  # Keep learning to the end of a short run (the cpu_small preset since; BENCH_ARGS="--steps 1000 --seeds 0").
  "EMA end 0.999 + constant lr after warm-up|ema.gamma_end=0.999 optim.min_lr=3e-4"
  "EMA 0.99 constant + constant lr after warm-up|ema.gamma_end=0.99 optim.min_lr=3e-4"
)
wanted=("$@")
[[ $# -gt 0 ]] || for row in "${rows[@]}"; do wanted+=("${row%%|*}"); done
for want in "${wanted[@]}"; do
  row=""
  for r in "${rows[@]}"; do [[ "${r%%|*}" == "$want" ]] && row=$r; done
  [[ -n "$row" ]] || { echo "no row named '$want'" >&2; exit 2; }
  name=${row%%|*}; overrides=${row#*|}
  echo "== $name: $overrides"
  # shellcheck disable=SC2086
  "${PYTHON:-python}" bench/fashion_mnist_probe.py $BASE $overrides --train_samples 5000 --cache bench/results/probe_cache.json ${BENCH_ARGS:-} --name "$name" --json "$OUT"
done
