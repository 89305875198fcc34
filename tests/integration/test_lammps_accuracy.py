"""pair_style metamlip equals the Python model: energy, forces, virial and per-atom energies on
periodic, triclinic, small (ghost images of the same atom) and non-periodic structures."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from ase.build import molecule

from model_helpers import small_potential
from test_lammps_helpers import (
    cluster,
    compute_lammps,
    export_model,
    molecular_box,
    reference,
)

TOLERANCE = 1e-8  # eV, eV/A (float64)


def tiny_cell() -> Atoms:
    """One molecule in a triclinic cell shorter than the cutoff (4 A): it sees its own images."""
    atoms = molecule("HCOOH")
    atoms.cell = [[3.9, 0.0, 0.0], [0.6, 3.8, 0.0], [-0.4, 0.5, 3.7]]
    atoms.pbc = True
    atoms.wrap()
    return atoms


STRUCTURES = {
    # 27 molecules (~190 atoms), orthogonal, 12.6 A: also smaller than 2 x receptive field (16 A)
    "periodic": lambda: molecular_box(3, 4.2, seed=0),
    "triclinic": lambda: molecular_box(3, 4.4, seed=1, tilt=(0.2, -0.15, 0.1)),
    # 7.6 A: shorter than the receptive field, many ghost images of every atom
    "small": lambda: molecular_box(2, 3.8, seed=2),
    "tiny": tiny_cell,
    "cluster": lambda: cluster(2),  # no periodicity, 40 A box
}


@pytest.fixture(scope="module")
def potential():
    return small_potential(seed=1)


@pytest.fixture(scope="module")
def model_file(potential, tmp_path_factory):
    return export_model(potential, tmp_path_factory.mktemp("model") / "model.pt")


def assert_matches(result, ref, tolerance: float = TOLERANCE) -> None:
    assert abs(result.energy - ref.energy) <= tolerance
    np.testing.assert_allclose(result.forces, ref.forces, rtol=0, atol=tolerance)
    np.testing.assert_allclose(result.virial, ref.virial, rtol=0, atol=tolerance)
    np.testing.assert_allclose(result.atom_energies, ref.atom_energies, rtol=0, atol=tolerance)
    np.testing.assert_allclose(result.atom_energies.sum(), result.energy, rtol=0, atol=tolerance)
    np.testing.assert_allclose(result.atom_virial.sum(0), result.virial, rtol=0, atol=tolerance)


@pytest.mark.parametrize("name", list(STRUCTURES))
def test_matches_python_model(name, potential, model_file, tmp_path):
    atoms = STRUCTURES[name]()
    result = compute_lammps(tmp_path, model_file, atoms)
    assert len(result.numbers) == len(atoms)
    ref = reference(potential, result, atoms.pbc)
    assert np.abs(ref.forces).max() > 0.05  # a non-trivial check
    assert_matches(result, ref)


def test_atom_style_full(potential, model_file, tmp_path):
    """Only positions and types are used: molecule IDs and charges change nothing."""
    atoms = STRUCTURES["periodic"]()
    result = compute_lammps(tmp_path, model_file, atoms, atom_style="full")
    assert_matches(result, reference(potential, result, atoms.pbc))


def test_float32_model(potential, tmp_path):
    model = export_model(potential, tmp_path / "model32.pt", dtype="float32")
    atoms = STRUCTURES["triclinic"]()
    result = compute_lammps(tmp_path / "run", model, atoms)
    ref = reference(potential, result, atoms.pbc)
    assert "float32" in result.output
    assert abs(result.energy - ref.energy) < 1e-3
    np.testing.assert_allclose(result.forces, ref.forces, rtol=0, atol=1e-4)
    np.testing.assert_allclose(result.virial, ref.virial, rtol=0, atol=1e-3)


def test_units_real_converts_energies(potential, model_file, tmp_path):
    """units real: kcal/mol and kcal/mol/A (LAMMPS's metal -> real energy factor), same lengths."""
    factor = 23.060549
    atoms = STRUCTURES["small"]()
    result = compute_lammps(tmp_path, model_file, atoms, units="real")
    ref = reference(potential, result, atoms.pbc)
    assert abs(result.energy - factor * ref.energy) <= factor * TOLERANCE
    np.testing.assert_allclose(result.forces, factor * ref.forces, rtol=0, atol=factor * TOLERANCE)
    np.testing.assert_allclose(result.virial, factor * ref.virial, rtol=0, atol=factor * TOLERANCE)
