"""Evaluation of frozen encoders: feature extraction, linear probe, k-NN, the trainer's probes."""
from .features import LastBlocks, extract_features
from .knn import knn_accuracy
from .linear_probe import LinearProbe, STL10Eval
from .periodic import periodic_probes
from .probe import linear_probe_accuracy

__all__ = ["LastBlocks", "LinearProbe", "STL10Eval", "extract_features", "knn_accuracy", "linear_probe_accuracy",
           "periodic_probes"]
