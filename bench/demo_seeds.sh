#!/usr/bin/env bash
# The README's demo (python -m simple_ijepa.demo: experiment=cpu_small on the embedded digits) over seeds:
# prints each seed's EMA-teacher and random-init lines and appends them as JSON to
# ${OUT:-bench/results/demo_seeds.jsonl} (the demo's whole output to the same name with .log). Extra
# arguments go to the demo as overrides.
#   bash bench/demo_seeds.sh                 # seeds 0-4
#   SEEDS="0 1" bash bench/demo_seeds.sh optim.max_steps=500
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-bench/results/demo_seeds.jsonl}
for seed in ${SEEDS:-0 1 2 3 4}; do
  work=$(mktemp -d)
  log=$("${PYTHON:-python}" -m simple_ijepa.demo seed="$seed" logging.save_model_dir="$work" "$@" 2>/dev/null)
  printf '== seed %d %s\n%s\n' "$seed" "$*" "$log" >> "${OUT%.jsonl}.log"
  teacher=$(grep "^EMA teacher" <<<"$log"); random=$(grep "^random init" <<<"$log")
  echo "seed $seed: $teacher | $random"
  read -r _ _ t_lin t_knn _ <<<"$teacher"; read -r _ _ r_lin r_knn <<<"$random"
  printf '{"seed": %d, "overrides": "%s", "teacher linear": %s, "teacher knn": %s, "random init linear": %s, "random init knn": %s}\n' \
    "$seed" "$*" "$t_lin" "$t_knn" "$r_lin" "$r_knn" >> "$OUT"
  rm -rf "$work"
done
