"""Analysis tools: the teacher's collapse monitors (read by the trainer at log steps only), and for
Gated I-JEPA debug images and token SSIM during training, gate experiments and FLOP counts after
it. Nothing here runs in the training step itself."""
