"""simple-ijepa: I-JEPA and Gated I-JEPA pretraining for Vision Transformers."""
from .config import TrainConfig
from .evaluation import STL10Eval
from .models import IJEPA, VisionTransformer, ViTConfig
from .models.gated_ijepa import GatedIJEPA

__all__ = ["GatedIJEPA", "IJEPA", "STL10Eval", "TrainConfig", "VisionTransformer", "ViTConfig", "load_encoder",
           "save_encoder"]
__version__ = "0.2.0"


def __getattr__(name: str):
    """`load_encoder` and `save_encoder` come from `export` on first use: importing the package does
    not import that module, so `python -m simple_ijepa.export` runs it once (no runpy warning)."""
    if name in ("load_encoder", "save_encoder"):
        from . import export

        return getattr(export, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
