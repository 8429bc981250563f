"""Which pooling of the tokens gives the k-NN its geometry? Teacher, student and random init of one
training checkpoint, each pooled seven ways, 20-NN (CL2N, as the probe) and plain logistic.

    python bench/knn_pooling.py RUN/training_model_ddp.pth fashion_mnist ./data > pooling.jsonl

One JSON line per (encoder, pooling). The logistic probe is left out above 1,000 features.
"""
import json
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from a checkout
from simple_ijepa.checkpoints import load_encoder  # noqa: E402
from simple_ijepa.evaluation import LinearProbe  # noqa: E402
from simple_ijepa.evaluation.knn import knn_accuracy  # noqa: E402
from simple_ijepa.evaluation.probe import linear_probe_accuracy  # noqa: E402
from simple_ijepa.models.vit import VisionTransformer  # noqa: E402

torch.set_num_threads(2)
ckpt, name, path = sys.argv[1], sys.argv[2], sys.argv[3]
ev = LinearProbe(load_encoder(ckpt).config.image_size, path, name, "logistic", device="cpu",
                 max_train_samples=5000 if name == "fashion_mnist" else None)


def grid(t, g):
    """Tokens [B, N, D] -> the mean of each cell of a g x g grid, concatenated [B, g*g*D]."""
    B, N, D = t.shape
    s = int(N ** 0.5)
    x = t.transpose(1, 2).reshape(B, D, s, s)
    return F.adaptive_avg_pool2d(x, g).flatten(1)


pools = {
    "mean": lambda t: t.mean(1),  # the probes' pooling
    "max": lambda t: t.amax(1),
    "mean+std": lambda t: torch.cat([t.mean(1), t.std(1)], 1),
    "grid2": lambda t: grid(t, 2),
    "grid3": lambda t: grid(t, 3),
    "flat": lambda t: t.flatten(1),  # every token, in place: the layout the raw pixels keep
    "tokLN-mean": lambda t: F.layer_norm(t - t.mean(1, keepdim=True), t.shape[-1:]).mean(1),
}
enc_t, enc_s = load_encoder(ckpt, teacher=True).eval(), load_encoder(ckpt, teacher=False).eval()
torch.manual_seed(0)
rnd = VisionTransformer(enc_t.config).eval()
for ename, enc in {"teacher": enc_t, "student": enc_s, "random": rnd}.items():
    for pname, p in pools.items():
        with torch.no_grad():
            f = ev.extract(lambda im: p(enc(im)))
        r = {"enc": ename, "pool": pname, "dim": f.train_x.shape[1],
             "knn": knn_accuracy(f.train_x, f.train_y, f.test_x, f.test_y)}
        if f.train_x.shape[1] <= 1000:
            r["lin"] = linear_probe_accuracy(f.train_x, f.train_y, f.test_x, f.test_y, "logistic")
        print(json.dumps(r), flush=True)
