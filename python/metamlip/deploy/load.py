"""One entry point for the engines' Python wrappers: an exported file, a checkpoint or a
Potential, turned into (TorchScript model, metadata)."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch

from metamlip.deploy.export import export_module
from metamlip.deploy.files import ExportedModelError, _archive_kind, load_exported
from metamlip.nn.potential import Potential

ModelSource = str | Path | Potential


def load_model(
    source: ModelSource, level: str | None = None, dtype: str | None = None
) -> tuple[torch.jit.ScriptModule, dict[str, Any]]:
    """(model, metadata) from an exported file (`metamlip-export`), a training checkpoint or a
    Potential. level/dtype choose what a checkpoint or Potential is exported with; for an
    exported file they must be None or match what it was exported with."""
    if isinstance(source, Potential):
        return _exported_in_memory(source, level, dtype)
    path = Path(source)
    kind, archive = _archive_kind(path)
    if archive is not None:
        archive.close()
    if kind == "checkpoint":
        from metamlip.nn.checkpoint import load_potential

        return _exported_in_memory(load_potential(path), level, dtype)
    model, metadata = load_exported(path)
    for name, wanted in (("level", level), ("dtype", dtype)):
        if wanted is not None and wanted != metadata[name]:
            raise ExportedModelError(
                f"{path}: exported with {name} {metadata[name]!r}, not {wanted!r}; export the "
                f"checkpoint again with --{name} {wanted}"
            )
    return model, metadata


def _exported_in_memory(
    potential: Potential, level: str | None, dtype: str | None
) -> tuple[torch.jit.ScriptModule, dict[str, Any]]:
    """Export, then load the bytes back: the same module an engine gets from the file (a
    freshly frozen module cannot be scripted into a wrapper such as the OpenMM force)."""
    scripted, metadata = export_module(potential, level, dtype)
    buffer = io.BytesIO()
    torch.jit.save(scripted, buffer)
    buffer.seek(0)
    return torch.jit.load(buffer, map_location="cpu"), metadata
