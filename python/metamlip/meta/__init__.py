"""Meta-learning across levels of theory: Reptile, the baseline strategies, fine-tuning and
the experiments that compare them (learning curves, energy-surface scans)."""
