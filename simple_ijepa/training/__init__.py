"""Training: the loop (trainer.py), schedules, checkpoints, process groups."""
