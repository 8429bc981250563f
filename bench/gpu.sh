#!/usr/bin/env bash
# Every GPU check and measurement of simple-ijepa in one go: expect 7-9 minutes on one H200 (not yet timed whole).
#
#   bash bench/gpu.sh                        # on the GPU machine, from anywhere in the checkout
#   OUT=/dir bash bench/gpu.sh               # where the log and JSON files go (default ./gpu_out)
#   DEVICE=cpu QUICK=1 bash bench/gpu.sh     # rehearsal of every command on a CPU, tiny sizes
#
# Checks, in order (each under its own time limit; each compiled configuration spends 50-100 s
# compiling in its warm-up on an H200 with torch 2.11):
#   1. correctness: 50 training steps of a small model on the embedded digits, bf16 on the GPU vs
#      the fp32 CPU reference computed here (same weights, batches, crops, masks): relative loss
#      difference <= 1% at every step (fp32 on the GPU: <= 0.1%), and the loss falls.
#      1b. the same with optim.compile=true and mask.context_budget=0.25 (the device runs compiled).
#   2. throughput of the default model, bf16, batch 256, eager and optim.compile=true, with full
#      context (padded, packed real tokens) and with mask.context_budget=0.25 (static shapes),
#      and the budget with a shared-context predictor (model.predictor_shared_context=true), compiled
#      (targets: >= 8,000 images/s for the whole step including the data path, MFU >= 35% of the
#      bf16 matmul rate measured in the same run).
#   3. the data path alone (uint8 host batch -> augmented batch on the GPU): > 20,000 images/s.
#   4. the README's 100-epoch run (10M images) projected at the measured rate.
#   5. no host-device synchronisation inside a training step (CUDA sync debug mode).
#   6. (info) throughput of variant=gated, eager, bf16.
# Output: $OUT/gpu.log (everything), correctness{,_compiled}.json, throughput_eager.json,
# throughput_compiled.json, throughput_budget_{eager,compiled}.json, throughput_budget_shared_compiled.json,
# throughput_gated.json, nosync.json, and summary.json, which holds all of them (the device tool
# brings back at most 8 files: `OUT=/tmp/g bash bench/gpu.sh; cp /tmp/g/gpu.log /tmp/g/summary.json $OUT/`);
# a PASS/FAIL table is printed last.
#
# Needs python3 with torch (the GPU image has it) and hydra-core + omegaconf, which that image
# lacks: carry them as wheels in .whl/ (git-ignored), made on a machine with a network by
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 -d .whl \
#       hydra-core==1.3.8 omegaconf==2.3.1
#   python3 -m pip wheel --no-deps -w .whl antlr4-python3-runtime==4.9.3
# and pass carry=[".whl"] to the device run. scikit-learn (digits) is optional: without it the
# correctness check uses seeded synthetic images.
set -u -o pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
DEVICE=${DEVICE:-cuda}
OUT=${OUT:-$PWD/gpu_out}
mkdir -p "$OUT"
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
START=$(date +%s)
say() { echo; echo "=== [$(( $(date +%s) - START )) s] $*"; }

