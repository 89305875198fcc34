"""Readers for extxyz, HDF5 and npz files into a Dataset (eV, Angstrom)."""

from __future__ import annotations

from pathlib import Path

import ase.io
import h5py
import numpy as np
from ase import Atoms
from ase.units import Hartree

from metamlip.data.configuration import Configuration, Dataset
from metamlip.data.errors import DataError

ENERGY_UNITS = {"ev": 1.0, "hartree": Hartree, "ha": Hartree, "kcal/mol": 0.0433641153087705}


def canonical_level(level: str) -> str:
    """Levels are compared in lower case without surrounding spaces ("B3LYP/6-31G*" -> "b3lyp/6-31g*")."""
    return level.strip().lower()


def read_dataset(path: str | Path, level: str | None = None, energy_unit: str | None = None) -> Dataset:
    """Read a file by its suffix: .xyz/.extxyz (optionally .gz), .h5/.hdf5, .npz.

    level: level of theory for frames that do not name one (overrides nothing that is set).
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: file not found")
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    kind = suffixes[-1] if suffixes else ""
    if kind in (".xyz", ".extxyz"):
        return read_extxyz(path, level)
    if kind in (".h5", ".hdf5"):
        return read_hdf5(path, level, energy_unit)
    if kind == ".npz":
        return read_npz(path, level, energy_unit)
    raise DataError(f"{path}: unknown file type {path.suffix!r} (expected .extxyz, .xyz, .h5, .hdf5, .npz)")


def read_extxyz(path: str | Path, level: str | None = None) -> Dataset:
    """Frames of an extended-XYZ file; level from each frame's info['level'] or `level`."""
    path = Path(path)
    try:
        frames = ase.io.read(path, index=":", format="extxyz")
    except Exception as error:  # ASE raises many types for malformed text
        raise DataError(f"{path}: not a readable extxyz file: {error}") from error
    return Dataset(_from_atoms(atoms, f"{path}:frame {k}", level) for k, atoms in enumerate(frames))


def _from_atoms(atoms: Atoms, source: str, level: str | None) -> Configuration:
    results = atoms.calc.results if atoms.calc is not None else {}
    energy = results.get("energy", atoms.info.get("energy"))
    forces = results.get("forces", atoms.arrays.get("forces"))
    frame_level = atoms.info.get("level", level)
    pbc = np.asarray(atoms.pbc, dtype=bool)
    return Configuration(
        numbers=np.asarray(atoms.numbers, dtype=np.int64),
        positions=np.asarray(atoms.positions, dtype=np.float64),
        level=canonical_level(str(frame_level)) if frame_level is not None else "",
        energy=None if energy is None else float(energy),
        forces=None if forces is None else np.asarray(forces, dtype=np.float64),
        cell=np.asarray(atoms.cell.array, dtype=np.float64) if pbc.any() else None,
        pbc=pbc,
        molecule=str(atoms.info.get("molecule", atoms.get_chemical_formula())),
        source=source,
    )


def read_hdf5(path: str | Path, level: str | None = None, energy_unit: str | None = None) -> Dataset:
    """HDF5 with one group per molecule (nested groups allowed, as in ANI-1x/ANI-1ccx/SPICE).

    Each group holds `species` or `atomic_numbers` [n] (or element symbols), `coordinates`
    [F, n, 3] (Angstrom), and either `energies` [F] (+ optional `forces` [F, n, 3]) with the
    group or file attribute `level`, or dataset pairs `<level>.energy` / `<level>.forces`
    (ANI style, e.g. `wb97x_dz.energy`), each a level of its own. Units: attribute
    `energy_unit` ("eV" default, or "hartree"); forces in energy_unit per Angstrom.
    """
    path = Path(path)
    configs: list[Configuration] = []
    try:
        handle = h5py.File(path, "r")
    except OSError as error:
        raise DataError(f"{path}: not a readable HDF5 file: {error}") from error
    with handle:
        file_level = handle.attrs.get("level", level)
        file_unit = handle.attrs.get("energy_unit", energy_unit or "eV")
        for name, group in _molecule_groups(handle):
            configs.extend(_read_group(path, name, group, file_level, file_unit, energy_unit))
    return Dataset(configs)


def _molecule_groups(group: h5py.Group, prefix: str = ""):
    for key in group:
        item = group[key]
        if isinstance(item, h5py.Group):
            if "coordinates" in item:
                yield prefix + key, item
            else:
                yield from _molecule_groups(item, prefix + key + "/")


