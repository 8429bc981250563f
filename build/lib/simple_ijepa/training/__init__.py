"""Training: the loop (trainer.py), one step (step.py), schedules, checkpoints, W&B logging."""
