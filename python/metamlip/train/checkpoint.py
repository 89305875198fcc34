"""Checkpoint files: the model, its config, and (for resuming) the training state."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

import metamlip
from metamlip.atomic import atomic_path
from metamlip.nn.build import potential_from_dict, potential_to_dict
from metamlip.nn.potential import Potential

CHECKPOINT_FORMAT = "metamlip-checkpoint"
CHECKPOINT_VERSION = 1


class CheckpointError(RuntimeError):
    """A checkpoint file is missing, corrupt or of an unknown format."""


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


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as error:  # torch raises several types for corrupt archives
        raise CheckpointError(f"{path}: not a readable checkpoint ({error})") from error
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: not a metamlip checkpoint")
    if payload["version"] > CHECKPOINT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format {payload['version']} is newer than this metamlip "
            f"({metamlip.__version__}) reads ({CHECKPOINT_VERSION}); upgrade metamlip"
        )
    return payload


def load_potential(path: str | Path) -> Potential:
    """The model stored in a checkpoint, in the dtype it was saved in."""
    return potential_from_dict(read_checkpoint(path)["model"])
