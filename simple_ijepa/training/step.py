"""One optimisation step, shared by the trainer and `bench/throughput.py`.

`TrainStep.inputs(images_u8, step)`: uint8 batch -> device -> crop/flip -> (+ masks for baseline).
`TrainStep(inputs, step)`: forward under autocast -> backward -> AdamW -> teacher copy / EMA.
Everything random is seeded from (seed, rank, step): the same step always sees the same batch view.
"""
from __future__ import annotations

import random

import torch

from ..data import random_resized_crop
from ..masking import MultiBlockMaskGenerator
from .schedules import learning_rate, teacher_update


def step_seed(seed: int, rank: int, step: int) -> int:
    return ((seed * 1000 + rank) << 32) + step


def autocast(device: torch.device, precision: str):
    if precision == "fp32":
        return torch.autocast(device.type, enabled=False)
    return torch.autocast(device.type, dtype=torch.float16 if precision == "fp16" else torch.bfloat16)


class TrainStep:
    def __init__(self, cfg, model, device: torch.device, precision: str, total_steps: int, rank: int = 0,
                 net=None):
        """model: the JEPA (owns optimiser groups and the teacher); net: what runs the forward
        (the model, its DDP wrapper, or a compiled version of either)."""
        self.cfg, self.model, self.net = cfg, model, net if net is not None else model
        self.device, self.precision, self.total_steps, self.rank = device, precision, total_steps, rank
        self.warmup_steps = int(cfg.optim.warmup_fraction * total_steps)
        self.optimizer = torch.optim.AdamW(model.optimizer_groups(cfg.optim.weight_decay),
                                           lr=cfg.optim.learning_rate, fused=device.type == "cuda")
        self.scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
        m, mc = cfg.model, cfg.mask
        self.mask_gen = None
        if cfg.variant == "baseline":
            self.mask_gen = MultiBlockMaskGenerator(m.image_size // m.patch_size, m.num_targets, mc.target_scale,
                                                    mc.target_aspect_ratio, mc.context_scale, mc.min_context)
        self.aug_gen = torch.Generator(device=device)
        self.mask_torch_gen = torch.Generator()

    def inputs(self, images_u8: torch.Tensor, step: int) -> tuple:
        """uint8 [B, C, H, W] -> (images [B, 3, S, S],) or (images, context_idx [B, Kc], target_idx [B, T, Kt])."""
        cfg, seed = self.cfg, step_seed(self.cfg.seed, self.rank, step)
        images_u8 = images_u8.to(self.device, non_blocking=True)
        self.aug_gen.manual_seed(seed)
        images = random_resized_crop(images_u8, cfg.model.image_size, tuple(cfg.data.crop_scale),
                                     hflip=cfg.data.hflip, generator=self.aug_gen)
        if self.mask_gen is None:
            return (images,)
        self.mask_torch_gen.manual_seed(seed)
        ctx, tgt = self.mask_gen(images.shape[0], random.Random(seed), self.mask_torch_gen)
        return images, ctx.to(self.device, non_blocking=True), tgt.to(self.device, non_blocking=True)

    def __call__(self, inputs: tuple, step: int) -> tuple[torch.Tensor, dict, float]:
        """One update at 0-based `step`; returns (detached loss, stats, learning rate used)."""
        cfg = self.cfg
        lr = learning_rate(step, self.total_steps, cfg.optim.learning_rate, cfg.optim.min_lr, self.warmup_steps)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        with autocast(self.device, self.precision):
            loss, stats = self.net(*inputs)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if cfg.optim.grad_clip > 0:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.optim.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        action, momentum = teacher_update(step + 1, self.total_steps, cfg.ema)
        if action == "copy":
            self.model.copy_teacher()
        elif action == "ema":
            self.model.update_teacher(momentum)
        return loss.detach(), stats, lr
