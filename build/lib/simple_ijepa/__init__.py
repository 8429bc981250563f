"""simple-ijepa: I-JEPA and Gated I-JEPA pretraining for Vision Transformers.

The names below load on first use, so that `import simple_ijepa.models` needs torch alone (no
Hydra, no scikit-learn). `python -m simple_ijepa.train key=value ...` trains from the command line.
"""
from importlib import import_module

_EXPORTS = {
    # configure and train: cfg = make_config(["experiment=cpu_small"]); summary = train(cfg)
    "TrainConfig": ".config", "make_config": ".config", "train": ".training.trainer",
    # the parts, for your own loop (examples/own_training_loop.py)
    "GatedIJEPA": ".models", "IJEPA": ".models", "VisionTransformer": ".models", "ViTConfig": ".models",
    "build_model": ".models", "build_masks": ".masks", "MultiBlockMaskGenerator": ".masks",
    "RandomMaskGenerator": ".masks",
    # use an encoder file (examples/encoder_features.py) and probe it
    "load_encoder": ".checkpoints", "save_encoder": ".checkpoints", "LinearProbe": ".evaluation",
    "STL10Eval": ".evaluation", "build_dataset": ".data",
}
__all__ = sorted(_EXPORTS)
__version__ = "0.3.0"  # the one place the version is written (pyproject.toml reads it)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'simple_ijepa' has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name], __name__), name)
