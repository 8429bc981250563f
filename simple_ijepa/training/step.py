"""One optimisation step, shared by the trainer and `bench/throughput.py`.

`TrainStep.inputs(images_u8, step)`: uint8 batch -> device -> crop/flip -> (+ masks if the model needs them).
`TrainStep(inputs, step)`: forward under autocast -> backward -> AdamW -> teacher copy / EMA; with
optim.accum_steps = k, forward + backward run on k micro-batches of the batch before the one update.
Everything random is seeded from (seed, rank, step, stream): the same step always sees the same batch
view, and the streams (crops and flips, mask sizes, mask positions, the model's gate noise) are
independent of each other: each has its own seed, not one seed shared by generators that would
then draw the same numbers.

The hot path never waits for the device: no `.item()`, no `bool(tensor)`, no host copy of a
device tensor. Masks are built on the host (cheap, vectorised) and sent with asynchronous copies
from pinned memory; the learning rate and EMA momentum are host floats computed from the step.
"""
from __future__ import annotations

import contextlib
import logging
import random

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel as DDP

from ..data import random_resized_crop
from ..masks import build_masks
from .schedules import learning_rate, teacher_update, weight_decay

log = logging.getLogger("simple_ijepa")


STREAMS = ("augment", "mask_sizes", "mask_positions", "model")


def stream_seed(seed: int, rank: int, step: int, stream: str) -> int:
    """A 63-bit seed for one random stream of one step on one rank: numpy's SeedSequence hashes the
    four numbers together, so neighbouring steps, ranks and streams give unrelated seeds."""
    words = np.random.SeedSequence([seed, rank, step, STREAMS.index(stream)]).generate_state(2, np.uint32)
    return (int(words[0]) << 31) ^ int(words[1])


def autocast(device: torch.device, precision: str):
    if precision == "fp32":
        return torch.autocast(device.type, enabled=False)
    return torch.autocast(device.type, dtype=torch.float16 if precision == "fp16" else torch.bfloat16)


def effective_precision(requested: str, device: torch.device) -> str:
    """The precision a run on `device` really uses: mixed precision is a CUDA feature here, so a
    CPU run trains in fp32 (with one log line saying so)."""
    if device.type != "cuda" and requested != "fp32":
        log.info(f"Precision {requested} requested (optim.fp16_precision / optim.precision), but this run is on "
                 f"the {device.type.upper()}: training in fp32 (mixed precision is a CUDA feature here).")
        return "fp32"
    return requested


def compile_net(net: torch.nn.Module) -> torch.nn.Module:
    """`torch.compile` for training. The mask lengths that change between steps (Kt; Kc without a
    context budget) are marked dynamic by `TrainStep`, so one compiled graph serves every length (one
    on the CPU; on an H200 inductor made three, one per alignment of Kt: docs/performance.md#gpu).

    Inductor's mix-order reduction (one kernel for a LayerNorm backward's row and column sums) is
    switched off: with these symbolic lengths its generated backward failed on an H200 (torch 2.11:
    "shape '[1776, 384]' is invalid for input of size 1296", pytorch/pytorch#178080), and it has
    computed wrong gradients elsewhere (#193061)."""
    from torch._inductor import config as inductor_config
    options = {"triton.mix_order_reduction": False} if hasattr(inductor_config.triton, "mix_order_reduction") else {}
    return torch.compile(net, options=options)


def make_adamw(groups: list[dict], lr: float) -> torch.optim.AdamW:
    """AdamW, fused (one pass over each parameter per step) where this torch supports the device:
    CUDA, and the CPU since torch 2.4, where it is ~5x faster than the per-tensor loop; else the default."""
    try:
        return torch.optim.AdamW(groups, lr=lr, fused=True)
    except RuntimeError:  # e.g. the CPU on torch < 2.4
        return torch.optim.AdamW(groups, lr=lr)


