"""Per-level, per-element reference energies fitted by linear least squares."""

from __future__ import annotations

import numpy as np

from metamlip.data.configuration import Dataset
from metamlip.data.errors import DataError


def composition_matrix(dataset: Dataset, species: list[int]) -> np.ndarray:
    """[n_configs, n_species] count of each species (atomic numbers in `species` order)."""
    index = {z: k for k, z in enumerate(species)}
    counts = np.zeros((len(dataset), len(species)))
    for row, config in enumerate(dataset):
        for z in config.numbers:
            if int(z) not in index:
                raise DataError(f"{config.source}: element Z={int(z)} is not among the model species {species}")
            counts[row, index[int(z)]] += 1
    return counts


def fit_self_energies(dataset: Dataset, species: list[int]) -> dict[str, np.ndarray]:
    """For each level: e[level] ([n_species], eV) minimising sum (E - sum_Z n_Z e_Z)^2.

    Compositions that cannot be told apart (e.g. a single molecule) get the minimum-norm
    solution, which still reproduces every fitted total exactly in the composition span.
    """
    result: dict[str, np.ndarray] = {}
    for level in dataset.levels():
        part = dataset.select_level(level)
        counts = composition_matrix(part, species)
        energies = np.array([c.energy for c in part], dtype=np.float64)
        solution, *_ = np.linalg.lstsq(counts, energies, rcond=None)
        result[level] = solution
    return result


def energy_scale(dataset: Dataset, species: list[int], self_energies: dict[str, np.ndarray]) -> float:
    """A model's output scale: the RMS force component (eV/A) if forces are known, else the
    std of the energy per atom left after the self energies ({level: [n_species] eV})."""
    forces = [c.forces for c in dataset if c.forces is not None]
    if forces:
        return float(np.sqrt(np.mean(np.concatenate(forces) ** 2))) or 1.0
    residuals = []
    for level, values in self_energies.items():
        part = dataset.select_level(level)
        counts = composition_matrix(part, species)
        residuals.append((np.array([c.energy for c in part]) - counts @ values) / counts.sum(1))
    return float(np.concatenate(residuals).std()) or 1.0
