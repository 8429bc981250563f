#!/usr/bin/env bash
# Every GPU check and measurement of simple-ijepa in one go, within a 9-minute deadline on one H200.
#
#   bash bench/gpu.sh                        # on the GPU machine, from anywhere in the checkout
#   OUT=/dir bash bench/gpu.sh               # where the log and JSON files go (default ./gpu_out)
#   CHECKS="profile budget_compiled" bash bench/gpu.sh   # only these checks (names below)
#   DEVICE=cpu QUICK=1 bash bench/gpu.sh     # rehearsal of every command on a CPU, tiny sizes, eager
#                                            # (COMPILE=true to compile there too: 1-2 min more per check)
#
# Checks, in this order (each under its own time limit, cut to what is left before DEADLINE_S, default
# 525 s; a check that would start with less than it needs is skipped, and its row says so; QUICK=1
# sets no deadline). Times are estimates from the 2026-11-29 H200 runs (docs/performance.md#gpu), not
# a measurement of this script: each compiled configuration spends 50-100 s compiling in its warm-up.
#   correctness  (~20 s) 1. 50 training steps of a small model on the embedded digits, bf16 on the GPU vs
#      the fp32 CPU reference computed here (same weights, batches, crops, masks): relative loss
#      difference <= 1% at every step (fp32 on the GPU: <= 0.1%), and the loss falls.
#   eager        (~30 s) 2a. throughput of the default model, bf16, batch 256, eager, full context (padded,
#      packed real tokens) (targets: >= 8,000 images/s for the whole step including the data path,
#      MFU >= 35% of the bf16 matmul rate measured in the same run); 3. the data path alone (uint8
#      host batch -> augmented batch on the GPU): > 20,000 images/s; 4. the README's 100-epoch run
#      (10M images) projected at the measured rate. (These rows come with every throughput check.)
#   nosync       (~10 s) 5. no host-device synchronisation inside a training step (CUDA sync debug mode).
#   correctness_compiled (~1-2 min) 1b. check 1 with optim.compile=true and mask.context_budget=0.25.
#      (Before the learning run: it decides whether experiment=stl10_gpu may compile.)
#   learning     (LEARN_S = 240 s of training + ~1.5 min start-up, checkpoints and probes) a learning
#      run: experiment=stl10_gpu on Fashion-MNIST (its 60,000 training images, resampled to 96 px by
#      the device's crop) with eval.enabled=false, then `simple_ijepa.evaluate --classifier torch` on
#      the GPU: linear probe and 20-NN of the EMA teacher, a random-init encoder and the raw pixels on
#      the 10,000 test images (bench/gpu_learning_run.py). The trainer has no time-based stop: its
#      optim.max_steps = floor(0.9 x LEARN_S x the eager whole-step rate just measured (2a) / 256)
#      (3,350 images/s if 2a has no result); it gets SIGTERM (it saves, then the probes run) if it
#      runs 1.5 x LEARN_S + 60 s. Target, reported, never failing the script: teacher linear probe
#      above the raw pixels'.
#   profile      (~1-2 min) the compiled step's profile, mask.context_budget=0.25 optim.compile=true, bf16
#      (bench/gpu_profile.py): 5 warm-up steps, 5 timed, 5 profiled; device time per step by kernel
#      family (matmul, attention, triton fused, layer norm, optimiser, copies...), how busy the GPU
#      is (kernel time / wall time), the top kernels, and the SDPA mask-form timings.
#   budget_compiled (~2 min) 2e. throughput, mask.context_budget=0.25 (static shapes), compiled.
#   budget_eager (~20 s) 2d. the same, eager.
#   compiled     (~1.5 min) 2b. throughput, full context, compiled.
#   shared       (~1.5 min) 2f. the budget with a shared-context predictor, compiled.
#   gated        (~20 s) 2c. (info) throughput of variant=gated, eager, bf16.
# All of them come to ~13 minutes by these estimates, more than one device command may take (10 min):
# with the default deadline 1, 2a, 5, 1b and the learning run take ~8 min by these estimates; the
# profile gets what is left (it may be cut or skipped), and the checks after it likely nothing; run
# those in a second call, e.g. CHECKS="profile budget_compiled". LEARN_S (whole seconds), DEADLINE_S (0: none), CHECKS and COMPILE=false (the
# compiled checks run eager) change this.
# Output: $OUT/gpu.log (everything), correctness{,_compiled}.json, throughput_eager.json,
# throughput_compiled.json, throughput_budget_{eager,compiled}.json, throughput_budget_shared_compiled.json,
# throughput_gated.json, nosync.json, learning_run.json, profile_budget_compiled.json (a skipped check's
# file holds {"skipped": why}), and summary.json, which holds all of them (the device tool brings back
# at most 8 files: `OUT=/tmp/g bash bench/gpu.sh; cp /tmp/g/gpu.log /tmp/g/summary.json $OUT/`); a
# PASS/FAIL/SKIP table is printed last. The learning run's checkpoints go to $WORK (/tmp/gpu_sh_work).
#
# Needs python3 with torch (the GPU image has it) and hydra-core + omegaconf, which that image
# lacks: carry them as wheels in .whl/ (git-ignored), made on a machine with a network by
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 -d .whl \
#       hydra-core==1.3.8 omegaconf==2.3.1
#   python3 -m pip wheel --no-deps -w .whl antlr4-python3-runtime==4.9.3
# The learning run needs Fashion-MNIST's four gz files (30 MB), which the GPU machine lacks: copy them
# into data/fashion-mnist/ (git-ignored; or point FMNIST at a folder holding fashion-mnist/)
#   mkdir -p data/fashion-mnist && cp /usr/share/datasets/fashion-mnist/*.gz data/fashion-mnist/
# and pass carry=[".whl", "data/fashion-mnist"] to the device run. scikit-learn (digits) is optional:
# without it the correctness check uses seeded synthetic images.
set -u -o pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
DEVICE=${DEVICE:-cuda}
QUICK=${QUICK:-0}
OUT=${OUT:-$PWD/gpu_out}
WORK=${WORK:-/tmp/gpu_sh_work}  # the learning run's checkpoints and logs (hundreds of MB: not in $OUT)
FMNIST=${FMNIST:-$PWD/data}     # data.dataset_path of Fashion-MNIST: its gz files in $FMNIST/fashion-mnist/
ALL="correctness eager nosync correctness_compiled learning profile budget_compiled budget_eager compiled shared gated"
CHECKS=${CHECKS:-$ALL}          # which checks run (in the order above, whatever the order here)
# COMPILE=false: the compiled checks run eager (QUICK's default: compiling takes 1-2 min per check on a CPU)
if [ "$QUICK" = 1 ]; then DEADLINE_S=${DEADLINE_S:-0}; LEARN_S=${LEARN_S:-5}; COMPILE=${COMPILE:-false}
else DEADLINE_S=${DEADLINE_S:-525}; LEARN_S=${LEARN_S:-240}; COMPILE=${COMPILE:-true}; fi
mkdir -p "$OUT" "$WORK"
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 FMNIST
START=$(date +%s)
say() { echo; echo "=== [$(( $(date +%s) - START )) s] $*"; }
time_left() { if [ "$DEADLINE_S" -gt 0 ]; then echo $(( DEADLINE_S - ($(date +%s) - START) )); else echo 1000000; fi; }
skipped() { printf '{"skipped": "%s"}\n' "$2" > "$1"; }
# check NAME JSON LIMIT MIN TITLE COMMAND...: `say TITLE`, then COMMAND under `timeout`, its LIMIT (s)
# cut to the time left before DEADLINE_S. Skipped, with {"skipped": why} in $OUT/JSON, when NAME is
# not in $CHECKS or fewer than MIN s are left. A failure or time-out is reported, and the script goes on.
check() {
    local name=$1 json=$OUT/$2 limit=$3 min=$4 title=$5 left
    shift 5
    rm -f "$json"
    case " $(echo $CHECKS) " in
        *" $name "*) ;;
        *) skipped "$json" "not in CHECKS"; return 0 ;;
    esac
    say "$title"
    left=$(time_left)
    if [ "$left" -lt "$min" ]; then
        echo "$name: SKIPPED: $left s left before the ${DEADLINE_S}-s deadline (DEADLINE_S), it needs $min s"
        skipped "$json" "$left s left before DEADLINE_S=$DEADLINE_S, needs $min s"
        return 0
    fi
    [ "$left" -lt "$limit" ] && limit=$left
    timeout -k 15 "$limit" "$@" || echo "$name: FAILED or timed out after $limit s (exit $?)"
}

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
import importlib, os, torch
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
try:
    from simple_ijepa.data import build_dataset
    n = [len(build_dataset("fashion_mnist", os.environ["FMNIST"], split)) for split in ("unlabeled", "test")]
    print(f"Fashion-MNIST (learning run): {n[0]} training / {n[1]} test images")
