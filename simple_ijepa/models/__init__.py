from .ijepa import IJEPA, JEPA
from .predictor import Predictor
from .vit import VisionTransformer, ViTConfig

__all__ = ["IJEPA", "JEPA", "Predictor", "VisionTransformer", "ViTConfig", "build_model"]


def build_model(cfg) -> JEPA:
    """The model of `cfg.variant` ("baseline" or "gated") from the `model.*` section."""
    if cfg.variant == "gated":
        from .gated_ijepa import GatedIJEPA

        return GatedIJEPA(cfg.model)
    return IJEPA(cfg.model)
