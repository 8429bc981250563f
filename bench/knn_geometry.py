"""Why the k-NN lags the linear probe: the geometry of mean-pooled features (not a test).

    python bench/knn_geometry.py RUN/training_model_ddp.pth                       # Fashion-MNIST
    python bench/knn_geometry.py RUN/training_model_ddp.pth --dataset_name folder --dataset_path DIR

For the checkpoint's EMA teacher, its last 4 blocks, its student, the same encoder at random init (--seed)
and raw pixels: the 20-NN under several metrics (plain L2, centred + L2 as `knn_accuracy`, z-scored + L2,
PCA-whitened to 64 dimensions + L2, the top 1 / 4 principal components dropped), a plain logistic probe,
and the share of variance in the top 5 principal components; then how the teacher's first two principal
components correlate with each image's mean pixel and foreground area. One JSON line per row
(docs/experiments/peers.md, "The k-NN geometry").
"""
from __future__ import annotations

import argparse
import json

import numpy as np
import torch
import torch.nn.functional as F

from simple_ijepa.checkpoints import load_encoder
from simple_ijepa.evaluation import LastBlocks, LinearProbe
from simple_ijepa.evaluation.probe import linear_probe_accuracy
from simple_ijepa.evaluation.reference import raw_pixels
from simple_ijepa.models.vit import VisionTransformer


def knn(train: torch.Tensor, train_y: np.ndarray, test: torch.Tensor, test_y: np.ndarray, k: int = 20,
        temperature: float = 0.07) -> float:
    """Weighted k-NN top-1 (as knn_accuracy) on rows that are already in the metric's geometry."""
    sims, idx = (test @ train.T).topk(k, dim=1)
    votes = torch.zeros(len(test), int(train_y.max()) + 1).scatter_add_(
        1, torch.from_numpy(train_y)[idx], (sims / temperature).exp())
    return float((votes.argmax(1).numpy() == test_y).mean())


def geometries(train: torch.Tensor, test: torch.Tensor) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """The same features [n, D] / [m, D] under each metric, unit rows."""
    mu, sd = train.mean(0), train.std(0) + 1e-6
    _, s, v = torch.linalg.svd(train - mu, full_matrices=False)
    white = v[:64].T / (s[:64] / len(train) ** 0.5 + 1e-6)
    out = {"L2": (train, test), "CL2N": (train - mu, test - mu),
           "zscore+L2": ((train - mu) / sd, (test - mu) / sd),
           "PCA64-white+L2": ((train - mu) @ white, (test - mu) @ white)}
    for drop in (1, 4):
        out[f"CL2N-drop{drop}pc"] = ((train - mu) @ v[drop:].T, (test - mu) @ v[drop:].T)
    return {k: (F.normalize(a, dim=1), F.normalize(b, dim=1)) for k, (a, b) in out.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("ckpt_path", help="a training checkpoint (teacher and student)")
    p.add_argument("--dataset_name", default="fashion_mnist")
    p.add_argument("--dataset_path", default="./data")
    p.add_argument("--max_train_samples", type=int, default=5000)
    p.add_argument("--seed", type=int, default=0, help="seed of the random-init encoder (the run's)")
    args = p.parse_args()
    teacher, student = (load_encoder(args.ckpt_path, teacher=t).eval() for t in (True, False))
    torch.manual_seed(args.seed)
    features = {"teacher": teacher, "teacher last4": LastBlocks(teacher, 4), "student": student,
                "random init": VisionTransformer(teacher.config).eval(), "raw pixels": raw_pixels}
    probe = LinearProbe(teacher.config.image_size, args.dataset_path, args.dataset_name, "logistic",
                        max_train_samples=args.max_train_samples, device="cpu")
    extracted = {}
    for name, fn in features.items():
        with torch.no_grad():
            f = extracted[name] = probe.extract(fn)
        train, test = (torch.from_numpy(np.asarray(x, np.float32)) for x in (f.train_x, f.test_x))
        row = {k: knn(a, f.train_y, b, f.test_y) for k, (a, b) in geometries(train, test).items()}
        s = torch.linalg.svdvals(train - train.mean(0))
        row["top5 variance share"] = (s ** 2 / (s ** 2).sum())[:5].round(decimals=3).tolist()
        row["logistic"] = linear_probe_accuracy(f.train_x, f.train_y, f.test_x, f.test_y, "logistic")
        print(json.dumps({"features": name, **row}), flush=True)

    t, px = extracted["teacher"], extracted["raw pixels"].train_x
    centred = torch.from_numpy(t.train_x) - torch.from_numpy(t.train_x).mean(0)
    scores = (centred @ torch.linalg.svd(centred, full_matrices=False)[2][:2].T).numpy()
    lo, hi = px.min(1, keepdims=True), px.max(1, keepdims=True)
    stats = {"mean pixel": px.mean(1), "foreground area": (px > (lo + hi) / 2).mean(1)}
    print(json.dumps({f"teacher PC{i + 1} vs {k}": float(np.corrcoef(scores[:, i], v)[0, 1])
                      for i in range(2) for k, v in stats.items()}))


if __name__ == "__main__":
    main()