except Exception as e:
    print(f"Fashion-MNIST (learning run): MISSING ({e}); carry data/fashion-mnist (see this script's header)")
EOF
echo "checks: $(echo $CHECKS); deadline: $DEADLINE_S s (0: none); learning run: $LEARN_S s of training"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm --format=csv

if [ "$QUICK" = 1 ]; then  # CPU rehearsal: the same commands on a tiny model
    TINY="model.image_size=32 model.patch_size=8 model.hidden_dim=32 model.depth=1 model.heads=2 model.head_dim=16
          model.predictor_dim=32 model.predictor_depth=1 model.predictor_heads=2 model.num_targets=2
          mask.min_context=2 dataloader.batch_size=16"
    MODEL="$TINY data.dataset_name=cifar10"
    STEPS="--steps 2 --chunk 1 --warmup 2"; CSTEPS=10; LIMIT=600; SHORT=600; PSTEPS="--warmup 2 --steps 2"
    LEARN="$TINY dataloader.num_workers=0 logging.log_every_n_steps=10"
    LEARN_ARGS="--max-steps-cap 30 --eval-device cpu --eval-arg=--max_train_samples=500 --eval-arg=--max_test_samples=500"
    MIN_SHORT=0; MIN_COMPILE=0; LEARN_EXTRA=0
