"""simple-ijepa: I-JEPA and Gated I-JEPA pretraining for Vision Transformers."""
from .config import TrainConfig
from .export import load_encoder, save_encoder
from .models import IJEPA, VisionTransformer, ViTConfig

__all__ = ["IJEPA", "TrainConfig", "VisionTransformer", "ViTConfig", "load_encoder", "save_encoder"]
__version__ = "0.2.0"
