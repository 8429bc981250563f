"""A saved encoder next to the same architecture at random initialisation, probed the same way.

`load_checkpoint` reads what the probing commands take (an encoder file, a training checkpoint's
teacher or student, or a whole Gated I-JEPA model); `probe_with_random_init` and
`probe_gated_with_random_init` score it and its random-init twin with one evaluator.
"""
from __future__ import annotations

import torch

from ..checkpoints import TRAIN_FORMAT, load_encoder, read_checkpoint
from ..data.augment import MEAN, STD
from ..errors import CheckpointError
from ..models import VARIANTS
from ..models.vit import VisionTransformer
from .features import LastBlocks
from .linear_probe import LinearProbe


def probe_with_random_init(encoder: VisionTransformer, evaluator: LinearProbe, seed: int = 0,
                           device="cpu", n_last_blocks: int = 1) -> dict[str, dict[str, float]]:
    """{"pretrained", "random init"} -> {"probe_acc", "knn_acc"}: the encoder and the identical
    architecture at random initialisation (seeded), probed the same way: on the mean-pooled last
    block, or on the last `n_last_blocks` blocks concatenated (LastBlocks)."""
    torch.manual_seed(seed)
    random_init = VisionTransformer(encoder.config)
    features = (lambda e: e) if n_last_blocks == 1 else (lambda e: LastBlocks(e, n_last_blocks))
    return {"pretrained": evaluator.evaluate(features(encoder.to(device)), name="pretrained"),
            "random init": evaluator.evaluate(features(random_init.to(device)), name="random init")}


def raw_pixels(images: torch.Tensor) -> torch.Tensor:
    """The pixels-as-features reference: normalised images [B, 3, S, S], as the encoder sees them,
    flattened to [B, 3 * S * S]; [B, S * S] when the three channels hold the same grey image (one
    channel's values, so that a grayscale set is not counted three times). The probe standardises them."""
    mean = torch.tensor(MEAN, device=images.device).view(1, 3, 1, 1)
    std = torch.tensor(STD, device=images.device).view(1, 3, 1, 1)
    rgb = images * std + mean
    grey = torch.allclose(rgb[:, 1:], rgb[:, :1].expand_as(rgb[:, 1:]), atol=1e-5)
    return (images[:, 0] if grey else images).flatten(1)


def gated_checkpoint(path: str) -> bool:
    """True for a training checkpoint of a variant=gated run (read lazily: the weights stay on disk)."""
    if not path.endswith((".pth", ".pt")):
        return False
    try:
        blob = read_checkpoint(path, mmap=True)
    except CheckpointError:  # load_encoder reports unreadable files
        return False
    return blob["format"] == TRAIN_FORMAT and blob.get("variant") in VARIANTS and VARIANTS[blob["variant"]].has_gates


def load_checkpoint(path: str, student: bool = False, device="cpu"):
    """(GatedIJEPA, None) from a gated training checkpoint, else (None, VisionTransformer): an
    encoder file's encoder, or a training checkpoint's EMA teacher (its student with `student`,
    also for a gated one). In eval mode, on `device`."""
    if gated_checkpoint(path) and not student:
        from ..analysis.gate_analysis import load_gated_model

        return load_gated_model(path, device)[0], None
    return None, load_encoder(path, teacher=not student).to(device)


def probe_gated_with_random_init(model, evaluator: LinearProbe, seed: int = 0,
                                 device="cpu") -> dict[str, dict[str, float]]:
    """{"gated", "all_open", "EMA teacher", "random init"} -> {"probe_acc", "knn_acc"} for a
    GatedIJEPA (see GatedIJEPA.probe_feature_fns for how gated features are pooled)."""
    fns = {**model.probe_feature_fns(), "EMA teacher": model.target_encoder}
    results = {name: evaluator.evaluate(fn, name=name) for name, fn in fns.items()}
    torch.manual_seed(seed)
    results["random init"] = evaluator.evaluate(VisionTransformer(model.encoder.config).to(device), name="random init")
    return results
