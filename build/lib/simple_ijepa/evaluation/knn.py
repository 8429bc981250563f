"""k-NN top-1 accuracy, weighted as in DINO (Caron et al. 2021): a cheap monitor beside the probe."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def centred_unit(train_x: np.ndarray, test_x: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Features [n, D] / [m, D] -> float32 tensors centred on the train mean and L2-normalised per
    row (SimpleShot's "CL2N"), so that a matrix product gives their cosine similarities."""
    train = torch.from_numpy(np.asarray(train_x, np.float32))
    test = torch.from_numpy(np.asarray(test_x, np.float32))
    mean = train.mean(dim=0)
    return F.normalize(train - mean, dim=1), F.normalize(test - mean, dim=1)


def knn_accuracy(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray,
                 k: int = 20, temperature: float = 0.07, chunk: int = 1024,
                 device: torch.device | str | None = None) -> float:
    """Top-1 accuracy of a weighted k-NN vote.

    Features [n, D] / [m, D] are centred on the train mean, then L2-normalised (SimpleShot's
    "CL2N"; without centring, the component that all mean-pooled features share pushes every
    cosine similarity toward 1). Each test sample takes its k most similar train samples; each
    votes for its label with weight exp(similarity / temperature), and the largest total wins.
    Test rows go `chunk` at a time ([chunk, n] similarities), on `device` (default the CPU).
    """
    train, test = (t.to(device) for t in centred_unit(train_x, test_x))
    labels = torch.from_numpy(np.asarray(train_y, np.int64)).to(train.device)
    truth = torch.from_numpy(np.asarray(test_y, np.int64)).to(train.device)
    num_classes = int(max(labels.max(), truth.max())) + 1
    k = min(k, len(train))
    correct = 0
    for start in range(0, len(test), chunk):
        sim, idx = (test[start:start + chunk] @ train.T).topk(k, dim=1)  # [c, k]
        votes = torch.zeros(len(sim), num_classes, device=sim.device).scatter_add_(1, labels[idx],
                                                                                   (sim / temperature).exp())
        correct += int((votes.argmax(dim=1) == truth[start:start + chunk]).sum())
    return correct / len(test)
