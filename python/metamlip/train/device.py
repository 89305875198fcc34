"""The torch device training runs on (`training.device: cpu | cuda[:N]`), checked up front."""

from __future__ import annotations

import torch

from metamlip.train.config import ConfigError


def torch_device(name: str, key: str = "training.device") -> torch.device:
    """torch.device for `name`; ConfigError naming `key` when CUDA is asked for and not usable."""
    device = torch.device(name)
    if device.type != "cuda":
        return device
    if not torch.cuda.is_available():
        build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "no CUDA (a CPU-only build)"
        raise ConfigError(
            f"{key}: {name!r} was asked for but no CUDA GPU is usable (torch {torch.__version__} with {build}, "
            f"{torch.cuda.device_count()} GPU(s) visible); use {key}: cpu"
        )
    if device.index is not None and device.index >= torch.cuda.device_count():
        raise ConfigError(f"{key}: {name!r} was asked for but only {torch.cuda.device_count()} GPU(s) are visible")
    return device
