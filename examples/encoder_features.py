"""Features of your own images from an encoder file: one vector per image, saved as .npz.

    python examples/encoder_features.py runs/demo/encoder_ddp.pth my_images/*.png --out features.npz

The encoder sees each image as in the probes: resized to its image size, normalised, mean-pooled tokens.
"""
import argparse

import numpy as np
import torch
from PIL import Image

from simple_ijepa import load_encoder
from simple_ijepa.data.augment import eval_transform


def image_features(encoder, paths: list[str], batch_size: int = 64) -> np.ndarray:
    """[len(paths), D] float32: each image's tokens [N, D] from the encoder, averaged."""
    size, features = encoder.config.image_size, []
    for start in range(0, len(paths), batch_size):
        images = [np.asarray(Image.open(p).convert("RGB").resize((size, size)))
                  for p in paths[start:start + batch_size]]
        batch = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2)  # uint8 [B, 3, S, S]
        with torch.no_grad():
            tokens = encoder(eval_transform(batch, size))  # [B, N, D]
        features.append(tokens.mean(dim=1).numpy())
    return np.concatenate(features)


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("encoder", help="encoder_*.pth / .safetensors, or a training checkpoint (its EMA teacher)")
    p.add_argument("images", nargs="+", help="image files (anything Pillow opens)")
    p.add_argument("--out", default="features.npz")
    args = p.parse_args()
    encoder = load_encoder(args.encoder)  # a VisionTransformer in eval mode, on the CPU
    features = image_features(encoder, args.images)
    np.savez(args.out, features=features, paths=np.array(args.images))
    print(f"{features.shape[0]} images -> {features.shape[1]}-d features in {args.out}")
