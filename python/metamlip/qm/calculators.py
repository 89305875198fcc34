"""Energy and forces of one configuration at one level of theory (tblite or PySCF).

Conventions: charge 0; spin from the electron count (singlet if even, doublet if odd, with
unrestricted HF/KS/MP2 for doublets; other multiplicities are not supported). PySCF runs use
exact integrals unless density fitting is asked for (HF and DFT only: ``density_fit=True``
fits J and K with PySCF's predefined JK-fitting basis of the orbital basis, e.g.
cc-pvdz-jkfit for 6-31g*: HF/6-31G* 3.8x faster at 16 atoms, 1.9x at 8, B3LYP 1.05-1.5x,
forces within a few meV/Angstrom; bench/density_fit.py),
all-electron MP2 (no frozen core), spherical basis functions, DFT grids at
``grids.level = 3`` with grid response in the forces.
Results are converted from Hartree and Hartree/Bohr to eV and eV/Angstrom with ase.units.
PySCF and tblite are imported lazily so that thread settings can be made first.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib.metadata import version

import numpy as np
from ase import Atoms
from ase.units import Bohr, Hartree

from metamlip.qm.levels import Level, LevelError

SCF_CONV_TOL = 1e-10  # Hartree
SCF_CONV_TOL_GRAD = 1e-6  # Hartree (orbital gradient)
SCF_MAX_CYCLE = 100
RETRY_MAX_CYCLE = 200
LEVEL_SHIFT = 0.5  # Hartree
DFT_GRID_LEVEL = 3


class LabelError(RuntimeError):
    """A configuration that could not be labelled (e.g. SCF not converged); never stored."""


@dataclass
class Label:
    """Result of one calculation.

    energy: eV; forces: (n_atoms, 3) eV/Angstrom (None when not asked for); scf_cycles: total SCF iterations over all
    attempts (None for xTB); scf_strategy: the SCF attempt that converged
    (``diis``, ``level_shift``, ``newton``; None for xTB).
    """

    energy: float
    forces: np.ndarray | None
    scf_cycles: int | None = None
    scf_strategy: str | None = None


def program_version(level: Level) -> str:
    """Program and version used for a level, e.g. ``pyscf 2.14.0``."""
    program = "tblite" if level.family == "xtb" else "pyscf"
    return f"{program} {version(program)}"


@cache
def auxiliary_basis(level: Level) -> str:
    """The density-fitting basis used at ``level``: PySCF's predefined JK-fitting basis of
    its orbital basis (``cc-pvdz-jkfit`` for ``6-31g*``, ``def2-svp-jkfit`` for ``def2-svp``).

    Resolved once per level and process (a probe molecule is built the first time).
    LevelError for xTB and MP2 levels and for orbital bases without a predefined one.
    """
    if level.family not in ("hf", "dft"):
        raise LevelError(f"level '{level.name}': density fitting is supported for HF and DFT "
                         "levels only")
    from pyscf import gto
    from pyscf.df.addons import make_auxbasis

    probe = gto.M(atom="H 0 0 0; H 0 0 0.74", basis=level.basis, verbose=0)
    name = make_auxbasis(probe, xc="HF").get("H")
    if not isinstance(name, str):
        raise LevelError(f"level '{level.name}': PySCF has no predefined JK-fitting basis for "
                         f"'{level.basis}'; label it without density fitting")
    return name


def settings(level: Level, density_fit: bool = False) -> dict[str, float | int | str]:
    """Numerical settings recorded with every label at this level (stored in frame info);
    ``density_fit`` (the auxiliary basis) is present only for density-fitted labels."""
    if level.family == "xtb":
        return {}
    out: dict[str, float | int | str] = {"scf_conv_tol": SCF_CONV_TOL}
    if level.family == "dft":
        out["grid_level"] = DFT_GRID_LEVEL
    if density_fit:
        out["density_fit"] = auxiliary_basis(level)
    return out


def compute(atoms: Atoms, level: Level, forces: bool = True, density_fit: bool = False) -> Label:
    """Energy (eV) and forces (eV/Angstrom) of ``atoms`` at ``level``; LabelError on failure.

    forces=False: the energy only (``Label.forces`` None), which skips the PySCF gradient
    (about a third of the cost of HF/DFT, two thirds of MP2's). density_fit: fit the
    two-electron integrals with ``auxiliary_basis(level)`` (HF and DFT only, LevelError
    otherwise).
    """
    auxbasis = auxiliary_basis(level) if density_fit else None
    if level.family == "xtb":
        label = _compute_xtb(atoms, level)
        return label if forces else Label(label.energy, None)
    return _compute_pyscf(atoms, level, forces, auxbasis)


def _spin(atoms: Atoms) -> int:
    """2S for a neutral molecule: 0 for an even electron count, 1 for an odd one."""
    return int(atoms.get_atomic_numbers().sum()) % 2


def _compute_xtb(atoms: Atoms, level: Level) -> Label:
    from ase.calculators.calculator import CalculationFailed
    from tblite.ase import TBLite

    from metamlip.qm.levels import XTB_METHODS

    work = Atoms(atoms.numbers, positions=atoms.positions)
    work.calc = TBLite(method=XTB_METHODS[level.method], charge=0,
                       multiplicity=1 + _spin(atoms), verbosity=0)
    try:
        energy = work.get_potential_energy()
        forces = work.get_forces()
    except CalculationFailed as err:  # tblite's ASE calculator: SCC not converged
        raise LabelError(f"tblite failed: {err}") from err
    return Label(float(energy), np.asarray(forces, dtype=float))


def _kernel(mf, dm0=None) -> bool:
    """Run one SCF; return whether it converged (patched in tests to force failures)."""
    mf.kernel(dm0=dm0)
    return bool(mf.converged)


def _cycles(mf) -> int:
    return int(getattr(mf, "cycles", 0) or 0)


def _converged_scf(make_mf):
    """Converge an SCF: DIIS, then level shift, then second-order (Newton) SCF.

    A robust attempt that converges is followed by a plain SCF started from its density, so
    the returned object is an ordinary converged mean-field with canonical orbitals.
    Returns (mf, total cycles, strategy); raises LabelError listing the attempts.
    """
    mf = make_mf()
    if _kernel(mf):
        return mf, _cycles(mf), "diis"
    cycles = _cycles(mf)
    dm = mf.make_rdm1()

    shifted = make_mf()
    shifted.level_shift = LEVEL_SHIFT
    shifted.max_cycle = RETRY_MAX_CYCLE
    attempts = [("level_shift", shifted)]
    newton = make_mf().newton()
    newton.max_cycle = RETRY_MAX_CYCLE
    attempts.append(("newton", newton))
    for strategy, robust in attempts:
        converged = _kernel(robust, dm0=dm)
        cycles += _cycles(robust)
        if converged:
            final = make_mf()
            if _kernel(final, dm0=robust.make_rdm1()):
                return final, cycles + _cycles(final), strategy
        dm = robust.make_rdm1()
    raise LabelError(
        f"SCF not converged after DIIS ({SCF_MAX_CYCLE} cycles), level shift {LEVEL_SHIFT} Ha "
        f"and Newton ({RETRY_MAX_CYCLE} cycles each)"
    )


def _compute_pyscf(atoms: Atoms, level: Level, forces: bool = True,
                   auxbasis: str | None = None) -> Label:
    from pyscf import dft, gto, mp, scf

    mol = gto.M(
        atom=list(zip(atoms.get_chemical_symbols(), atoms.positions.tolist(), strict=True)),
        basis=level.basis, unit="Angstrom", charge=0, spin=_spin(atoms), verbose=0,
    )

    def make_mf():
        if level.family == "dft":
            mf = dft.KS(mol, xc=level.method)
            mf.grids.level = DFT_GRID_LEVEL
        else:
            mf = scf.HF(mol)
        if auxbasis is not None:
            mf = mf.density_fit(auxbasis=auxbasis)
        mf.conv_tol = SCF_CONV_TOL
        mf.conv_tol_grad = SCF_CONV_TOL_GRAD
        mf.max_cycle = SCF_MAX_CYCLE
        return mf

    mf, cycles, strategy = _converged_scf(make_mf)
    if level.family == "mp2":
        pt = mp.MP2(mf)
        pt.kernel()
        energy, method = pt.e_tot, pt
    else:
        energy, method = mf.e_tot, mf
    if not forces:
        return Label(float(energy) * Hartree, None, cycles, strategy)
    grad = method.nuc_grad_method()
    if level.family == "dft":
        grad.grid_response = True
    gradient = grad.kernel()
    return Label(float(energy) * Hartree, -np.asarray(gradient, dtype=float) * (Hartree / Bohr), cycles, strategy)
