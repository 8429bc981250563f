"""Analysis of Gated I-JEPA models: debug images and token SSIM during training, gate experiments
and FLOPs counts after it. Nothing here is imported by the training hot path."""
