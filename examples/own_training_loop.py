"""I-JEPA in your own training loop, on your own Dataset: model, masks, loss and EMA, nothing else.

    python examples/own_training_loop.py --steps 200

`simple_ijepa.train(cfg)` does all of this and more (schedules, checkpoints, resume, DDP, probes);
here are the four parts it is built from, on scikit-learn's 8x8 digits as "your" images.
"""
import argparse
import random

import torch
from sklearn.datasets import load_digits
from torch.utils.data import DataLoader, Dataset

from simple_ijepa import build_masks, build_model, make_config, save_encoder
from simple_ijepa.data.augment import random_resized_crop


class MyImages(Dataset):
    """Any Dataset that returns uint8 images [C, H, W] (C = 1 or 3) works."""

    def __init__(self):
        self.images = torch.from_numpy(load_digits().images * 16).clamp(0, 255).to(torch.uint8)[:, None]

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return self.images[i]


def main(steps: int, out: str | None) -> float:
    cfg = make_config(["experiment=cpu_small"])  # any key=value override, as on the command line
    torch.manual_seed(0)
    model = build_model(cfg)  # IJEPA: student encoder, EMA teacher, predictor
    grid = cfg.model.image_size // cfg.model.patch_size
    masks = build_masks("multiblock", grid, cfg.model.num_targets, cfg.mask)  # the paper's multi-block masks
    optimizer = torch.optim.AdamW(model.optimizer_groups(weight_decay=0.04), lr=1e-3)
    loader = DataLoader(MyImages(), batch_size=64, shuffle=True, drop_last=True)
    rng, step = random.Random(0), 0
    while step < steps:
        for images in loader:
            views = random_resized_crop(images, cfg.model.image_size, scale=tuple(cfg.data.crop_scale),
                                        hflip=cfg.data.hflip)  # [B, 3, S, S]
            context_idx, target_idx, context_valid = masks(len(views), rng, torch.default_generator)
            loss, stats = model(views, context_idx, target_idx, context_valid)  # predict the teacher's tokens
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            model.update_teacher(momentum=0.998)  # teacher <- EMA of the student
            step += 1
            if step % 50 == 0 or step == steps:
                print(f"step {step}: loss {loss.item():.4f}")
            if step == steps:
                break
    if out:
        save_encoder(model.target_encoder, out)  # then: python -m simple_ijepa.evaluate --ckpt_path OUT
    return loss.item()


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--out", default=None, help="save the teacher as an encoder file here")
    args = p.parse_args()
    main(args.steps, args.out)