class TrainStep:
    def __init__(self, cfg, model, device: torch.device, precision: str, total_steps: int, rank: int = 0,
                 net=None):
        """model: the JEPA (owns optimiser groups and the teacher); net: what runs the forward
        (the model, its DDP wrapper, or a compiled version of either)."""
        self.cfg, self.model, self.net = cfg, model, net if net is not None else model
        self.device, self.precision, self.total_steps, self.rank = device, precision, total_steps, rank
        self.warmup_steps = int(cfg.optim.warmup_fraction * total_steps)
        decay = cfg.optim.decay_fraction
        self.decay_steps = None if decay is None else round(decay * total_steps)
        self.optimizer = make_adamw(model.optimizer_groups(cfg.optim.weight_decay), cfg.optim.learning_rate)
        self.scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
        # Under optim.compile the mask lengths that change between steps are compiled as symbolic
        # sizes (one graph for every step, not a recompile per length): the target block area Kt
        # (drawn per batch, as in the paper) always, the context length Kc only without a budget.
        self.dynamic_masks = bool(cfg.optim.compile)
        if device.type == "cuda":
            # cuDNN's attention builds a new plan for every new sequence length, and the context
            # length changes every step: on an H200 that cost ~0.6 s of host time per step (torch
            # 2.11, bench/gpu_profile.py). Flash / memory-efficient kernels need no plan.
            torch.backends.cuda.enable_cudnn_sdp(False)
        m, mc = cfg.model, cfg.mask
        self.mask_gen = None
        if model.needs_masks:
            self.mask_gen = build_masks(mc.kind, m.image_size // m.patch_size, m.num_targets, mc)
        # The 'meta' device (shape checks, FLOP counts) has no generator: it draws nothing real.
        self.aug_gen = torch.Generator(device=device) if device.type != "meta" else None
        self.mask_torch_gen = torch.Generator()

    def augment(self, images_u8: torch.Tensor, step: int) -> torch.Tensor:
        """The data path: uint8 [B, C, H, W] (host, pinned on CUDA, or device) -> normalised random
        crops [B, 3, S, S] float32 on the device."""
        cfg = self.cfg
        images_u8 = images_u8.to(self.device, non_blocking=True)
        if self.aug_gen is not None:
            self.aug_gen.manual_seed(stream_seed(cfg.seed, self.rank, step, "augment"))
        return random_resized_crop(images_u8, cfg.model.image_size, tuple(cfg.data.crop_scale),
                                   hflip=cfg.data.hflip, generator=self.aug_gen)

    def masks(self, batch_size: int, step: int) -> tuple:
        """(context_idx [B, Kc], target_idx [B, T, Kt], context_valid [B, Kc] bool or None,
        context_tokens int or None) on the device (context padded to the batch's largest count
        unless a budget fixes it; masks/). context_tokens, the number of real context tokens, is
        counted here on the host, so that packing them on the device needs no sync; None under
        optim.compile (which does not pack, and would recompile for every new count).

        Built on the host, pinned and sent with non-blocking copies: three separate tensors rather
        than views of one buffer, so that a compiled model sees no aliased inputs and no storage
        offset that moves with Kc.
        """
        seed, rank = self.cfg.seed, self.rank
        self.mask_torch_gen.manual_seed(stream_seed(seed, rank, step, "mask_positions"))
        masks = self.mask_gen(batch_size, random.Random(stream_seed(seed, rank, step, "mask_sizes")),
                              self.mask_torch_gen)
        valid, accum = masks[2], self.cfg.optim.accum_steps
        count = None
        if valid is not None and not self.dynamic_masks:  # one count per micro-batch (micro_batches)
            count = int(valid.sum()) if accum == 1 else tuple(int(v.sum()) for v in valid.tensor_split(accum))
        if self.device.type == "cuda":
            masks = tuple(None if m is None else m.pin_memory() for m in masks)
        if self.device.type != "cpu":
            masks = tuple(None if m is None else m.to(self.device, non_blocking=True) for m in masks)
        return (*masks, count)

    def inputs(self, images_u8: torch.Tensor, step: int) -> tuple:
        """uint8 [B, C, H, W] -> (images [B, 3, S, S],) or
        (images, context_idx [B, Kc], target_idx [B, T, Kt], context_valid [B, Kc], context_tokens)."""
        images = self.augment(images_u8, step)
        if self.mask_gen is None:
            return (images,)
        return (images, *self.masks(images.shape[0], step))

    def __call__(self, inputs: tuple, step: int) -> tuple[torch.Tensor, dict, float]:
        """One update at 0-based `step`; returns (detached loss, stats, learning rate used). With
        optim.accum_steps > 1 the loss is the batch's (each micro-batch's mean weighted by its share)
        and the stats are the last micro-batch's."""
        cfg = self.cfg
        lr = learning_rate(step, self.total_steps, cfg.optim.learning_rate, cfg.optim.min_lr, self.warmup_steps,
                           self.decay_steps)
        wd = weight_decay(step, self.total_steps, cfg.optim.weight_decay, cfg.optim.weight_decay_end)
        for group in self.optimizer.param_groups:
            group["lr"] = lr * group.get("lr_scale", 1.0)
            if group.get("decay"):  # matrices only (JEPA.optimizer_groups)
                group["weight_decay"] = wd
        if self.dynamic_masks and len(inputs) > 1:
            torch._dynamo.maybe_mark_dynamic(inputs[2], 2)  # Kt
            if inputs[3] is not None:  # padded context: Kc varies too
                torch._dynamo.maybe_mark_dynamic(inputs[1], 1)
                torch._dynamo.maybe_mark_dynamic(inputs[3], 1)
        # Gate noise and SIGReg directions come from the model's generator: same step, same draws.
        self.model.reseed(stream_seed(cfg.seed, self.rank, step, "model"))
        self.optimizer.zero_grad(set_to_none=True)
        chunks = micro_batches(inputs, cfg.optim.accum_steps)
        total = inputs[0].shape[0]
        loss = torch.zeros((), device=self.device)
        for i, chunk in enumerate(chunks):
            # the loss is a mean over the batch: weight each micro-batch's mean by its share of it
            share = chunk[0].shape[0] / total
            with self._sync_grads(i == len(chunks) - 1), autocast(self.device, self.precision):
                micro_loss, stats = self.net(*chunk)
            self.scaler.scale(micro_loss * share).backward()
            loss += micro_loss.detach().float() * share
        if cfg.optim.grad_clip > 0:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.optim.grad_clip)
        self.scaler.step(self.optimizer)  # fused AdamW: the fp16 inf check stays on the device
        self.scaler.update()
        action, momentum = teacher_update(step + 1, self.total_steps, cfg.ema)
        if action == "copy":
            self.model.copy_teacher()
        elif action == "ema":
            self.model.update_teacher(momentum)
        return loss, stats, lr

    def _sync_grads(self, last: bool):
        """DDP all-reduces the gradients on the last micro-batch of a step only (no_sync before it)."""
        ddp = getattr(self.net, "_orig_mod", self.net)  # (under optim.compile: the wrapped module)
        return ddp.no_sync() if not last and isinstance(ddp, DDP) else contextlib.nullcontext()


def micro_batches(inputs: tuple, accum_steps: int) -> list[tuple]:
    """Split one step's inputs (TrainStep.inputs) along the batch into `accum_steps` micro-batches
    (optim.accum_steps; as equal as the batch allows). A context_tokens count per micro-batch
    (a tuple, from `masks`) goes to its own micro-batch; padding stays at the batch's width."""
    if accum_steps == 1:
        return [inputs]
    images, *masks = inputs
    parts = [images.tensor_split(accum_steps)]
    if masks:
        context_idx, target_idx, valid, counts = masks
        parts += [context_idx.tensor_split(accum_steps), target_idx.tensor_split(accum_steps),
                  [None] * accum_steps if valid is None else valid.tensor_split(accum_steps),
                  counts if isinstance(counts, (tuple, list)) else [None] * accum_steps]
    return [chunk for chunk in zip(*parts) if chunk[0].shape[0] > 0]
