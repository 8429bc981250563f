"""The trainer's periodic probes: every encoder of interest, one linear probe + k-NN each."""
from __future__ import annotations

import logging

import torch.nn as nn

from .features import eval_mode
from .linear_probe import LinearProbe, on_rank0

log = logging.getLogger(__name__)
_EVALUATORS: dict[tuple, LinearProbe] = {}  # built once per process, reused at every probe


def probe_evaluator(cfg, device) -> LinearProbe:
    """The cached LinearProbe for cfg.data.* / cfg.model.image_size / cfg.eval.* on `device` (an image
    folder decoded in cfg.dataloader.num_workers processes)."""
    d, e, workers = cfg.data, cfg.eval, cfg.dataloader.num_workers
    key = (d.dataset_name, d.dataset_path, cfg.model.image_size, e.classifier, e.knn_k, e.batch_size,
           e.max_train_samples, e.max_test_samples, str(device), workers)
    if key not in _EVALUATORS:
        # No download here: pretraining already fetched the archive, which holds the labelled splits.
        _EVALUATORS[key] = LinearProbe(cfg.model.image_size, d.dataset_path, d.dataset_name, e.classifier, e.knn_k,
                                     e.batch_size, e.max_train_samples, e.max_test_samples, device,
                                     num_workers=workers)
    return _EVALUATORS[key]


def _unwrap(model: nn.Module) -> nn.Module:
    """The bare model under torch.compile and DDP wrappers."""
    model = getattr(model, "_orig_mod", model)
    return getattr(model, "module", model)


def periodic_probes(model: nn.Module, cfg, dist_info) -> dict[str, float]:
    """Probe a JEPA model's encoders; every rank must call this and every rank gets the same dict.

    probe_<name> / knn_<name> for each name -> feature_fn of `model.probe_feature_fns()` (baseline:
    teacher and student; gated: gated and all_open). Accuracies are in [0, 1].
    Features are extracted in shards on all ranks first; rank 0 then fits every classifier and
    broadcasts the results once. The model's train/eval modes are restored afterwards.
    """
    net = _unwrap(model)
    fns = net.probe_feature_fns()
    evaluator = probe_evaluator(cfg, dist_info.device)
    rank, world = dist_info.rank, dist_info.world_size
    with eval_mode(net):
        feats = {name: evaluator.extract(fn, rank, world) for name, fn in fns.items()}

    def fit_all() -> dict[str, float]:
        out = {}
        for name, f in feats.items():
            scores = evaluator.score(f)
            out[f"probe_{name}"], out[f"knn_{name}"] = scores["probe_acc"], scores["knn_acc"]
        logging.getLogger("simple_ijepa").info("probe: " + ", ".join(f"{k}={v:.4f}" for k, v in out.items()))
        return out

    return on_rank0(fit_all, rank, world)
