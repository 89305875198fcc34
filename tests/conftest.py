"""Shared pytest set-up."""

import os

import torch

# Tests must not fight over the two cores with background jobs; results never depend on this.
torch.set_num_threads(min(2, os.cpu_count() or 1))
