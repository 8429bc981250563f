"""A learning run of a fixed training wall-clock, then the probes: `bench/gpu.sh`'s learning check.

    python bench/gpu_learning_run.py --work DIR [--seconds 240] [--rate-json PATH | --rate IMAGES_PER_S]
        [--factor 0.9] [--max-steps N] [--max-steps-cap N] [--limit-s S] [--dataset-path DIR]
        [--eval-device cuda] [--eval-arg=--max_train_samples=500 ...] [--json PATH] [key=value ...]

1. Training: `python -m simple_ijepa.cli.train experiment=stl10_gpu data.dataset_name=fashion_mnist
   eval.enabled=false optim.max_steps=N logging.save_model_dir=DIR/run [key=value ...]` in its own
   process (later key=value win). Fashion-MNIST's 60,000 training images (28 px, grey) are the
   unlabeled set; the device's random-resized crop resamples them to model.image_size (96 by default),
   as evaluation's resize does (`eval_transform`). The trainer has no time-based stop, so the run's
   length is set by its step count, derived from the step rate measured earlier in the same
   `gpu.sh` run: N = floor(factor * seconds * images_per_s / batch_size), with images_per_s the
   `step_images_per_s` of `--rate-json` (bench/throughput.py's JSON of the same model, precision and
   batch; gpu.sh passes the eager bf16 default model at batch 256, which is what stl10_gpu trains),
   else `--rate`. `--factor` (default 0.9) leaves room for what the trainer does beyond the timed step
   (the loader, a metrics line, collapse monitors and a checkpoint every logging.log_every_n_steps).
   The LR warm-up and cosine and the EMA ramp then end at N, as in a planned run. A safety stop: after
   `--limit-s` (default 1.5 * seconds + 60) the trainer gets SIGTERM, saves a checkpoint at the next
   step boundary and exits 75; that checkpoint is probed, and the JSON says `stopped_early`.
2. Probes: `simple_ijepa.evaluate --ckpt_path DIR/run/training_model_ddp.pth --dataset_name
   fashion_mnist --classifier torch` on the device (the EMA teacher, a random-init encoder of the same
   architecture and the raw pixels; linear probe and 20-NN), trained on the 60,000 training images and
   scored on the 10,000 test images (`--eval-arg` adds evaluate flags, e.g. sample caps).

Writes one JSON object (`--json`): the step count and how it was set, the training process's wall
time and the training loop's time from metrics.jsonl's images/s, the first and last logged loss,
the three encoders' probe_acc / knn_acc, and `target_met`: teacher linear probe > raw pixels.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from a checkout

from simple_ijepa.checkpoints import checkpoint_names  # noqa: E402
from simple_ijepa.config import validate  # noqa: E402
from simple_ijepa.training.trainer import make_config  # noqa: E402

BASE = ["experiment=stl10_gpu", "data.dataset_name=fashion_mnist", "eval.enabled=false"]
H200_EAGER_RATE = 3350.0  # images/s, the eager default model's whole step on an H200 (docs/performance.md#gpu)


def parse_args(argv=None) -> tuple[argparse.Namespace, list[str]]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                epilog="Any other argument is a key=value training override.")
    p.add_argument("--work", required=True, help="folder for the run (checkpoints: not for $OUT)")
    p.add_argument("--seconds", type=float, default=240.0, help="training wall-clock to plan for (default 240)")
    p.add_argument("--rate-json", default=None, help="bench/throughput.py JSON: its step_images_per_s")
    p.add_argument("--rate", type=float, default=H200_EAGER_RATE,
                   help=f"images/s when --rate-json is missing or unreadable (default {H200_EAGER_RATE:g})")
    p.add_argument("--factor", type=float, default=0.9, help="share of --seconds the timed step rate may fill")
    p.add_argument("--max-steps", type=int, default=None, help="this many steps, not derived from a rate")
    p.add_argument("--max-steps-cap", type=int, default=None, help="at most this many steps (rehearsals)")
    p.add_argument("--limit-s", type=float, default=None, help="SIGTERM the trainer after this (default 1.5x+60)")
    p.add_argument("--dataset-path", default="./data", help="data.dataset_path (Fashion-MNIST's gz files in "
                   "DIR/fashion-mnist/, or the system's /usr/share/datasets/fashion-mnist)")
    p.add_argument("--eval-device", default="cuda")
    p.add_argument("--eval-arg", action="append", default=[], help="an extra flag for simple_ijepa.evaluate")
    p.add_argument("--json", default=None, metavar="PATH")
    args, overrides = p.parse_known_args(argv)
    bad = [o for o in overrides if "=" not in o or o.startswith("-")]
    if bad:
        p.error(f"unrecognised arguments {bad}: training overrides are key=value")
    return args, overrides


def plan_steps(args, batch_size: int) -> dict:
    """The step count and where it came from."""
    if args.max_steps:
        return {"max_steps": args.max_steps, "how": "--max-steps"}
    rate, source = args.rate, "--rate"
    if args.rate_json:
        try:
            with open(args.rate_json) as f:
                rate, source = float(json.load(f)["step_images_per_s"]), args.rate_json
        except (OSError, ValueError, KeyError, TypeError) as e:
            print(f"learning run: no rate in {args.rate_json} ({e!r}); using --rate {args.rate:g} images/s")
    steps = max(1, math.floor(args.factor * args.seconds * rate / batch_size))
    plan = {"max_steps": steps, "how": f"floor({args.factor:g} x {args.seconds:g} s x {rate:,.0f} images/s "
            f"(from {source}) / batch {batch_size})", "rate_images_per_s": rate, "rate_from": source}
    if args.max_steps_cap and steps > args.max_steps_cap:
        plan.update(max_steps=args.max_steps_cap, how=plan["how"] + f", capped at {args.max_steps_cap}")
    return plan


def train(cmd: list[str], limit_s: float) -> dict:
    """Run the trainer; SIGTERM after limit_s (it saves and exits 75), SIGKILL 120 s later."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd)
    stopped = False
    try:
        rc = proc.wait(timeout=limit_s)
    except subprocess.TimeoutExpired:
        stopped = True
        print(f"learning run: {limit_s:.0f} s passed; SIGTERM to the trainer (it saves, then exits)", flush=True)
        proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            rc = proc.wait()
    return {"exit_code": rc, "stopped_early": stopped, "process_s": time.perf_counter() - t0}


