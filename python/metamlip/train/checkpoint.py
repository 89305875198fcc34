"""Writing checkpoints during training: the model, its config, and (for resuming) the training state.

Reading one back into a model lives beside the model (metamlip.nn.checkpoint).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

import metamlip
from metamlip.atomic import atomic_path
from metamlip.nn.build import potential_to_dict
from metamlip.nn.checkpoint import CHECKPOINT_FORMAT, CHECKPOINT_VERSION
from metamlip.nn.potential import Potential


def save_checkpoint(
    path: str | Path,
    potential: Potential,
    config: dict[str, Any],
    training_state: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> None:
    """Write atomically: a crash while saving leaves the previous file intact."""
    payload = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "metamlip_version": metamlip.__version__,
        "model": potential_to_dict(potential),
        "config": config,
        "training_state": training_state,
        "extra": extra or {},
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
