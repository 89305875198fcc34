"""Reading a checkpoint file into a model (training writes them: metamlip.train.checkpoint).

Deployment and evaluation need only this module, not the training code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

import metamlip
from metamlip import pretrained
from metamlip.nn.build import potential_from_dict
from metamlip.nn.potential import Potential

CHECKPOINT_FORMAT = "metamlip-checkpoint"
CHECKPOINT_VERSION = 1


class CheckpointError(RuntimeError):
    """A checkpoint file is missing, corrupt or of an unknown format."""


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint's payload: format, version, model, config, training_state, extra.

    `path` may also be ``pretrained:NAME`` (a shipped model, metamlip.pretrained)."""
    try:
        path = pretrained.resolve(path)
    except pretrained.PretrainedError as error:
        raise CheckpointError(str(error)) from None
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
