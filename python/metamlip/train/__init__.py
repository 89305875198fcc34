"""Training: configuration, loss, the training loop, checkpoints, metrics and plots."""
