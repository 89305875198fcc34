"""One entry point for the engines' Python wrappers: an exported file, a checkpoint
(or ``pretrained:NAME``) or a Potential, turned into (TorchScript model on a device, metadata)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from metamlip.deploy.device import load_on, module_bytes, resolve_device
from metamlip.deploy.export import export_module
from metamlip.deploy.files import ExportedModelError, _archive_kind, load_exported, read_metadata
from metamlip.nn.potential import Potential
from metamlip.pretrained import PREFIX, resolve

ModelSource = str | Path | Potential


def load_model(
    source: ModelSource, level: str | None = None, dtype: str | None = None, device: str | torch.device = "cpu"
) -> tuple[torch.jit.ScriptModule, dict[str, Any]]:
    """(model, metadata) from an exported file (`metamlip-export`), a training checkpoint
    (a path or ``pretrained:NAME``) or a Potential. level/dtype choose what a checkpoint or
    Potential is exported with; for an exported file they must be None or match what it was
    exported with. device: where the model's tensors live ("cpu", "cuda", "cuda:K");
    DeviceError when it cannot be used here."""
    if isinstance(source, Potential):
        return _exported_in_memory(source, level, dtype, device)
    path = resolve(source) if isinstance(source, str) and source.startswith(PREFIX) else Path(source)
    kind, archive = _archive_kind(path)
    if archive is not None:
        archive.close()
    if kind == "checkpoint":
        from metamlip.nn.checkpoint import load_potential

        return _exported_in_memory(load_potential(path), level, dtype, device)
    metadata = read_metadata(path)
    for name, wanted in (("level", level), ("dtype", dtype)):
        if wanted is not None and wanted != metadata[name]:
            raise ExportedModelError(
                f"{path}: exported with {name} {metadata[name]!r}, not {wanted!r}; pass {name}=None "
                f"to use the file as exported, or export the checkpoint again with --{name} {wanted}"
            )
    model, metadata = load_exported(path, resolve_device(device, metadata))
    return model, metadata


def _exported_in_memory(
    potential: Potential, level: str | None, dtype: str | None, device: str | torch.device
) -> tuple[torch.jit.ScriptModule, dict[str, Any]]:
    """Export, then load the bytes back: the same module an engine gets from the file (a
    freshly frozen module cannot be scripted into a wrapper such as the OpenMM force)."""
    scripted, metadata = export_module(potential, level, dtype, level_argument="level=")
    return load_on(module_bytes(scripted), resolve_device(device, metadata)), metadata
