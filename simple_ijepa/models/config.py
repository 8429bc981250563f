"""The model configuration, split by part: encoder, predictor, gate, and the training objective.

The configuration keeps one flat `model.*` section (`model.hidden_dim`, `model.predictor_depth`, ...).
`ModelConfig.from_flat` maps it onto the parts through one table, `FLAT_KEYS`; the modules then take
plain values only. `ARCH_KEYS` (what a checkpoint must agree on to be loaded) derives from the same
table: the flat keys that feed the encoder or the predictor. Torch-free.
"""
from __future__ import annotations

from dataclasses import dataclass
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

    @classmethod
    def from_flat(cls, m) -> "ModelConfig":
        """From the flat `model.*` section (a DictConfig or any object with those attributes)."""
        if isinstance(m, cls):
            return m
        parts: dict[str, dict] = {"encoder": {}, "predictor": {}, "gate": {}, "": {}}
        for key, targets in FLAT_KEYS.items():
            for part, name in targets:
                parts[part][name] = getattr(m, key)
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
    "head_dim": (("encoder", "head_dim"), ("predictor", "head_dim")),
    "mlp_ratio": (("encoder", "mlp_ratio"), ("predictor", "mlp_ratio")),
    "predictor_dim": (("predictor", "dim"),),
    "predictor_depth": (("predictor", "depth"),),
    "predictor_heads": (("predictor", "heads"),),
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
}

# Flat keys that change the shape of some weight: a checkpoint must agree on all of them.
ARCH_KEYS = tuple(k for k, targets in FLAT_KEYS.items() if any(p in ("encoder", "predictor") for p, _ in targets))
