"""Feature pictures of a saved encoder: PCA colour maps of its patch tokens and nearest neighbours.

    python -m simple_ijepa.visualize --ckpt_path models/encoder_ddp.pth --dataset_name stl10 \\
        --dataset_path ./data --out_dir ./pictures

`--ckpt_path` takes what `evaluate` takes: an encoder file (encoder_*.pth / .safetensors) or a
training checkpoint (its EMA teacher; `--student` for the student). A Gated I-JEPA training
checkpoint is shown through its student with the learned (eval, deterministic) gates. Writes:

  pca_features.png  --num_images test images (a seeded pick) above their patch features as colours:
                    the first 3 principal components of the patch tokens of all these images
                    together, each min-max scaled to [0, 1] and shown as red, green, blue (as
                    DINOv2's feature maps). Gated: a third row scales each patch by its gate z
                    (closed, z = 0: black; open, z = 1: as it is), titled with the open count
                    (z > 0: the tokens `encode_pruned` keeps) and the mean gate.
  retrieval.png     for --num_queries test images (a seeded pick), the --k most similar images of
                    the probe's train split (a seeded bank of --max_train_samples): cosine
                    similarity of mean-pooled features centred on the bank's mean, as the k-NN
                    monitor (gated: the gate-weighted mean of the "gated" probe). Titles give the
                    labels and similarities; a neighbour's title is green when its label is the query's.

Every panel is 125 x 125 pixels: a picture of R rows and C columns is C * 125 x R * 125.
"""
from __future__ import annotations

import argparse
import os

from ..analysis.feature_pictures import pca_picture, retrieval_picture
from ..data import build_dataset
from ..errors import run_command
from ..evaluation.reference import load_checkpoint
from . import checks
from .checks import positive_int
from .evaluate import add_source_args, dataset_defaults


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = checks.parser("python -m simple_ijepa.visualize", __doc__.split("\n\n")[0])
    add_source_args(p)
    p.add_argument("--out_dir", default="./pictures", help="where pca_features.png and retrieval.png go")
    p.add_argument("--num_images", type=positive_int, default=8, help="test images in pca_features.png")
    p.add_argument("--num_queries", type=positive_int, default=4, help="query images in retrieval.png")
    p.add_argument("--k", type=positive_int, default=5, help="neighbours shown per query")
    p.add_argument("--max_train_samples", type=positive_int, default=2000,
                   help="retrieval bank: a seeded subset of this many train images")
    p.add_argument("--batch_size", type=positive_int, default=256, help="images per forward pass")
    p.add_argument("--seed", type=checks.seed, default=0, help="which images are picked")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, str]:
    """Run the command; returns {"pca_features": path, "retrieval": path} of the PNGs written."""
    args = parse_args(argv)
    checks.output_dir(args.out_dir, "--out_dir", inputs=[args.ckpt_path])
    checks.student_source(args.ckpt_path, args.student)
    dataset_defaults(args)
    gated, encoder = load_checkpoint(args.ckpt_path, args.student, args.device)
    net = gated if gated is not None else encoder
    size = (gated.encoder if gated is not None else encoder).config.image_size
    train_set = build_dataset(args.dataset_name, args.dataset_path, "train", args.download, size)
    test_set = build_dataset(args.dataset_name, args.dataset_path, "test", args.download, size)
    os.makedirs(args.out_dir, exist_ok=True)
    paths = {name: os.path.join(args.out_dir, f"{name}.png") for name in ("pca_features", "retrieval")}
    pca_picture(net, test_set, size, args.num_images, args.seed, args.device, paths["pca_features"])
    retrieval_picture(net, train_set, test_set, size, args.num_queries, args.k, args.max_train_samples,
                      args.batch_size, args.seed, args.device, paths["retrieval"])
    print("wrote " + ", ".join(paths.values()))
    return paths


def cli() -> None:
    """`ijepa-visualize` (pyproject console script)."""
    run_command(main)


if __name__ == "__main__":
    cli()
