"""Benchmark (not a test): Gated I-JEPA on Fashion-MNIST with the `cpu_small` preset. Mean +- std over seeds.

    python bench/gated_fashion_mnist.py                                   # README defaults, seeds 0 1 2
    python bench/gated_fashion_mnist.py model.gate_layer_index=1 model.gate_location=attn --json rows.jsonl

For each seed: pretrain `experiment=cpu_small variant=gated` on Fashion-MNIST's 60k training images
for a fixed number of steps, then on its 10k test images (eval mode, deterministic gates):
  - the gate experiments of `python -m simple_ijepa.gate_experiments` (--num_batches batches of 256):
    open fraction P(z > 0) on real images and on matched noise, the share of eval gates open, the
    prediction loss with the learned, shuffled and all-open gates, and the encoder FLOPs that
    `encode_pruned` saves;
  - linear + 20-NN probes (fit on --train_samples training images, scored on the 10k test images) of
    the student with its gates ("gated"), with every gate open ("all_open"), of the EMA teacher, and
    of the same encoder at its initial weights ("random init", the run's seed).
Prints one line per seed, then mean +- std; `--json` appends the summary to a file (the README's
gated table is built from those lines by bench/gated_table.sh).
"""
from __future__ import annotations

import json
import os
import sys
import tempfile
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from common import mean_std, seeded_bench_parser  # noqa: E402

from simple_ijepa.analysis.gate_analysis import load_gated_model, run_gate_experiments  # noqa: E402
from simple_ijepa.analysis.run_plots import read_metrics  # noqa: E402
from simple_ijepa.checkpoints import checkpoint_names  # noqa: E402
from simple_ijepa.data import build_dataset  # noqa: E402
from simple_ijepa.evaluation import LinearProbe  # noqa: E402
from simple_ijepa.models.vit import VisionTransformer  # noqa: E402
from simple_ijepa.training.trainer import make_config, train  # noqa: E402

PROBES = ("gated", "all_open", "teacher", "random init")
GATE_STATS = ("open_frac_mean", "noise_open_frac_mean", "eval_open_frac_mean", "learned_loss_mean",
              "random_loss_mean", "all_open_loss_mean", "encoder_flops_saved_frac")


def run_seed(args, seed: int, work: str, evaluator: LinearProbe) -> dict:
    save_dir = os.path.join(work, f"seed{seed}")
    cfg = make_config(["experiment=cpu_small", "variant=gated", "data.dataset_name=fashion_mnist",
                       f"data.dataset_path={args.data}", f"seed={seed}", f"optim.max_steps={args.steps}",
                       "eval.enabled=false", f"logging.save_model_dir={save_dir}"] + args.overrides)
    t0 = time.perf_counter()
    train(cfg)
    minutes = (time.perf_counter() - t0) / 60
    last = read_metrics(save_dir)[-1]
    model, cfg = load_gated_model(os.path.join(save_dir, checkpoint_names("gated")[0]))
    test = build_dataset("fashion_mnist", args.data, "test", image_size=cfg.model.image_size)
    gates = run_gate_experiments(model, cfg, test, os.path.join(save_dir, "gate_analysis"), 256, args.num_batches)
    torch.manual_seed(seed)  # the trainer seeds the same way: this is the run's starting encoder
    fns = dict(model.probe_feature_fns())
    fns["teacher"] = model.target_encoder
    fns["random init"] = VisionTransformer(model.encoder.config)
    result = {"seed": seed, "train_minutes": minutes, **{k: gates[k] for k in GATE_STATS},
              **{f"final {k}": last[k] for k in ("loss_pred", "open_frac", "teacher_rankme") if k in last}}
    for name in PROBES:
        r = evaluator.evaluate(fns[name], name=name)
        result[f"{name} linear"], result[f"{name} knn"] = r["probe_acc"], r["knn_acc"]
    return result


def main() -> None:
    p = seeded_bench_parser(__doc__.split("\n\n")[0], classifier="logistic")
    p.add_argument("--num_batches", type=int, default=8, help="test batches of 256 for the gate experiments")
    args = p.parse_args()

    work = args.out_dir or tempfile.mkdtemp(prefix="gated_bench_")
    image_size = make_config(["experiment=cpu_small"] + args.overrides).model.image_size
    evaluator = LinearProbe(image_size, dataset_path=args.data, dataset_name="fashion_mnist",
                          classifier=args.classifier, max_train_samples=args.train_samples, device="cpu")
    rows = []
    for seed in args.seeds:
        rows.append(run_seed(args, seed, work, evaluator))
        r = rows[-1]
        print(f"seed {seed}: {args.steps} steps in {r['train_minutes']:.1f} min; open {r['open_frac_mean']:.3f} "
              f"(noise {r['noise_open_frac_mean']:.3f}, eval {r['eval_open_frac_mean']:.3f}); loss learned/shuffled/"
              f"all-open {r['learned_loss_mean']:.4f}/{r['random_loss_mean']:.4f}/{r['all_open_loss_mean']:.4f}; "
              + ", ".join(f"{e} {r[e + ' linear']:.4f}/{r[e + ' knn']:.4f}" for e in PROBES), flush=True)

    summary = {"name": args.name or " ".join(args.overrides) or "defaults", "overrides": args.overrides,
               "steps": args.steps, "seeds": args.seeds, "classifier": args.classifier}
    for key in rows[0]:
        if key != "seed":
            summary[key] = mean_std([r[key] for r in rows])
    for other in ("all_open", "random init"):
        summary[f"gated - {other} linear"] = mean_std([r["gated linear"] - r[f"{other} linear"] for r in rows])
    summary["real - noise open"] = mean_std([r["open_frac_mean"] - r["noise_open_frac_mean"] for r in rows])
    summary["per_seed"] = rows
    print(f"\nFashion-MNIST, experiment=cpu_small variant=gated {' '.join(args.overrides)}: {args.steps} steps x "
          f"{len(args.seeds)} seeds (mean +- std over seeds)")
    for key in GATE_STATS + tuple(f"{e} {m}" for e in PROBES for m in ("linear", "knn")) + (
            "gated - all_open linear", "gated - random init linear", "real - noise open"):
        m, s = summary[key]
        print(f"  {key:<30}{m:>9.4f} +- {s:.4f}")
    if args.json:
        with open(args.json, "a") as f:
            f.write(json.dumps(summary) + "\n")


if __name__ == "__main__":
    main()
