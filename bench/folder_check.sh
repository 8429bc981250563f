#!/usr/bin/env bash
# A new user's folder run, over seeds: pretrain `experiment=${PRESET:-cpu_small}` on a folder of class
# folders with the README's command, then probe with `python -m simple_ijepa.evaluate` (teacher vs random
# init, seeded as the run). Appends one JSON line per seed to ${OUT:-bench/results/folder_check.jsonl}
# (probes of the teacher and, with STUDENT=1, of the student; training seconds, last logged loss / pooled
# std / RankMe); the runs' output goes to OUT's .log.
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
    logging.save_model_dir="$work" "$@" >> "${OUT%.jsonl}.log" 2>&1
  seconds=$(( $(date +%s) - start ))
  "$PY" - "$work" "$seed" "$seconds" "${NAME:-${PRESET:-cpu_small} $*}" "$*" "$FOLDER" "${STUDENT:-0}" 2>> "${OUT%.jsonl}.log" >> "$OUT" <<'EOF'
import contextlib, json, sys
from simple_ijepa.evaluate import main as evaluate  # `python -m simple_ijepa.evaluate`, returning its figures
work, seed, seconds, name, overrides, folder, student = sys.argv[1:]
args = ["--ckpt_path", f"{work}/training_model_ddp.pth", "--dataset_name", "folder", "--dataset_path", folder,
        "--seed", seed]
with contextlib.redirect_stdout(sys.stderr):  # its table goes to the log
    probes = evaluate(args)
    students = evaluate(args + ["--student", "--no_raw_pixels"])["pretrained"] if student == "1" else {}
teacher, random = probes["pretrained"], probes["random init"]
last = [json.loads(line) for line in open(f"{work}/metrics.jsonl")][-1]
print(json.dumps({"name": name, "overrides": overrides, "folder": folder, "seed": int(seed), "step": last.get("step"),
                  "train_seconds": int(seconds), "teacher linear": teacher["probe_acc"], "teacher knn": teacher["knn_acc"],
                  "random init linear": random["probe_acc"], "random init knn": random["knn_acc"],
                  **({"student linear": students["probe_acc"], "student knn": students["knn_acc"]} if students else {}),
                  "final loss": last.get("loss"), "teacher_pooled_std": last.get("teacher_pooled_std"),
                  "teacher_rankme": last.get("teacher_rankme")}))
EOF
  tail -n 1 "$OUT"
  rm -rf "$work"
done
