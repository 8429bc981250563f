"""simple-ijepa: I-JEPA and Gated I-JEPA pretraining for Vision Transformers."""
from .config import TrainConfig
from .evaluation import STL10Eval
from .export import load_encoder, save_encoder
from .models import IJEPA, VisionTransformer, ViTConfig
from .models.gated_ijepa import GatedIJEPA

__all__ = ["GatedIJEPA", "IJEPA", "STL10Eval", "TrainConfig", "VisionTransformer", "ViTConfig", "load_encoder",
           "save_encoder"]
__version__ = "0.2.0"
