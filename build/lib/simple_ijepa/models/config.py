"""The model configuration, split by part: encoder, predictor, gate, and the training objective.

The configuration keeps one flat `model.*` section (`model.hidden_dim`, `model.predictor_depth`, ...).
`ModelConfig.from_flat` maps it onto the parts through one table, `FLAT_KEYS`; the modules then take
plain values only. `ARCH_KEYS` (what a checkpoint must agree on to be loaded) derives from the same
table: the flat keys that feed the encoder or the predictor; `arch_values` maps parts back onto them.
Torch-free.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Optional

from .vit import ViTConfig


@dataclass
class PredictorConfig:
    dim: int
    depth: int
    heads: int
    head_dim: int
    mlp_ratio: float


@dataclass
class GateConfig:
    """Gated I-JEPA: where the gate sits, its hard-concrete shape, and its penalty (see gates.py)."""
    layer_index: Optional[int]
    location: str
    beta: float
    gamma: float
    zeta: float
    lambda_gates: float
    exp_alpha: float
    target_open: Optional[float]
    lr_scale: float


@dataclass
class ModelConfig:
    encoder: ViTConfig
    predictor: PredictorConfig
    gate: GateConfig
    loss: str
    sigreg_weight: float
    sigreg_slices: int
    target_layers: int = 1
    target_center: bool = False
    global_weight: float = 0.0
    predictor_shared_context: bool = False

    @classmethod
    def from_flat(cls, m) -> "ModelConfig":
        """From the flat `model.*` section (a DictConfig or any object with those attributes)."""
        if isinstance(m, cls):
            return m
        parts: dict[str, dict] = {"encoder": {}, "predictor": {}, "gate": {}, "": {}}
        for key, targets in FLAT_KEYS.items():
            value = getattr(m, key)
            if value is None and key in SAME_AS:
                value = getattr(m, SAME_AS[key])
            for part, name in targets:
                parts[part][name] = value
        return cls(ViTConfig(**parts["encoder"]), PredictorConfig(**parts["predictor"]), GateConfig(**parts["gate"]),
                   **parts[""])


# flat key -> the (part, field) pairs it sets; part "" = ModelConfig itself. `model.num_targets`
# is not here: it belongs to the masks (simple_ijepa/masks).
FLAT_KEYS: dict[str, tuple[tuple[str, str], ...]] = {
    "image_size": (("encoder", "image_size"),),
    "patch_size": (("encoder", "patch_size"),),
    "hidden_dim": (("encoder", "dim"),),
    "depth": (("encoder", "depth"),),
    "heads": (("encoder", "heads"),),
    "head_dim": (("encoder", "head_dim"),),
    "mlp_ratio": (("encoder", "mlp_ratio"),),
    "pos_order": (("encoder", "pos_order"),),
    "predictor_dim": (("predictor", "dim"),),
    "predictor_depth": (("predictor", "depth"),),
    "predictor_heads": (("predictor", "heads"),),
    "predictor_head_dim": (("predictor", "head_dim"),),
    "predictor_mlp_ratio": (("predictor", "mlp_ratio"),),
    "gate_layer_index": (("gate", "layer_index"),),
    "gate_location": (("gate", "location"),),
    "gate_beta": (("gate", "beta"),),
    "gate_gamma": (("gate", "gamma"),),
    "gate_zeta": (("gate", "zeta"),),
    "lambda_gates": (("gate", "lambda_gates"),),
    "gate_exp_alpha": (("gate", "exp_alpha"),),
    "gate_target_open": (("gate", "target_open"),),
    "gate_lr_scale": (("gate", "lr_scale"),),
    "loss": (("", "loss"),),
    "sigreg_weight": (("", "sigreg_weight"),),
    "sigreg_slices": (("", "sigreg_slices"),),
    "target_layers": (("", "target_layers"),),
    "target_center": (("", "target_center"),),
    "global_weight": (("", "global_weight"),),
    "predictor_shared_context": (("", "predictor_shared_context"),),
}

# Flat keys whose null stands for another key's value: the predictor's per-head width and MLP ratio
# are the encoder's unless set (the official I-JEPA predictors differ: see simple_ijepa/official.py).
SAME_AS = {"predictor_head_dim": "head_dim", "predictor_mlp_ratio": "mlp_ratio"}

# Flat keys that change the shape or meaning of some weight: a checkpoint must agree on all of them.
ARCH_KEYS = tuple(k for k, targets in FLAT_KEYS.items() if any(p in ("encoder", "predictor") for p, _ in targets))


def arch_values(encoder: ViTConfig, predictor: PredictorConfig | None = None) -> dict:
    """The ARCH_KEYS values (flat names, no `model.` prefix) that build these parts: the inverse of
    `ModelConfig.from_flat` on them, with SAME_AS keys spelled out. Without a predictor, the
    encoder's keys only."""
    parts = {"encoder": asdict(encoder), "predictor": None if predictor is None else asdict(predictor)}
    return {key: parts[part][name] for key, targets in FLAT_KEYS.items() for part, name in targets
            if parts.get(part) is not None}
