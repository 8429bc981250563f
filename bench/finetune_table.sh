#!/usr/bin/env bash
# Pretrained vs from-scratch fine-tuning on Fashion-MNIST at a fixed small budget (docs/evaluation.md):
# for each pretrained encoder given (one per pretraining seed, e.g. the teachers that
# bench/fashion_mnist_probe.py --out_dir DIR keeps as DIR/seedS/training_model_ddp.pth), fine-tune it and
# the same architecture from random init with fine-tuning seed S (its position in the list), on a fixed
# subset of 2,000 training images for 10 epochs, scored on 2,000 test images. Appends one JSON line per
# run to ${OUT:-bench/results/finetune_table.jsonl}; prints the top1= lines.
#   bash bench/finetune_table.sh runs/seed0/training_model_ddp.pth runs/seed1/training_model_ddp.pth ...
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-bench/results/finetune_table.jsonl}
ARGS=(--dataset_name fashion_mnist --device cpu --epochs 10 --max_train_samples 2000 --max_test_samples 2000
      --no_hflip --crop_scale 0.6 1.0)
seed=0
for ckpt in "$@"; do
  for mode in pretrained from-scratch; do
    extra=(); [[ $mode == from-scratch ]] && extra=(--from_scratch)
    work=$(mktemp -d)
    start=$(date +%s)
    top1=$("${PYTHON:-python}" -m simple_ijepa.finetune --ckpt_path "$ckpt" "${ARGS[@]}" --seed "$seed" \
           --out_dir "$work" "${extra[@]}" 2>/dev/null | tail -1 | sed 's/top1=//')
    echo "$mode seed $seed ($ckpt): top1=$top1"
    printf '{"ckpt": "%s", "mode": "%s", "seed": %d, "top1": %s, "seconds": %d, "args": "%s"}\n' \
      "$ckpt" "$mode" "$seed" "$top1" $(( $(date +%s) - start )) "${ARGS[*]}" >> "$OUT"
    rm -rf "$work"
  done
  seed=$((seed + 1))
done