def _attr_str(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _read_group(path, name, group, file_level, file_unit, unit_override) -> list[Configuration]:
    where = f"{path}:{name}"
    if "species" in group:
        species = group["species"][()]
    elif "atomic_numbers" in group:
        species = group["atomic_numbers"][()]
    else:
        raise DataError(f"{where}: group has neither `species` nor `atomic_numbers`")
    if species.dtype.kind in "SOU":
        numbers = np.array([Atoms(_attr_str(s)).numbers[0] for s in species], dtype=np.int64)
    else:
        numbers = species.astype(np.int64)
    coordinates = np.asarray(group["coordinates"][()], dtype=np.float64)
    if coordinates.ndim != 3 or coordinates.shape[1:] != (numbers.shape[0], 3):
        raise DataError(
            f"{where}: coordinates have shape {coordinates.shape}, expected (frames, {numbers.shape[0]}, 3)"
        )
    unit_name = _attr_str(unit_override or group.attrs.get("energy_unit", file_unit)).lower()
    if unit_name not in ENERGY_UNITS:
        raise DataError(f"{where}: unknown energy_unit {unit_name!r} (known: {', '.join(ENERGY_UNITS)})")
    scale = ENERGY_UNITS[unit_name]
    labels: list[tuple[str, str, str | None]] = []  # (level, energy key, forces key)
    if "energies" in group:
        group_level = group.attrs.get("level", file_level)
        if group_level is None:
            raise DataError(f"{where}: no level of theory (set the `level` attribute, or give the file as FILE::LEVEL or pass --level)")
        labels.append((_attr_str(group_level), "energies", "forces" if "forces" in group else None))
    for key in group:
        if key.endswith(".energy"):
            stem = key[: -len(".energy")]
            labels.append((stem, key, f"{stem}.forces" if f"{stem}.forces" in group else None))
    if not labels:
        raise DataError(f"{where}: no `energies` dataset and no `<level>.energy` datasets")
    cells = np.asarray(group["cells"][()], dtype=np.float64) if "cells" in group else None
    pbcs = np.asarray(group["pbc"][()], dtype=bool) if "pbc" in group else None
    molecule = _attr_str(group.attrs.get("molecule", name))
    configs = []
    for level_name, energy_key, forces_key in labels:
        energies = np.asarray(group[energy_key][()], dtype=np.float64) * scale
        forces = None if forces_key is None else np.asarray(group[forces_key][()], dtype=np.float64) * scale
        if energies.shape != (coordinates.shape[0],):
            raise DataError(f"{where}: {energy_key} has shape {energies.shape}, expected ({coordinates.shape[0]},)")
        for frame in range(coordinates.shape[0]):
            configs.append(
                Configuration(
                    numbers=numbers,
                    positions=coordinates[frame],
                    level=canonical_level(level_name),
                    energy=float(energies[frame]),
                    forces=None if forces is None else forces[frame],
                    cell=None if cells is None else cells[frame],
                    pbc=np.zeros(3, dtype=bool) if pbcs is None else pbcs[frame],
                    molecule=molecule,
                    source=f"{where}:frame {frame}",
                )
            )
    return configs


def read_npz(path: str | Path, level: str | None = None, energy_unit: str | None = None) -> Dataset:
    """One molecule's trajectory: `numbers`|`Z` [n], `positions`|`R` [F, n, 3],
    `energies`|`E` [F] and optional `forces`|`F` [F, n, 3] (sGDML/MD17 keys accepted);
    level from the `level` entry or `level`. Units eV (or `energy_unit`)."""
    path = Path(path)
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as error:
        raise DataError(f"{path}: not a readable npz file ({error or 'empty file'})") from error
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise DataError(f"{path}: not an npz archive (a single .npy array?)")
    with archive as data:
        keys = set(data.files)

        def pick(*names: str):
            for key in names:
                if key in keys:
                    return data[key]
            return None

        numbers = pick("numbers", "Z")
        positions = pick("positions", "R")
        energies = pick("energies", "energy", "E")
        forces = pick("forces", "F")
        file_level = str(data["level"]) if "level" in keys else level
        unit = energy_unit or (str(data["energy_unit"]) if "energy_unit" in keys else "eV")
    if numbers is None or positions is None or energies is None:
        raise DataError(f"{path}: npz needs `numbers`, `positions` and `energies` (or Z, R, E); found {sorted(keys)}")
    if file_level is None:
        raise DataError(f"{path}: no level of theory (store a `level` entry, or give the file as {path}::LEVEL or pass --level)")
    if unit.lower() not in ENERGY_UNITS:
        raise DataError(f"{path}: unknown energy unit {unit!r}")
    scale = ENERGY_UNITS[unit.lower()]
    numbers = np.ravel(numbers)
    energies = np.ravel(energies).astype(np.float64) * scale
    expected = (len(energies), len(numbers), 3)
    positions = np.asarray(positions, dtype=np.float64)
    if positions.shape == expected[1:] and len(energies) == 1:
        positions = positions[None]
    if positions.shape != expected:
        raise DataError(f"{path}: positions have shape {positions.shape}, expected {expected} ({len(energies)} energies, {len(numbers)} atoms)")
    if forces is not None:
        forces = np.asarray(forces, dtype=np.float64) * scale
        if forces.shape == expected[1:] and len(energies) == 1:
            forces = forces[None]
        if forces.shape != expected:
            raise DataError(f"{path}: forces have shape {forces.shape}, expected {expected} like the positions")
    return Dataset(
        Configuration(
            numbers=np.asarray(numbers, dtype=np.int64),
            positions=positions[k],
            level=canonical_level(file_level),
            energy=float(energies[k]),
            forces=None if forces is None else forces[k],
            source=f"{path}:frame {k}",
        )
        for k in range(positions.shape[0])
    )
