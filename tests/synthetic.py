"""Synthetic labelled molecules for tests: a Morse pair potential plus planted self energies."""

from __future__ import annotations

import numpy as np
from ase.build import molecule

from metamlip.data import Configuration, Dataset

PLANTED_SELF_ENERGIES = {1: -13.6, 6: -1029.0, 7: -1485.0, 8: -2041.0}  # eV per atom


def morse_energy_forces(positions: np.ndarray, depth: float = 0.3, width: float = 1.6, r0: float = 1.3):
    """Sum over pairs of D (1 - exp(-a (r - r0)))^2 - D: energy (eV) and forces [n, 3] (eV/A)."""
    diff = positions[None, :, :] - positions[:, None, :]
    r = np.linalg.norm(diff, axis=-1)
    iu = np.triu_indices(len(positions), 1)
    x = np.exp(-width * (r[iu] - r0))
    energy = float(np.sum(depth * (1 - x) ** 2 - depth))
    dE_dr = 2 * depth * (1 - x) * width * x
    forces = np.zeros_like(positions)
    unit = diff[iu] / r[iu][:, None]  # from i to j
    np.add.at(forces, iu[0], dE_dr[:, None] * unit)
    np.add.at(forces, iu[1], -dE_dr[:, None] * unit)
    return energy, forces


def synthetic_dataset(
    n_per_molecule: int = 20,
    names: tuple[str, ...] = ("CH3CH2OH", "H3CNH2", "HCOOH"),
    level: str = "synthetic/morse",
    seed: int = 0,
    noise: float = 0.08,
    self_energies: dict[int, float] | None = None,
) -> Dataset:
    """Randomly displaced molecules labelled with Morse energies + planted self energies."""
    rng = np.random.default_rng(seed)
    self_energies = self_energies or PLANTED_SELF_ENERGIES
    configs = []
    for name in names:
        base = molecule(name)
        for k in range(n_per_molecule):
            positions = base.positions + rng.normal(scale=noise, size=base.positions.shape)
            energy, forces = morse_energy_forces(positions)
            energy += sum(self_energies[int(z)] for z in base.numbers)
            configs.append(
                Configuration(
                    numbers=base.numbers.astype(np.int64),
                    positions=positions,
                    level=level,
                    energy=energy,
                    forces=forces,
                    molecule=name,
                    source=f"synthetic:{name}:{k}",
                )
            )
    return Dataset(configs)
