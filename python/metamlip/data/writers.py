"""Writers for extxyz and HDF5 (atomic: an interrupted write never clobbers the old file)."""

from __future__ import annotations

from pathlib import Path

import ase.io
import h5py
import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator

from metamlip.atomic import atomic_path
from metamlip.data.configuration import Configuration, Dataset


def to_atoms(config: Configuration) -> Atoms:
    """ASE Atoms with info['level'], info['molecule'] and a single-point calculator (eV, eV/A)."""
    atoms = Atoms(
        numbers=config.numbers,
        positions=config.positions,
        cell=config.cell if config.cell is not None else np.zeros((3, 3)),
        pbc=config.pbc,
    )
    atoms.info["level"] = config.level
    if config.molecule:
        atoms.info["molecule"] = config.molecule
    results = {}
    if config.energy is not None:
        results["energy"] = config.energy
    if config.forces is not None:
        results["forces"] = config.forces
    if results:
        atoms.calc = SinglePointCalculator(atoms, **results)
    return atoms


def write_extxyz(dataset: Dataset, path: str | Path) -> None:
    """All configurations as extended XYZ (gzip if the name ends in .gz)."""
    with atomic_path(path) as tmp:
        ase.io.write(tmp, [to_atoms(c) for c in dataset], format="extxyz")


def write_hdf5(dataset: Dataset, path: str | Path) -> None:
    """One group per (molecule, composition, level), in the layout `read_hdf5` reads (eV, Angstrom)."""
    groups: dict[tuple, list[Configuration]] = {}
    for config in dataset:
        key = (config.molecule, tuple(config.numbers.tolist()), config.level)
        groups.setdefault(key, []).append(config)
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as handle:
            handle.attrs["energy_unit"] = "eV"
            for k, ((molecule, numbers, level), configs) in enumerate(groups.items()):
                group = handle.create_group(f"mol{k:05d}")
                group.attrs["level"] = level
                group.attrs["molecule"] = molecule
                group["species"] = np.asarray(numbers, dtype=np.int64)
                group["coordinates"] = np.stack([c.positions for c in configs])
                group["energies"] = np.array([c.energy for c in configs], dtype=np.float64)
                if all(c.forces is not None for c in configs):
                    group["forces"] = np.stack([c.forces for c in configs])
                if any(c.pbc.any() for c in configs):
                    group["cells"] = np.stack([c.cell for c in configs])
                    group["pbc"] = np.stack([c.pbc for c in configs])
