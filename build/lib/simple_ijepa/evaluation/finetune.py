"""Fine-tuning a pretrained encoder on a labelled dataset: the whole network with layer-wise LR decay,
or (`linear=True`) a linear head on the frozen encoder (the command: simple_ijepa/cli/finetune.py).

Classifier = encoder tokens -> mean over tokens -> BatchNorm (no affine) -> Linear: the head of MAE's
linear probe (He et al. 2022), which standardises each feature over the batch as the scikit-learn
probe standardises over the train split. Training crops and flips run
on the device, as in pretraining (`data.augment.random_resized_crop`); the test split goes through
the evaluation view (`eval_transform`). AdamW, linear warm-up for the first epoch then cosine to 0,
bf16 autocast on CUDA, top-1 on the test split after every epoch.

Layer-wise LR decay (BEiT, Bao et al. 2022; as MAE fine-tunes): the head and the encoder's final
LayerNorm learn at `lr`, block i of D (0-based) at lr * decay^(D - i), the patch embedding at
lr * decay^(D + 1), so early layers move least.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Optional

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..data import build_dataset, eval_transform, random_resized_crop
from ..models.vit import VisionTransformer
from ..training.schedules import learning_rate
from ..utils.progress import progress
from .features import subset_indices


class Classifier(nn.Module):
    """encoder [B, 3, S, S] -> tokens [B, N, D] -> mean -> BatchNorm -> Linear -> logits [B, classes]."""

    def __init__(self, encoder: VisionTransformer, num_classes: int):
        super().__init__()
        self.encoder = encoder
        self.norm = nn.BatchNorm1d(encoder.config.dim, affine=False, eps=1e-6)
        self.head = nn.Linear(encoder.config.dim, num_classes)
        nn.init.trunc_normal_(self.head.weight, std=0.02)
        nn.init.zeros_(self.head.bias)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.norm(self.encoder(images).mean(dim=1)))


@dataclass
class FinetuneConfig:
    epochs: int = 10
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.05
    layer_decay: float = 0.75
    linear: bool = False  # train the head only (frozen encoder)
    crop_scale: tuple[float, float] = (0.3, 1.0)
    hflip: bool = True
    seed: int = 0
    max_train_samples: Optional[int] = None  # a fixed subset (seed 0, as the probe's): low-label fine-tuning
    max_test_samples: Optional[int] = None


def parameter_groups(model: Classifier, cfg: FinetuneConfig) -> list[dict]:
    """AdamW groups: layer-wise LR scale, no weight decay on biases, norms and positions."""
    depth = len(model.encoder.blocks)
    groups: dict[tuple[float, float], list] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if name.startswith("encoder.blocks."):
            scale = cfg.layer_decay ** (depth - int(name.split(".")[2]))
        elif name.startswith("encoder.") and not name.startswith("encoder.norm."):
            scale = cfg.layer_decay ** (depth + 1)  # patch embedding (and any other input-side tensor)
        else:
            scale = 1.0  # the final LayerNorm and the head: BEiT's and MAE's last layer id
        decay = 0.0 if p.ndim < 2 else cfg.weight_decay
        groups.setdefault((scale, decay), []).append(p)
    return [{"params": ps, "lr_scale": s, "weight_decay": d} for (s, d), ps in groups.items()]


@torch.no_grad()
def top1(model: nn.Module, dataset, image_size: int, device: torch.device, batch_size: int = 256,
         indices: np.ndarray | None = None) -> float:
    """Top-1 accuracy on `dataset`, or on its `indices` (unreadable images, label < 0, left out)."""
    model.eval()
    indices = np.arange(len(dataset)) if indices is None else indices
    correct = counted = 0
    for start in range(0, len(indices), batch_size):
        images, labels = dataset.__getitems__(indices[start:start + batch_size].tolist())
        logits = model(eval_transform(images.to(device), image_size))
        correct += int(((logits.argmax(1).cpu() == labels) & (labels >= 0)).sum())
        counted += int((labels >= 0).sum())
    return correct / max(counted, 1)


def finetune(encoder: VisionTransformer, dataset_name: str, dataset_path: str, cfg: FinetuneConfig,
             device: torch.device | str = "cpu", download: bool = False) -> tuple[Classifier, list[float]]:
    """Fine-tune `encoder` (in place) with a new head on `dataset_name`'s train split; returns the
    classifier and the test top-1 after each epoch."""
    device = torch.device(device)
    size = encoder.config.image_size
    train_set = build_dataset(dataset_name, dataset_path, "train", download, size)
    test_set = build_dataset(dataset_name, dataset_path, "test", download, size)
    torch.manual_seed(cfg.seed)
    model = Classifier(encoder, train_set.num_classes).to(device)
    if cfg.linear:
        model.encoder.requires_grad_(False)
    optimizer = torch.optim.AdamW(parameter_groups(model, cfg), lr=cfg.lr)
    train_idx = subset_indices(len(train_set), cfg.max_train_samples)
    test_idx = subset_indices(len(test_set), cfg.max_test_samples)
    steps_per_epoch = max(1, len(train_idx) // cfg.batch_size)
    total, warmup = cfg.epochs * steps_per_epoch, steps_per_epoch
    generator = torch.Generator(device=device).manual_seed(cfg.seed)
    order = np.random.RandomState(cfg.seed)
    amp = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")
    bar, step, history = progress(total, "finetune"), 0, []
    for _ in range(cfg.epochs):
        model.train()
        if cfg.linear:
            model.encoder.eval()
        perm = train_idx[order.permutation(len(train_idx))]
        for b in range(steps_per_epoch):
            images, labels = train_set.__getitems__(perm[b * cfg.batch_size:(b + 1) * cfg.batch_size].tolist())
            images, labels = images[labels >= 0], labels[labels >= 0]  # (unreadable folder images: -2)
            x = random_resized_crop(images.to(device), size, cfg.crop_scale, hflip=cfg.hflip, generator=generator)
            lr = learning_rate(step, total, cfg.lr, 0.0, warmup)
            for group in optimizer.param_groups:
                group["lr"] = lr * group["lr_scale"]
            with amp:
                loss = F.cross_entropy(model(x).float(), labels.to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            bar.update(1)
        history.append(top1(model, test_set, size, device, indices=test_idx))
        bar.set_postfix({"loss": f"{loss.item():.3f}", "top1": f"{history[-1]:.4f}"})
    bar.close()
    return model, history


def save_classifier(model: Classifier, path: str, cfg: FinetuneConfig, extra: dict) -> None:
    """The classifier's weights as safetensors, its configuration (encoder shape, classes, recipe,
    results) in the file's metadata as JSON."""
    import json

    from ..checkpoints import save_safetensors

    meta = {"format": "simple-ijepa/classifier-v1", "vit_config": json.dumps(asdict(model.encoder.config)),
            "num_classes": str(model.head.out_features), "finetune": json.dumps(asdict(cfg)),
            "results": json.dumps(extra)}
    save_safetensors(model.state_dict(), path, meta)
