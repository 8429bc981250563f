"""Experiments on a trained Gated I-JEPA (behind `python -m simple_ijepa.gate_experiments`).

On `num_batches` seeded-random batches of a split, with evaluation transforms and the model in
eval mode (deterministic gates), one pass computes:

1. Gate map and open fractions: P(open) = P(z > 0) per token (the closed form the penalty uses),
   averaged over images -> avg_gate_map.pt [g, g] (+ .png); its per-image mean -> open_fracs.npy
   [n] (+ histogram).
2. Noise vs real: the same open fraction for each image and for Gaussian noise with exactly that
   image's per-channel mean and std (in the normalised input space) -> noise_vs_real_stats.pt (+ .png).
3. Random-gate ablation, each scored with the training prediction loss (model.loss over all
   tokens, the teacher on the full image, as in `GatedIJEPA.forward`):
     learned   the model's gates;
     random    the same per-image gate values at random positions (a per-image shuffle of z, so
               the open fraction and gate mass match exactly);
     all_open  z = 1 everywhere
   -> random_gate_ablation_stats.pt (+ .png).
4. Encoder FLOPs per image (analysis/flops.py) with the closed tokens physically dropped after the
   gate, as `GatedIJEPA.encode_pruned` does, against the full encoder (printed and returned).
"""
from __future__ import annotations

import os

import numpy as np
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf
from torch.utils.data import DataLoader

from ..checkpoints import TRAIN_FORMAT, load_weights, read_checkpoint
from ..config import TrainConfig
from ..data import collate_batch, eval_transform
from ..errors import CheckpointError
from ..models import build_model, model_class
from .flops import encoder_flops
from .plots import bars, heatmap, histogram

OUTPUT_FILES = ("avg_gate_map.pt", "avg_gate_map.png", "open_fracs.npy", "open_fracs_hist.png",
                "noise_vs_real_stats.pt", "noise_vs_real_open_frac.png",
                "random_gate_ablation_stats.pt", "random_gate_ablation_losses.png")
ABLATIONS = ("learned", "random", "all_open")


def load_gated_model(ckpt_path: str, device: torch.device | str = "cpu"):
    """(GatedIJEPA in eval mode on `device`, its full TrainConfig) from a gated training checkpoint."""
    state = read_checkpoint(ckpt_path)
    if state["format"] != TRAIN_FORMAT:
        raise CheckpointError(f"{ckpt_path} is not a simple-ijepa training checkpoint. Pass the training "
                              "checkpoint of a gated run (training_model_gated_ddp.pth), not an encoder file.")
    if not model_class(state["variant"]).has_gates:
        raise CheckpointError(f"{ckpt_path} is a variant={state['variant']} checkpoint; gate experiments need a "
                              "Gated I-JEPA one (training_model_gated_ddp.pth from a run with variant=gated).")
    try:
        cfg = OmegaConf.merge(OmegaConf.structured(TrainConfig), state["config"])
        model = build_model(cfg)
    except Exception as e:  # noqa: BLE001 - a config that does not build the model it saved
        raise CheckpointError(f"Checkpoint {ckpt_path!r}: field `config` does not describe a model this version "
                              f"can build ({type(e).__name__}: {e}).") from None
    load_weights(model, state["model"], ckpt_path, "model")
    return model.to(device).eval(), cfg


