"""Energies and forces in eV and eV/Angstrom: reference values and finite differences."""

import numpy as np
import pytest
from ase import Atoms
from ase.build import molecule
from ase.units import Hartree

from metamlip.qm.calculators import auxiliary_basis, compute, settings
from metamlip.qm.levels import LevelError, parse_level


def _fd_forces(atoms: Atoms, level, h: float = 1e-3, density_fit: bool = False) -> np.ndarray:
    """Central finite differences of the energy (eV) in Angstrom: forces (n_atoms, 3) eV/A."""
    forces = np.zeros((len(atoms), 3))
    for i in range(len(atoms)):
        for k in range(3):
            energies = []
            for step in (h, -h):
                moved = atoms.copy()
                moved.positions[i, k] += step
                energies.append(compute(moved, level, density_fit=density_fit).energy)
            forces[i, k] = -(energies[0] - energies[1]) / (2 * h)
    return forces


def test_h2_hf_sto3g_energy_in_ev():
    # H2 at R = 1.4 bohr, HF/STO-3G: -1.1167 Hartree (Szabo & Ostlund, table 3.5).
    h2 = Atoms("H2", positions=[[0, 0, 0], [0, 0, 1.4 * 0.529177210903]])
    label = compute(h2, parse_level("hf/sto-3g"))
    assert label.energy == pytest.approx(-1.1167 * Hartree, abs=1e-4 * Hartree)
    assert label.scf_strategy == "diis" and label.scf_cycles > 0


@pytest.mark.parametrize("level_name", ["hf/sto-3g", "pbe/sto-3g"])
def test_h2_forces_match_finite_differences(level_name):
    level = parse_level(level_name)
    h2 = Atoms("H2", positions=[[0.02, -0.01, 0.0], [0.1, 0.05, 0.80]])
    forces = compute(h2, level).forces
    assert forces.shape == (2, 3)
    np.testing.assert_allclose(forces, _fd_forces(h2, level), atol=2e-4)
    np.testing.assert_allclose(forces.sum(axis=0), 0.0, atol=1e-6)


def test_xtb_forces_match_finite_differences():
    level = parse_level("gfn2-xtb")
    water = molecule("H2O")
    water.positions[0] += [0.05, -0.03, 0.02]
    label = compute(water, level)
    assert label.scf_cycles is None
    np.testing.assert_allclose(label.forces, _fd_forces(water, level, h=1e-4), atol=1e-4)


@pytest.mark.parametrize("level_name", ["hf/sto-3g", "pbe/sto-3g", "mp2/sto-3g", "gfn2-xtb"])
def test_energy_only_matches_energy_of_full_label(level_name):
    level = parse_level(level_name)
    water = molecule("H2O")
    water.positions[0] += [0.05, -0.03, 0.02]
    full, energy_only = compute(water, level), compute(water, level, forces=False)
    assert energy_only.forces is None and full.forces.shape == (3, 3)
    assert energy_only.energy == pytest.approx(full.energy, abs=1e-8)


@pytest.mark.parametrize("level_name", ["hf/6-31g*", "b3lyp/6-31g*"])
def test_density_fit_is_close_to_exact_integrals_and_consistent(level_name):
    level = parse_level(level_name)
    water = molecule("H2O")
    water.positions[0] += [0.05, -0.03, 0.02]
    exact, fitted = compute(water, level), compute(water, level, density_fit=True)
    assert fitted.energy != exact.energy  # really another integral scheme
    assert fitted.energy == pytest.approx(exact.energy, abs=5e-3)  # eV
    np.testing.assert_allclose(fitted.forces, exact.forces, atol=5e-3)  # eV/A
    if level.family == "hf":  # the fitted forces are the gradient of the fitted energy
        np.testing.assert_allclose(fitted.forces, _fd_forces(water, level, density_fit=True),
                                   atol=2e-4)
    assert settings(level, density_fit=True)["density_fit"] == "cc-pvdz-jkfit"
    assert "density_fit" not in settings(level)


@pytest.mark.parametrize("level_name", ["mp2/cc-pvdz", "gfn2-xtb"])
def test_density_fit_is_refused_where_unsupported(level_name):
    level = parse_level(level_name)
    with pytest.raises(LevelError, match="density fitting is supported for HF and DFT"):
        compute(molecule("H2O"), level, density_fit=True)
    with pytest.raises(LevelError, match="HF and DFT levels only"):
        auxiliary_basis(level)


def test_auxiliary_basis_is_resolved_once_per_level(monkeypatch):
    from pyscf import gto

    probes = []
    real_m = gto.M
    monkeypatch.setattr(gto, "M", lambda *a, **k: probes.append(k) or real_m(*a, **k))
    auxiliary_basis.cache_clear()
    level = parse_level("hf/6-31g*")
    assert [auxiliary_basis(level) for _ in range(3)] == ["cc-pvdz-jkfit"] * 3
    assert len(probes) == 1
    assert auxiliary_basis(parse_level("pbe/def2-svp")) == "def2-svp-jkfit"
    assert len(probes) == 2  # another level is resolved anew
