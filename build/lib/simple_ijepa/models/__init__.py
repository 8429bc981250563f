"""The models: the ViT encoder, the predictor, I-JEPA and Gated I-JEPA, and the variant registry.

`VARIANTS` is the only place that reads `variant`: the training loop, the probes and the tools ask
the model class what they need (`needs_masks`, `has_gates`, `file_suffix`, `probe_feature_fns`,
... see ijepa.JEPA). Importing this package needs torch only.
"""
from .config import ARCH_KEYS, GateConfig, ModelConfig, PredictorConfig, arch_values
from .gated_ijepa import GatedIJEPA
from .ijepa import IJEPA, JEPA
from .predictor import Predictor
from .vit import VisionTransformer, ViTConfig

VARIANTS: dict[str, type[JEPA]] = {"baseline": IJEPA, "gated": GatedIJEPA}


def model_class(variant: str) -> type[JEPA]:
    """The JEPA class of a `variant` value ("baseline" or "gated")."""
    if variant not in VARIANTS:
        raise ValueError(f"variant={variant!r} is not one of {tuple(VARIANTS)}")
    return VARIANTS[variant]


def build_model(cfg) -> JEPA:
    """The model of `cfg.variant` from the `model.*` section, at its initial weights."""
    return model_class(cfg.variant).from_config(cfg.model)


__all__ = ["ARCH_KEYS", "GateConfig", "GatedIJEPA", "IJEPA", "JEPA", "ModelConfig", "Predictor", "PredictorConfig",
           "VARIANTS", "VisionTransformer", "ViTConfig", "arch_values", "build_model", "model_class"]
