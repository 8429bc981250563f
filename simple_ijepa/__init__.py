"""simple-ijepa: I-JEPA and Gated I-JEPA pretraining for Vision Transformers.

The names below load on first use, so that `import simple_ijepa.models` needs torch alone (no
Hydra, no scikit-learn).
"""
from importlib import import_module

_EXPORTS = {
    "GatedIJEPA": ".models", "IJEPA": ".models", "VisionTransformer": ".models", "ViTConfig": ".models",
    "TrainConfig": ".config", "STL10Eval": ".evaluation", "LinearProbe": ".evaluation",
    "load_encoder": ".checkpoints", "save_encoder": ".checkpoints",
}
__all__ = sorted(_EXPORTS)
__version__ = "0.3.0"  # the one place the version is written (pyproject.toml reads it)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'simple_ijepa' has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name], __name__), name)
