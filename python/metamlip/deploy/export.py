"""Turning a Potential (or a checkpoint) into one TorchScript file for LAMMPS, OpenMM and ASE."""

from __future__ import annotations

import copy
import io
import json
import zipfile
from pathlib import Path
from typing import Any

import torch
from ase.data import chemical_symbols

import metamlip
from metamlip.atomic import atomic_path
from metamlip.deploy.files import FORMAT, FORMAT_VERSION, METADATA_FILE
from metamlip.deploy.model import ExportedModel
from metamlip.deploy.pairs import MIN_PAIR_DISTANCE
from metamlip.nn.pairsums import envsum
from metamlip.nn.potential import Potential
from metamlip.ops import _library
from metamlip.pretrained import resolve

DTYPES = {"float32": torch.float32, "float64": torch.float64}
INTERFACE = (
    "forward(positions [N,3], atomic_numbers [N] int64, edge_index [2,P] int64, "
    "edge_shift_vectors [P,3], energy_atom_mask [N] bool) -> energies [N] float64 (eV); "
    "r_p = positions[j] - positions[i] + edge_shift_vectors[p], (i, j) = edge_index[:, p]; "
    "full pair list; stage(block, distances [P] or pair vectors [P,3] (tensor_order > 0 needs vectors), "
    "atomic_numbers, edge_index, features, n_receivers) "
    "-> (energies [n_receivers], features [n_receivers, n_features]): one interaction block for "
    "the first n_receivers atoms (engines that split atoms between processes)"
)


def select_level(potential: Potential, level: str | None, level_argument: str = "--level") -> str:
    """The level to deploy: the given one, or the only one the potential knows. level_argument:
    how the caller's user passes a level (a CLI option, or a Python argument such as `level=`)."""
    known = ", ".join(potential.levels)
    if level is None:
        if len(potential.levels) != 1:
            raise ValueError(f"the model knows several levels of theory ({known}): choose one with {level_argument}")
        return potential.levels[0]
    if level not in potential.levels:
        raise ValueError(f"unknown level {level!r} (known: {known})")
    return level


def cpp_pair_sums_available() -> bool:
    """Whether the pair sums can run on the op library (``set_implementation("cpp")``)."""
    index = torch.zeros(0, dtype=torch.int64)
    try:
        envsum(torch.zeros(0, 1), torch.zeros(1, 1), index, index, "cpp")
    except (ValueError, RuntimeError, AttributeError):
        return False
    return True


def export_module(
    potential: Potential,
    level: str | None = None,
    dtype: str | None = None,
    implementation: str = "auto",
    level_argument: str = "--level",
) -> tuple[torch.jit.ScriptModule, dict[str, Any]]:
    """(TorchScript model implementing the engine interface, its metadata) for one level.

    dtype: "float32" or "float64" (None: the potential's own); implementation: pair sums
    "torch", "cpp" or "auto" (cpp when the op library provides them); level_argument: as in
    `select_level`. The model is frozen and meant for saving (`save_exported`);
    `metamlip.deploy.load_model` gives one to run in Python.
    """
    level = select_level(potential, level, level_argument)
    index = potential.level_index(level)
    own_dtype = potential.hipnn.input_head.weight.dtype
    if dtype is not None and dtype not in DTYPES:
        raise ValueError(f"unknown dtype {dtype!r} (known: {', '.join(DTYPES)})")
    torch_dtype = DTYPES[dtype] if dtype is not None else own_dtype
    if implementation == "auto":
        implementation = "cpp" if cpp_pair_sums_available() else "torch"
    if implementation not in ("torch", "cpp"):
        raise ValueError(f"unknown implementation {implementation!r} (known: auto, torch, cpp)")
    hipnn = copy.deepcopy(potential.hipnn).to(device="cpu", dtype=torch_dtype).eval()
    hipnn.set_implementation(implementation)
    hipnn.requires_grad_(False)
    repulsion = copy.deepcopy(potential.repulsion)
    if repulsion is not None:
        repulsion = repulsion.to(device="cpu", dtype=torch_dtype)
    model = ExportedModel(
        hipnn,
        potential.species,
        potential.self_energies[index].cpu(),
        float(potential.energy_scale),
        int(potential.head_of_level[index]),
        repulsion,
    )
    # Frozen: parameters become constants, which makes energy + forces ~30% faster.
    scripted = torch.jit.freeze(torch.jit.script(model.eval()), preserved_attrs=["stage"], optimize_numerics=False)
    metadata = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "metamlip_version": metamlip.__version__,
        "torch_version": torch.__version__,
        "elements": [chemical_symbols[z] for z in potential.species],
        "atomic_numbers": list(potential.species),
        "cutoff": float(potential.cutoff),
        "n_interactions": int(potential.hipnn.n_interactions),
        "n_features": int(potential.hipnn.blocks[0].head.in_features),
        "tensor_order": int(potential.hipnn.tensor_order),
        "receptive_field": float(potential.cutoff) * int(potential.hipnn.n_interactions),
        "units": {"energy": "eV", "length": "Angstrom"},
        "level": level,
        "dtype": str(torch_dtype).removeprefix("torch."),
        "pair_sums": implementation,
        "op_library": {
            "file": _library.LIBRARY_NAME,
            "namespace": "metamlip",
            "required": _calls_op_library(scripted),
        },
        "self_energies": {
            chemical_symbols[z]: float(e) for z, e in zip(potential.species, potential.self_energies[index].tolist())
        },
        "energy_scale": float(potential.energy_scale),
        "architecture": dict(getattr(potential, "architecture", {})),
        "repulsion": repulsion.describe(potential.species) if repulsion is not None else {"kind": "none"},
        "min_pair_distance": MIN_PAIR_DISTANCE,
        "interface": INTERFACE,
    }
    return scripted, metadata


def _calls_op_library(scripted: torch.jit.ScriptModule) -> bool:
    """Whether the serialized code calls torch.ops.metamlip (then loading needs the library)."""
    buffer = io.BytesIO()
    torch.jit.save(scripted, buffer)
    with zipfile.ZipFile(buffer) as archive:
        return any(
            b"ops.metamlip." in archive.read(name)
            for name in archive.namelist()
            if "/code/" in name and name.endswith(".py")
        )


def save_exported(scripted: torch.jit.ScriptModule, metadata: dict[str, Any], path: str | Path) -> None:
    """Write the model with its metadata (atomically)."""
    with atomic_path(path) as tmp:
        torch.jit.save(scripted, str(tmp), _extra_files={METADATA_FILE: json.dumps(metadata, indent=1)})


def export_model(
    potential: Potential,
    path: str | Path,
    level: str | None = None,
    dtype: str | None = None,
    implementation: str = "auto",
) -> dict[str, Any]:
    """Export one level of `potential` to the file `path` (atomically); returns the metadata.

    Arguments as in `export_module`.
    """
    scripted, metadata = export_module(potential, level, dtype, implementation)
    save_exported(scripted, metadata, path)
    return metadata


def export_checkpoint(
    checkpoint: str | Path,
    output: str | Path,
    level: str | None = None,
    dtype: str | None = None,
    implementation: str = "auto",
) -> dict[str, Any]:
    """Export the model of a training checkpoint (a path or ``pretrained:NAME``) to `output`;
    returns the metadata written."""
    from metamlip.nn.checkpoint import load_potential

    return export_model(load_potential(resolve(str(checkpoint))), output, level, dtype, implementation)