else
    MODEL="dataloader.batch_size=256"  # the default (README) model
    STEPS="--steps 10 --chunk 5 --warmup 5"; CSTEPS=50; LIMIT=240; SHORT=120; PSTEPS="--warmup 5 --steps 5"
    LEARN="dataloader.num_workers=${LEARN_WORKERS:-8}"  # stl10_gpu's batch 256
    LEARN_ARGS="--eval-device $DEVICE"
    MIN_SHORT=30; MIN_COMPILE=100; LEARN_EXTRA=120  # LEARN_EXTRA: trainer start-up + checkpoint + the probes
fi

check correctness correctness.json $SHORT $MIN_SHORT "1. correctness: bf16 on $DEVICE vs fp32 on the CPU, $CSTEPS steps" \
    $PY bench/gpu_checks.py correctness --device "$DEVICE" --steps $CSTEPS --json "$OUT/correctness.json"

check eager throughput_eager.json $SHORT $MIN_SHORT "2a. throughput, eager, bf16 ($MODEL)" \
    $PY bench/throughput.py $MODEL optim.precision=bf16 --device "$DEVICE" $STEPS --json "$OUT/throughput_eager.json"

check nosync nosync.json $SHORT $MIN_SHORT "5. no host-device sync inside a training step" \
    $PY bench/gpu_checks.py nosync --device "$DEVICE" --json "$OUT/nosync.json" $MODEL

