"""Shared test helpers: tiny model overrides, fake STL-10 images, running the CLIs in a tmp cwd."""
import os
import subprocess
import sys

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYTHON = sys.executable
RUN_DDP = os.path.join(REPO, "run_ddp.py")
TORCHRUN = os.path.join(os.path.dirname(sys.executable), "torchrun")

# A model small enough for a CPU test step in milliseconds (32 px, 4x4 grid of 8 px patches).
TINY_MODEL = [
    "model.image_size=32", "model.patch_size=8", "model.hidden_dim=32", "model.depth=2", "model.heads=2",
    "model.head_dim=16", "model.predictor_dim=32", "model.predictor_depth=1", "model.predictor_heads=2",
    "model.num_targets=2", "mask.min_context=2",
]


def fake_stl10_images(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """[n, 3, 96, 96] uint8 images whose mean colour depends on the label, plus labels 0..9."""
    rng = np.random.RandomState(seed)
    labels = rng.randint(0, 10, n)
    base = np.stack([(labels * 25) % 256, (labels * 70) % 256, (255 - labels * 25) % 256], 1)
    images = base[:, :, None, None] + rng.randint(-40, 40, (n, 3, 96, 96))
    return np.clip(images, 0, 255).astype(np.uint8), labels


def run_cli(args: list[str], cwd, timeout: int = 300, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    """Run a command from the repo (run_ddp.py, torchrun, python -m ...) in `cwd` (a tmp dir).

    stdout and stderr are merged into `.stdout` (Hydra logs to stdout, tqdm and errors to stderr)."""
    env = dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS="1", **(env_extra or {}))
    return subprocess.run(args, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=timeout)