def read_metrics(path: str, batch_size: int) -> dict:
    """From metrics.jsonl: steps, first / last loss, and the loop's time = sum over the log windows of
    (window steps x batch / images_per_s) (checkpoint and probe time at log steps not included)."""
    rows = []
    try:
        with open(path) as f:
            for line in f:
                try:
                    rows.append(json.loads(line))
                except ValueError:  # a line cut off (the trainer killed while writing): skipped
                    pass
    except OSError:
        return {}
    rows = [r for r in rows if isinstance(r, dict) and "step" in r]
    if not rows:
        return {}
    loop_s, prev = 0.0, 0
    for r in rows:
        if r.get("images_per_s"):
            loop_s += (r["step"] - prev) * batch_size / r["images_per_s"]
        prev = r["step"]
    return {"logged_steps": [r["step"] for r in rows], "first_loss": rows[0].get("loss"),
            "last_loss": rows[-1].get("loss"), "train_loop_s": loop_s,
            "images_per_s": [r.get("images_per_s") for r in rows]}


def main(argv=None) -> dict:
    args, overrides = parse_args(argv)
    run_dir = os.path.abspath(os.path.join(args.work, "run"))
    dataset_path = os.path.abspath(args.dataset_path)
    train_overrides = BASE + [f"data.dataset_path={dataset_path}", f"logging.save_model_dir={run_dir}",
                              "logging.overwrite=true"] + overrides
    result: dict = {"overrides": train_overrides, "seconds_planned": args.seconds}

    def finish() -> dict:
        if args.json:
            with open(args.json, "w") as f:
                json.dump(result, f, indent=1)
        return result

    cfg = make_config(train_overrides)
    validate(cfg)
    plan = plan_steps(args, cfg.dataloader.batch_size)
    result.update(plan, batch_size=cfg.dataloader.batch_size, image_size=cfg.model.image_size)
    limit_s = args.limit_s or 1.5 * args.seconds + 60
    cmd = [sys.executable, "-m", "simple_ijepa.train", *train_overrides, f"optim.max_steps={plan['max_steps']}"]
    print(f"learning run: {plan['max_steps']} steps = {plan['how']}; SIGTERM after {limit_s:.0f} s", flush=True)
    print("  " + " ".join(cmd[1:]), flush=True)
    result.update(train(cmd, limit_s))
    result.update(read_metrics(os.path.join(run_dir, "metrics.jsonl"), cfg.dataloader.batch_size))
    print(f"learning run: trainer exit {result['exit_code']} after {result['process_s']:.1f} s "
          f"(training loop {result.get('train_loop_s', float('nan')):.1f} s by metrics.jsonl)", flush=True)
    ckpt = os.path.join(run_dir, checkpoint_names(cfg.variant)[0])
    if not os.path.isfile(ckpt):
        result["error"] = f"no checkpoint {ckpt} (trainer exit {result['exit_code']})"
        print(f"learning run: FAILED, {result['error']}")
        return finish()
    from simple_ijepa.cli.evaluate import main as evaluate

    eval_argv = ["--ckpt_path", ckpt, "--dataset_name", "fashion_mnist", "--dataset_path", dataset_path,
                 "--classifier", "torch", "--device", args.eval_device, *args.eval_arg]
    result["evaluate_argv"] = eval_argv
    print("learning run: python -m simple_ijepa.evaluate " + " ".join(eval_argv), flush=True)
    t0 = time.perf_counter()
    try:
        probes = evaluate(eval_argv)
    except (Exception, SystemExit) as e:  # any failure goes into the JSON
        result["error"] = f"evaluate failed: {e!r}"
        print(f"learning run: FAILED, {result['error']}")
        return finish()
    result["evaluate_s"] = time.perf_counter() - t0
    result["probes"] = {name: {k: float(v) for k, v in r.items()} for name, r in probes.items()}
    teacher, raw = probes.get("pretrained"), probes.get("raw pixels")
    result["target"] = "teacher (EMA) linear probe > raw pixels linear probe"
    result["target_met"] = bool(teacher and raw and teacher["probe_acc"] > raw["probe_acc"])
    nan = {"probe_acc": float("nan")}
    print(f"learning run: teacher linear probe {(teacher or nan)['probe_acc']:.4f} vs raw pixels "
          f"{(raw or nan)['probe_acc']:.4f}: {'met' if result['target_met'] else 'NOT met'}")
    return finish()


if __name__ == "__main__":
    main()