check correctness_compiled correctness_compiled.json $LIMIT $MIN_COMPILE \
    "1b. correctness, optim.compile=$COMPILE mask.context_budget=0.25: compiled bf16 on $DEVICE vs eager fp32 on the CPU" \
    $PY bench/gpu_checks.py correctness --device "$DEVICE" --steps $CSTEPS --json "$OUT/correctness_compiled.json" \
    optim.compile=$COMPILE mask.context_budget=0.25

# The learning run's training stops (SIGTERM: it saves, then the probes run) after TRAIN_LIMIT s at
# the latest: 1.5 x LEARN_S + 60, cut to leave LEARN_EXTRA s before the deadline.
TRAIN_LIMIT=$(( LEARN_S * 3 / 2 + 60 )); LEFT=$(( $(time_left) - LEARN_EXTRA ))
[ "$LEFT" -lt "$TRAIN_LIMIT" ] && TRAIN_LIMIT=$LEFT
[ "$TRAIN_LIMIT" -lt 1 ] && TRAIN_LIMIT=1
check learning learning_run.json $(( TRAIN_LIMIT + LEARN_EXTRA + 120 )) $(( LEARN_S + LEARN_EXTRA )) \
    "L. learning run: experiment=stl10_gpu on Fashion-MNIST at model.image_size, $LEARN_S s of training, then the probes" \
    $PY bench/gpu_learning_run.py --work "$WORK/learning" --seconds "$LEARN_S" --rate-json "$OUT/throughput_eager.json" \
    --limit-s "$TRAIN_LIMIT" --dataset-path "$FMNIST" $LEARN_ARGS --json "$OUT/learning_run.json" $LEARN

check profile profile_budget_compiled.json $LIMIT $MIN_COMPILE \
    "P. profile: mask.context_budget=0.25 optim.compile=$COMPILE, bf16: device time by kernel family" \
    env TORCH_LOGS=recompiles $PY bench/gpu_profile.py $MODEL mask.context_budget=0.25 optim.precision=bf16 \
    optim.compile=$COMPILE --device "$DEVICE" $PSTEPS --top 30 --json "$OUT/profile_budget_compiled.json"

check budget_compiled throughput_budget_compiled.json $LIMIT $MIN_COMPILE \
    "2e. throughput, mask.context_budget=0.25, optim.compile=$COMPILE, bf16 (one graph: Kc static, Kt symbolic)" \
    env TORCH_LOGS=recompiles $PY bench/throughput.py $MODEL mask.context_budget=0.25 optim.precision=bf16 \
    optim.compile=$COMPILE --device "$DEVICE" $STEPS --json "$OUT/throughput_budget_compiled.json"

check budget_eager throughput_budget_eager.json $SHORT $MIN_SHORT \
    "2d. throughput, mask.context_budget=0.25 (static shapes, no padding), eager, bf16" \
    $PY bench/throughput.py $MODEL mask.context_budget=0.25 optim.precision=bf16 --device "$DEVICE" $STEPS \
    --json "$OUT/throughput_budget_eager.json"

check compiled throughput_compiled.json $LIMIT $MIN_COMPILE \
    "2b. throughput, optim.compile=$COMPILE, bf16 (compilation happens in the warm-up)" \
    env TORCH_LOGS=recompiles $PY bench/throughput.py $MODEL optim.precision=bf16 optim.compile=$COMPILE \
    --device "$DEVICE" $STEPS --json "$OUT/throughput_compiled.json"

check shared throughput_budget_shared_compiled.json $LIMIT $MIN_COMPILE \
    "2f. throughput, mask.context_budget=0.25 model.predictor_shared_context=true, optim.compile=$COMPILE, bf16" \
    env TORCH_LOGS=recompiles $PY bench/throughput.py $MODEL mask.context_budget=0.25 \
    model.predictor_shared_context=true optim.precision=bf16 optim.compile=$COMPILE --device "$DEVICE" $STEPS \
    --json "$OUT/throughput_budget_shared_compiled.json"

