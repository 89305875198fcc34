"""Checks that a configuration can be trained on, with errors naming file, frame and atom."""

from __future__ import annotations

from typing import Iterable

import numpy as np
from ase.data import chemical_symbols
from scipy.spatial import cKDTree

from metamlip.data.configuration import Configuration
from metamlip.data.errors import DataError

MIN_DISTANCE = 1e-3  # Angstrom: closer atoms are treated as duplicates


def validate_configuration(
    config: Configuration,
    supported_elements: Iterable[int] | None = None,
    require_energy: bool = True,
) -> None:
    """Raise DataError for a configuration that cannot be used (the message names the frame)."""
    where = config.source or "configuration"
    n = config.numbers.shape[0] if config.numbers.ndim == 1 else -1
    if n <= 0:
        raise DataError(f"{where}: atomic numbers must be a non-empty 1-d array")
    if config.positions.shape != (n, 3):
        raise DataError(f"{where}: positions have shape {config.positions.shape}, expected ({n}, 3)")
    if not np.all(np.isfinite(config.positions)):
        atom = int(np.argwhere(~np.isfinite(config.positions))[0, 0])
        raise DataError(f"{where}: atom {atom} has a NaN or infinite position")
    if not config.level:
        raise DataError(f"{where}: no level of theory (set info['level'], or give the file as FILE::LEVEL or pass --level)")
    if require_energy and config.energy is None:
        raise DataError(f"{where}: missing energy")
    if config.energy is not None and not np.isfinite(config.energy):
        raise DataError(f"{where}: energy is {config.energy}")
    if config.forces is not None:
        if config.forces.shape != (n, 3):
            raise DataError(f"{where}: forces have shape {config.forces.shape}, expected ({n}, 3)")
        if not np.all(np.isfinite(config.forces)):
            atom = int(np.argwhere(~np.isfinite(config.forces))[0, 0])
            raise DataError(f"{where}: atom {atom} has a NaN or infinite force")
    if config.cell is not None and config.pbc.any():
        if config.cell.shape != (3, 3) or abs(np.linalg.det(config.cell)) < 1e-9:
            raise DataError(f"{where}: periodic cell is singular or malformed: {config.cell.tolist()}")
    if supported_elements is not None:
        supported = set(int(z) for z in supported_elements)
        for atom, z in enumerate(config.numbers):
            if int(z) not in supported:
                symbol = chemical_symbols[int(z)] if 0 < int(z) < len(chemical_symbols) else str(z)
                names = ", ".join(chemical_symbols[s] for s in sorted(supported))
                raise DataError(
                    f"{where}: atom {atom} is element {symbol}, which the model does not support "
                    f"(supported: {names})"
                )
    _check_duplicates(config, where)


def _check_duplicates(config: Configuration, where: str) -> None:
    pairs = cKDTree(config.positions).query_pairs(MIN_DISTANCE, output_type="ndarray")
    if len(pairs):
        a, b = sorted(int(x) for x in pairs[0])
        distance = float(np.linalg.norm(config.positions[a] - config.positions[b]))
        raise DataError(
            f"{where}: atoms {a} and {b} are at the same position (distance {distance:.2e} Angstrom)"
        )
