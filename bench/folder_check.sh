#!/usr/bin/env bash
# A new user's folder run, over seeds: pretrain `experiment=${PRESET:-cpu_small}` on a folder of class
# folders with the README's command, then probe with `python -m simple_ijepa.evaluate` (teacher vs random
# init, seeded as the run). Appends one JSON line per seed to ${OUT:-bench/results/folder_check.jsonl}
# (probes, training seconds, last logged loss / pooled std / RankMe); the runs' output goes to OUT's .log.
# Extra arguments are training overrides.
#   FOLDER=/path/to/classes bash bench/folder_check.sh                    # seeds 0-2
#   FOLDER=... SEEDS="0" NAME="EMA 0.995" bash bench/folder_check.sh ema.gamma=0.995 ema.gamma_end=0.995
set -euo pipefail
cd "$(dirname "$0")/.."
: "${FOLDER:?FOLDER=a folder of class folders}"
OUT=${OUT:-bench/results/folder_check.jsonl}
PY=${PYTHON:-python}
for seed in ${SEEDS:-0 1 2}; do
  work=$(mktemp -d)
  start=$(date +%s)
  "$PY" run_ddp.py experiment="${PRESET:-cpu_small}" seed="$seed" data.dataset_name=folder data.dataset_path="$FOLDER" \
    logging.save_model_dir="$work" hydra.run.dir="$work/hydra" "$@" >> "${OUT%.jsonl}.log" 2>&1
  seconds=$(( $(date +%s) - start ))
  "$PY" -m simple_ijepa.evaluate --ckpt_path "$work/training_model_ddp.pth" --dataset_name folder \
    --dataset_path "$FOLDER" --seed "$seed" > "$work/eval.txt" 2>> "${OUT%.jsonl}.log"
  cat "$work/eval.txt" >> "${OUT%.jsonl}.log"
  "$PY" - "$work" "$seed" "$seconds" "${NAME:-${PRESET:-cpu_small} $*}" "$*" "$FOLDER" >> "$OUT" <<'EOF'
import json, sys
work, seed, seconds, name, overrides, folder = sys.argv[1:]
rows = {line[:24].strip(): line[24:].split() for line in open(f"{work}/eval.txt") if line[24:].split()}
teacher = next(v for k, v in rows.items() if k in ("pretrained", "EMA teacher"))
random = next(v for k, v in rows.items() if k.startswith("random init"))
last = [json.loads(line) for line in open(f"{work}/metrics.jsonl")][-1]
print(json.dumps({"name": name, "overrides": overrides, "folder": folder, "seed": int(seed), "step": last.get("step"),
                  "train_seconds": int(seconds), "teacher linear": float(teacher[0]), "teacher knn": float(teacher[1]),
                  "random init linear": float(random[0]), "random init knn": float(random[1]),
                  "final loss": last.get("loss"), "teacher_pooled_std": last.get("teacher_pooled_std"),
                  "teacher_rankme": last.get("teacher_rankme")}))
EOF
  tail -n 1 "$OUT"
  rm -rf "$work"
done
