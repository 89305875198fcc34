"""Exported-model files: a TorchScript archive with ``extra/metadata.json``.

The metadata is read straight from the zip archive, so ``--info`` and the format-version
check work without loading the model (or the op library it may need).
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import torch

import metamlip

FORMAT = "metamlip-exported-model"
FORMAT_VERSION = 1
METADATA_FILE = "metadata.json"


class ExportedModelError(RuntimeError):
    """A file is not a (readable, supported) metamlip exported model."""


def _archive_kind(path: Path) -> tuple[str, zipfile.ZipFile | None]:
    """("exported" | "torchscript" | "checkpoint" | "other", open archive or None)."""
    if not path.exists():
        raise ExportedModelError(f"{path}: file not found")
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError):
        return "other", None
    names = archive.namelist()
    if any(name.endswith("/extra/" + METADATA_FILE) for name in names):
        return "exported", archive
    if any("/code/" in name for name in names):
        return "torchscript", archive
    if any(name.endswith("/data.pkl") for name in names):
        return "checkpoint", archive
    return "other", archive


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The metadata of an exported model, after checking format and version (and the archive's
    integrity: a corrupted or truncated file is reported here)."""
    path = Path(path)
    kind, archive = _archive_kind(path)
    if kind != "exported":
        if archive is not None:
            archive.close()
        reasons = {
            "other": "not a TorchScript archive (a corrupted or truncated file, or another format)",
            "torchscript": f"a TorchScript file without metamlip metadata (extra/{METADATA_FILE}); "
            "export models with `metamlip-export`",
            "checkpoint": "a training checkpoint, not an exported model; export it with "
            f"`metamlip-export {path} -o model.pt`",
        }
        raise ExportedModelError(f"{path}: {reasons[kind]}")
    assert archive is not None
    with archive:
        damaged = archive.testzip()
        if damaged is not None:
            raise ExportedModelError(f"{path}: corrupted file (checksum mismatch in {damaged})")
        name = next(n for n in archive.namelist() if n.endswith("/extra/" + METADATA_FILE))
        try:
            metadata = json.loads(archive.read(name))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ExportedModelError(f"{path}: unreadable {METADATA_FILE} ({error})") from error
    check_metadata(metadata, str(path))
    return metadata


def check_metadata(metadata: Any, where: str) -> None:
    """Format name and version: engines refuse files from a newer format."""
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT:
        raise ExportedModelError(f"{where}: {METADATA_FILE} does not describe a metamlip exported model")
    version = metadata.get("format_version")
    if not isinstance(version, int) or version < 1:
        raise ExportedModelError(f"{where}: invalid format_version {version!r}")
    if version > FORMAT_VERSION:
        raise ExportedModelError(
            f"{where}: exported-model format version {version} (written by metamlip "
            f"{metadata.get('metamlip_version', '?')}) is newer than this metamlip "
            f"({metamlip.__version__}) reads (version {FORMAT_VERSION}); upgrade metamlip"
        )


def load_exported(
    path: str | Path, device: str | torch.device = "cpu"
) -> tuple[torch.jit.ScriptModule, dict[str, Any]]:
    """(model on `device`, metadata) of an exported file; loads the op library first if needed."""
    path = Path(path)
    metadata = read_metadata(path)
    if metadata["op_library"]["required"]:
        from metamlip.ops import load_library

        load_library()
    try:
        model = torch.jit.load(str(path), map_location=device)
    except RuntimeError as error:
        raise ExportedModelError(f"{path}: could not load the TorchScript model: {error}") from error
    return model, metadata
