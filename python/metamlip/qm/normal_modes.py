"""ANI-style normal-mode sampling (Smith, Isayev, Roitberg, Chem. Sci. 8, 3192 (2017)).

The molecule is relaxed with GFN2-xTB; its Hessian (central differences of the forces) gives
normal modes q_i (unit Cartesian vectors) with force constants K_i (eV/Angstrom^2). A frame
displaces the minimum by sum_i R_i q_i with R_i = +-sqrt(3 c_i N_a k_B T / K_i), where the
c_i are uniform random numbers rescaled so that their sum is itself uniform in [0, 1].
"""

from __future__ import annotations

import numpy as np
from ase import Atoms, units
from ase.optimize import BFGS

HESSIAN_STEP = 0.005  # Angstrom
RELAX_FMAX = 1e-3  # eV/Angstrom


def relax(atoms: Atoms) -> Atoms:
    """GFN2-xTB minimum of ``atoms`` (BFGS until max |force| < RELAX_FMAX), with calculator."""
    from tblite.ase import TBLite

    system = Atoms(atoms.numbers, positions=atoms.positions)
    system.calc = TBLite(method="GFN2-xTB", verbosity=0)
    BFGS(system, logfile=None).run(fmax=RELAX_FMAX, steps=1000)
    return system


def hessian(system: Atoms) -> np.ndarray:
    """Cartesian Hessian (3N, 3N) in eV/Angstrom^2, symmetrized, from the attached calculator."""
    reference = system.positions.copy()
    columns = []
    for index in range(3 * len(system)):
        forces = []
        for step in (HESSIAN_STEP, -HESSIAN_STEP):
            displaced = reference.copy()
            displaced[index // 3, index % 3] += step
            system.positions = displaced
            forces.append(system.get_forces().reshape(-1))
        columns.append(-(forces[0] - forces[1]) / (2 * HESSIAN_STEP))
    system.positions = reference
    matrix = np.array(columns)
    return 0.5 * (matrix + matrix.T)


def vibrational_modes(system: Atoms) -> tuple[np.ndarray, np.ndarray]:
    """Vibrational modes of a minimum: unit Cartesian vectors (n_modes, N, 3) and force
    constants (n_modes,) in eV/Angstrom^2; n_modes = 3N-6, or 3N-5 for a linear molecule."""
    linear = np.sort(system.get_moments_of_inertia())[0] < 1e-3 * system.get_masses().sum()
    n_modes = 3 * len(system) - (5 if linear else 6)
    h = hessian(system)
    inv_sqrt_m = np.repeat(system.get_masses() ** -0.5, 3)
    _, vectors = np.linalg.eigh(h * np.outer(inv_sqrt_m, inv_sqrt_m))
    modes = vectors[:, -n_modes:].T * inv_sqrt_m  # the stiffest: drop translations, rotations
    modes /= np.linalg.norm(modes, axis=1, keepdims=True)
    constants = np.einsum("ki,ij,kj->k", modes, h, modes)
    return modes.reshape(n_modes, len(system), 3), constants


def displace(positions: np.ndarray, modes: np.ndarray, constants: np.ndarray,
             temperature: float, rng: np.random.Generator) -> np.ndarray:
    """One ANI normal-mode displacement of ``positions`` (N, 3) Angstrom at ``temperature`` K."""
    c = rng.uniform(size=len(constants))
    c *= rng.uniform() / c.sum()
    signs = rng.choice([-1.0, 1.0], size=len(constants))
    amplitudes = signs * np.sqrt(3 * c * len(positions) * units.kB * temperature / constants)
    return positions + np.einsum("k,kai->ai", amplitudes, modes)