all_checks() {
say "environment"
if ! $PY -c "import hydra, omegaconf" 2>/dev/null; then
    if ls .whl/*.whl >/dev/null 2>&1; then
        $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl \
            || { echo "FAIL: could not install .whl/*.whl"; exit 2; }
        export PYTHONPATH=$PYTHONPATH:/tmp/site
    else
        echo "FAIL: hydra-core / omegaconf are missing and no .whl/ was carried (see this script's header)."
        exit 2
    fi
fi
$PY - <<'EOF' || exit 2
import importlib, torch
print("torch", torch.__version__, "| cuda", torch.version.cuda, "| available", torch.cuda.is_available(),
      "|", torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU")
for name in ("hydra", "omegaconf", "numpy", "sklearn", "tqdm", "PIL"):
    try:
        importlib.import_module(name)
        print(f"  {name}: ok")
    except ImportError as e:
        print(f"  {name}: MISSING ({e})" + (" - digits falls back to synthetic images" if name == "sklearn" else ""))
import simple_ijepa.training.trainer  # noqa: F401  (fails here, clearly, if an import is missing)
print("simple_ijepa imports: ok")
EOF
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm --format=csv

if [ "${QUICK:-0}" = 1 ]; then  # CPU rehearsal: the same commands on a tiny model
    MODEL="model.image_size=32 model.patch_size=8 model.hidden_dim=32 model.depth=1 model.heads=2 model.head_dim=16
           model.predictor_dim=32 model.predictor_depth=1 model.predictor_heads=2 model.num_targets=2
           mask.min_context=2 data.dataset_name=cifar10 dataloader.batch_size=16"
    STEPS="--steps 2 --chunk 1 --warmup 2"; CSTEPS=10; LIMIT=600; SHORT=600
else
    MODEL="dataloader.batch_size=256"  # the default (README) model
    STEPS="--steps 10 --chunk 5 --warmup 5"; CSTEPS=50; LIMIT=240; SHORT=120
fi

say "1. correctness: bf16 on $DEVICE vs fp32 on the CPU, $CSTEPS steps"
timeout $SHORT $PY bench/gpu_checks.py correctness --device "$DEVICE" --steps $CSTEPS --json "$OUT/correctness.json" \
    || echo "correctness: FAILED or timed out (exit $?)"

say "1b. correctness, optim.compile=true mask.context_budget=0.25: compiled bf16 on $DEVICE vs eager fp32 on the CPU"
timeout $LIMIT $PY bench/gpu_checks.py correctness --device "$DEVICE" --steps $CSTEPS --json "$OUT/correctness_compiled.json" \
    optim.compile=true mask.context_budget=0.25 || echo "correctness (compiled): FAILED or timed out (exit $?)"

say "2a. throughput, eager, bf16 ($MODEL)"
timeout $SHORT $PY bench/throughput.py $MODEL optim.precision=bf16 --device "$DEVICE" $STEPS \
    --json "$OUT/throughput_eager.json" || echo "throughput (eager): FAILED or timed out (exit $?)"

say "5. no host-device sync inside a training step"
timeout $SHORT $PY bench/gpu_checks.py nosync --device "$DEVICE" --json "$OUT/nosync.json" $MODEL \
    || echo "nosync: FAILED or timed out (exit $?)"

say "2b. throughput, optim.compile=true, bf16 (compilation happens in the warm-up)"
TORCH_LOGS=recompiles timeout $LIMIT $PY bench/throughput.py $MODEL optim.precision=bf16 optim.compile=true \
    --device "$DEVICE" $STEPS --json "$OUT/throughput_compiled.json" \
    || echo "throughput (compiled): FAILED or timed out (exit $?)"

say "2d. throughput, mask.context_budget=0.25 (static shapes, no padding), eager, bf16"
timeout $SHORT $PY bench/throughput.py $MODEL mask.context_budget=0.25 optim.precision=bf16 --device "$DEVICE" $STEPS \
    --json "$OUT/throughput_budget_eager.json" || echo "throughput (budget, eager): FAILED or timed out (exit $?)"

say "2e. throughput, mask.context_budget=0.25, optim.compile=true, bf16 (one graph: Kc static, Kt symbolic)"
TORCH_LOGS=recompiles timeout $LIMIT $PY bench/throughput.py $MODEL mask.context_budget=0.25 optim.precision=bf16 \
    optim.compile=true --device "$DEVICE" $STEPS --json "$OUT/throughput_budget_compiled.json" \
    || echo "throughput (budget, compiled): FAILED or timed out (exit $?)"

say "2f. throughput, mask.context_budget=0.25 model.predictor_shared_context=true, optim.compile=true, bf16"
TORCH_LOGS=recompiles timeout $LIMIT $PY bench/throughput.py $MODEL mask.context_budget=0.25 \
    model.predictor_shared_context=true optim.precision=bf16 optim.compile=true --device "$DEVICE" $STEPS \
    --json "$OUT/throughput_budget_shared_compiled.json" || echo "throughput (budget, shared, compiled): FAILED or timed out (exit $?)"

say "2c. throughput, variant=gated, eager, bf16 (info)"
timeout $SHORT $PY bench/throughput.py $MODEL variant=gated optim.precision=bf16 --device "$DEVICE" $STEPS \
    --json "$OUT/throughput_gated.json" || echo "throughput (gated): FAILED or timed out (exit $?)"

say "summary"
OUT="$OUT" $PY - <<'EOF'
import json, os
out = os.environ["OUT"]

def load(name):
    try:
        with open(os.path.join(out, name)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None

rows, summary = [], {}
c = load("correctness.json")
rows.append(("correctness: bf16 vs CPU fp32 loss, max rel. diff <= 1%",
             f"{c['bf16_max_rel_diff']:.2e} (fp32 {c['fp32_max_rel_diff']:.1e})" if c else "no result",
             bool(c and c["pass"])))
cc = load("correctness_compiled.json")
rows.append(("correctness, compiled + budget: bf16 vs CPU fp32, <= 1%",
             f"{cc['bf16_max_rel_diff']:.2e} (fp32 {cc['fp32_max_rel_diff']:.1e})" if cc else "no result",
             bool(cc and cc["pass"])))
for mode in ("eager", "compiled", "budget_eager", "budget_compiled", "budget_shared_compiled"):
    t = load(f"throughput_{mode}.json")
    summary[mode] = t
    if not t:
        rows.append((f"throughput {mode}", "no result", False))
        continue
    rows.append((f"{mode}: whole step >= 8,000 images/s", f"{t['step_images_per_s']:,.0f}", t["step_images_per_s"] >= 8000))
    rows.append((f"{mode}: MFU >= 35% of measured bf16 matmul", f"{100 * t['mfu']:.1f}% of "
                 f"{t['peak_flops_per_s'] / 1e12:.3g} TFLOP/s ({t['achieved_flops_per_s'] / 1e12:.3g} achieved)",
                 t["mfu"] >= 0.35))
    rows.append((f"{mode}: data path > 20,000 images/s", f"{t['data_images_per_s']:,.0f}", t["data_images_per_s"] > 20000))
    rows.append((f"{mode}: masks alone (info)", f"{t['masks_images_per_s']:,.0f} images/s", True))
    rows.append((f"{mode}: README 100-epoch run (10M images), one GPU", f"{t['headline_run_hours']:.2f} h", True))
    rows.append((f"{mode}: peak memory (info)", f"{t['peak_memory_bytes'] / 2**30:.1f} GiB", True))
g = load("throughput_gated.json")
summary["gated"] = g
rows.append(("gated (eager): whole step (info)", f"{g['step_images_per_s']:,.0f} images/s, "
             f"MFU {100 * g['mfu']:.1f}%, {g['peak_memory_bytes'] / 2**30:.1f} GiB" if g else "no result", True))
n = load("nosync.json")
rows.append(("no host-device sync in a training step", f"{n['syncs']} syncs" if n else "no result",
             bool(n and n["pass"])))
width = max(len(r[0]) for r in rows)
for name, value, ok in rows:
    print(f"{'PASS' if ok else 'FAIL'}  {name:{width}s}  {value}")
summary.update(correctness=c, correctness_compiled=cc, nosync=n,
               rows=[{"check": r[0], "value": r[1], "pass": r[2]} for r in rows])
with open(os.path.join(out, "summary.json"), "w") as f:
    json.dump(summary, f, indent=1)
EOF
say "done"
}

all_checks 2>&1 | tee "$OUT/gpu.log"