def matched_noise(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Gaussian noise [B, C, H, W] whose per-image, per-channel mean and std equal those of `images`."""
    eps = torch.randn(images.shape, generator=generator, device=images.device)
    eps = (eps - eps.mean(dim=(2, 3), keepdim=True)) / eps.std(dim=(2, 3), keepdim=True)
    return images.mean(dim=(2, 3), keepdim=True) + images.std(dim=(2, 3), keepdim=True) * eps


def per_image_loss(pred: torch.Tensor, target: torch.Tensor, kind: str) -> torch.Tensor:
    """`regression_loss` of each image: [B, N, D] x 2 -> [B]; its mean is the batch's training loss."""
    fn = F.smooth_l1_loss if kind == "smooth_l1" else F.mse_loss
    return fn(pred.float(), target.float(), reduction="none").mean(dim=(1, 2))


def _batches(dataset, batch_size: int, num_batches: int, num_workers: int, seed: int = 0):
    n = min(len(dataset), batch_size * num_batches)
    order = np.random.RandomState(seed).permutation(len(dataset))[:n].tolist()
    return DataLoader(dataset, batch_size=batch_size, sampler=order, collate_fn=collate_batch,
                      num_workers=num_workers)


@torch.no_grad()
def run_gate_experiments(model, cfg, dataset, out_dir: str, batch_size: int = 256, num_batches: int = 50,
                         num_workers: int = 0, seed: int = 0) -> dict:
    """Run the experiments of this module's docstring, write OUTPUT_FILES into out_dir, return a summary."""
    model.eval()
    device = next(model.parameters()).device
    size, grid = cfg.model.image_size, model.encoder.config.grid
    gen = torch.Generator(device=device).manual_seed(seed)
    map_sum = torch.zeros(grid * grid, dtype=torch.float64)
    real, noise, hard, kept = [], [], [], []
    losses = {name: [] for name in ABLATIONS}
    for images_u8, _ in _batches(dataset, batch_size, num_batches, num_workers, seed):
        x = eval_transform(images_u8.to(device), size)
        target = model.teacher_features(x)
        learned = model.encode(x)
        p_open = model.gate.prob_open(learned.log_alpha)  # [B, N]
        map_sum += p_open.double().sum(dim=0).cpu()
        real.append(p_open.mean(dim=1))
        hard.append((learned.z > 0).float().mean(dim=1))
        kept.append((learned.z > 0).sum(dim=1))
        noise.append(model.gate.prob_open(model.encode(matched_noise(x, gen)).log_alpha).mean(dim=1))
        shuffle = torch.rand(learned.z.shape, generator=gen, device=device).argsort(dim=1)
        gates = {"learned": None, "random": learned.z.gather(1, shuffle), "all_open": torch.ones_like(learned.z)}
        for name, z in gates.items():
            tokens = learned.tokens if z is None else model.encode(x, z=z).tokens
            losses[name].append(per_image_loss(model.predict(tokens), target, cfg.model.loss).cpu())

    real, noise, hard = (torch.cat(v).float().cpu() for v in (real, noise, hard))
    kept = torch.cat(kept).cpu()
    losses = {name: torch.cat(v) for name, v in losses.items()}
    n = len(real)
    os.makedirs(out_dir, exist_ok=True)

    def path(name: str) -> str:
        return os.path.join(out_dir, name)

    avg_map = (map_sum / n).float().view(grid, grid)
    torch.save(avg_map, path("avg_gate_map.pt"))
    heatmap(avg_map.numpy(), path("avg_gate_map.png"), f"Average P(open) over {n} images (mean {avg_map.mean():.3f})",
            "P(open)", xlabel="patch column", ylabel="patch row")  # colour range = the map's own range
    np.save(path("open_fracs.npy"), real.numpy())
    histogram(real.numpy(), path("open_fracs_hist.png"), "Open fraction per image", "mean P(open)")

    nvr = {"real_open_frac_mean": real.mean().item(), "real_open_frac_std": real.std().item(),
           "noise_open_frac_mean": noise.mean().item(), "noise_open_frac_std": noise.std().item(),
           "real_open_fracs": real, "noise_open_fracs": noise, "num_samples": n,
           "definition": "per-image mean P(z > 0); noise = Gaussian with each image's per-channel mean and std"}
    torch.save(nvr, path("noise_vs_real_stats.pt"))
    bars(["real", "noise"], [nvr["real_open_frac_mean"], nvr["noise_open_frac_mean"]],
         [nvr["real_open_frac_std"], nvr["noise_open_frac_std"]], path("noise_vs_real_open_frac.png"),
         "Open fraction: real images vs matched noise", "mean P(open)")

    abl = {f"{name}_loss_{stat}": getattr(losses[name], stat)().item()
           for name in ABLATIONS for stat in ("mean", "std")}
    abl.update({"per_image_losses": losses, "open_frac_mean": hard.mean().item(), "open_frac_std": hard.std().item(),
                "num_samples": n, "loss": cfg.model.loss,
                "definition": "training prediction loss (model.loss, all tokens) per image; random = the learned "
                              "gate values shuffled within each image; open_frac = share of eval gates with z > 0"})
    torch.save(abl, path("random_gate_ablation_stats.pt"))
    bars(list(ABLATIONS), [abl[f"{a}_loss_mean"] for a in ABLATIONS], [abl[f"{a}_loss_std"] for a in ABLATIONS],
         path("random_gate_ablation_losses.png"), "Prediction loss by gates", f"{cfg.model.loss} loss")

    vit, k = model.encoder.config, model.gate_layer_index
    full = encoder_flops(vit)
    pruned = float(np.mean([encoder_flops(vit, k, int(c), model.gate_location) for c in kept]))
    return {"num_samples": n, "open_frac_mean": real.mean().item(), "open_frac_std": real.std().item(),
            "eval_open_frac_mean": hard.mean().item(), "noise_open_frac_mean": nvr["noise_open_frac_mean"],
            **{f"{a}_loss_mean": abl[f"{a}_loss_mean"] for a in ABLATIONS},
            "encoder_gflops_full": full / 1e9, "encoder_gflops_pruned": pruned / 1e9,
            "encoder_flops_saved_frac": 1.0 - pruned / full, "files": [path(f) for f in OUTPUT_FILES]}


def format_summary(s: dict, gate: str) -> str:
    return "\n".join([
        f"Gate experiments on {s['num_samples']} images (gate: {gate}):",
        f"  open fraction, mean P(open): {s['open_frac_mean']:.4f} +- {s['open_frac_std']:.4f}; "
        f"eval gates open (z > 0): {s['eval_open_frac_mean']:.4f}",
        f"  matched noise, mean P(open): {s['noise_open_frac_mean']:.4f}",
        "  prediction loss (training definition): " + ", ".join(
            f"{a} {s[f'{a}_loss_mean']:.4f}" for a in ABLATIONS),
        f"  encoder forward per image: {s['encoder_gflops_full']:.4f} GFLOPs full, "
        f"{s['encoder_gflops_pruned']:.4f} with closed tokens dropped after the gate "
        f"({100 * s['encoder_flops_saved_frac']:.1f}% saved)",
        "  wrote: " + ", ".join(os.path.basename(f) for f in s["files"]),
    ])