check gated throughput_gated.json $SHORT $MIN_SHORT "2c. throughput, variant=gated, eager, bf16 (info)" \
    $PY bench/throughput.py $MODEL variant=gated optim.precision=bf16 --device "$DEVICE" $STEPS \
    --json "$OUT/throughput_gated.json"

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

def skip(r):  # the reason a check did not run, or None
    return r.get("skipped") if isinstance(r, dict) else None

rows, summary = [], {}  # rows: (check, value, True | False | None = skipped)

def correctness_row(name, label):
    c = load(name)
    if skip(c):
        rows.append((label, f"skipped ({skip(c)})", None))
    else:
        rows.append((label, f"{c['bf16_max_rel_diff']:.2e} (fp32 {c['fp32_max_rel_diff']:.1e})" if c else "no result",
                     bool(c and c["pass"])))
    return c

c = correctness_row("correctness.json", "correctness: bf16 vs CPU fp32 loss, max rel. diff <= 1%")
cc = correctness_row("correctness_compiled.json", "correctness, compiled + budget: bf16 vs CPU fp32, <= 1%")
for mode in ("eager", "compiled", "budget_eager", "budget_compiled", "budget_shared_compiled"):
    t = load(f"throughput_{mode}.json")
    summary[mode] = t
    if skip(t):
        rows.append((f"throughput {mode}", f"skipped ({skip(t)})", None))
        continue
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
if skip(g):
    rows.append(("gated (eager): whole step (info)", f"skipped ({skip(g)})", None))
else:
    rows.append(("gated (eager): whole step (info)", f"{g['step_images_per_s']:,.0f} images/s, "
                 f"MFU {100 * g['mfu']:.1f}%, {g['peak_memory_bytes'] / 2**30:.1f} GiB" if g else "no result", True))
n = load("nosync.json")
if skip(n):
    rows.append(("no host-device sync in a training step", f"skipped ({skip(n)})", None))
else:
    rows.append(("no host-device sync in a training step", f"{n['syncs']} syncs" if n else "no result",
                 bool(n and n["pass"])))
p = load("profile_budget_compiled.json")
label = "profile, budget + compile (info): wall, device busy, top families"
if skip(p):
    rows.append((label, f"skipped ({skip(p)})", None))
elif p:
    fams = ", ".join(f"{f['family']} {100 * f['share_of_device_time']:.0f}%" for f in p["families"][:4])
    rows.append((label, f"{p['wall_ms_per_step']:.1f} ms/step, busy {100 * p['busy_fraction']:.0f}%; {fams}", True))
else:
    rows.append((label, "no result", False))
lr = load("learning_run.json")
label = "learning run (report): teacher linear probe > raw pixels"
if skip(lr):
    rows.append((label, f"skipped ({skip(lr)})", None))
elif lr and "probes" in lr:
    pr = lr["probes"]
    rows.append((label, f"teacher {pr['pretrained']['probe_acc']:.4f} vs raw pixels "
                 f"{pr.get('raw pixels', {}).get('probe_acc', float('nan')):.4f}, random init "
                 f"{pr['random init']['probe_acc']:.4f} (20-NN: {pr['pretrained']['knn_acc']:.4f}); {lr['max_steps']} "
                 f"steps in {lr['process_s']:.0f} s" + (" (stopped early)" if lr.get("stopped_early") else ""),
                 bool(lr.get("target_met"))))
else:
    rows.append((label, f"no result ({lr.get('error')})" if lr else "no result", False))
width = max(len(r[0]) for r in rows)
for name, value, ok in rows:
    print(f"{'SKIP' if ok is None else 'PASS' if ok else 'FAIL'}  {name:{width}s}  {value}")
summary.update(correctness=c, correctness_compiled=cc, nosync=n, profile_budget_compiled=p, learning_run=lr,
               rows=[{"check": r[0], "value": r[1], "pass": r[2]} for r in rows])
with open(os.path.join(out, "summary.json"), "w") as f:
    json.dump(summary, f, indent=1)
EOF
say "done"
}

all_checks 2>&1 | tee "$OUT/gpu.log"
