"""Deployment: one TorchScript file per model (``metamlip-export``) behind the engine
interface used by LAMMPS, OpenMM and ASE (see ``metamlip.deploy.model``)."""

from metamlip.deploy.export import export_checkpoint, export_model, export_module, save_exported, select_level
from metamlip.deploy.files import (
    FORMAT_VERSION,
    METADATA_FILE,
    ExportedModelError,
    load_exported,
    read_metadata,
)
from metamlip.deploy.load import load_model
from metamlip.deploy.model import ExportedModel
from metamlip.deploy.pairs import build_pairs

__all__ = [
    "FORMAT_VERSION",
    "METADATA_FILE",
    "ExportedModel",
    "ExportedModelError",
    "build_pairs",
    "export_checkpoint",
    "export_model",
    "export_module",
    "load_exported",
    "load_model",
    "read_metadata",
    "save_exported",
    "select_level",
]
