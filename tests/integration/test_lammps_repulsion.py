"""pair_style metamlip with the core repulsion: LAMMPS (1 and 2 ranks, the staged MPI path)
equals the Python model where atoms are pushed into each other's repulsion, and overlapping
atoms stop the run with an error naming their atom IDs."""

from __future__ import annotations

import numpy as np
import pytest
from ase.build import molecule

from metamlip.nn.repulsion import fitted_repulsion
from model_helpers import SPECIES, config_of, small_potential
from test_lammps_helpers import compute_lammps, export_model, molecular_box, reference, run_lmp, write_structure

TRAINING = [config_of(molecule(name).numbers, molecule(name).positions) for name in ("CH3CH2OH", "CH3CH2NH2", "HCOOH")]


@pytest.fixture(scope="module")
def potential():
    potential = small_potential(seed=2)
    potential.repulsion = fitted_repulsion("zbl", SPECIES, TRAINING, 0.5, 0.85, 2.0).double()
    return potential


@pytest.fixture(scope="module")
def model_file(potential, tmp_path_factory):
    return export_model(potential, tmp_path_factory.mktemp("model") / "model.pt")


def squeezed_box():
    """27 molecules packed so tightly that many pairs of atoms are inside their repulsion."""
    return molecular_box(3, 3.3, seed=4)


def test_lammps_serial_and_two_ranks_equal_python(potential, model_file, tmp_path):
    atoms = squeezed_box()
    plain = small_potential(seed=2)
    results = {n: compute_lammps(tmp_path / f"np{n}", model_file, atoms, nprocs=n) for n in (1, 2)}
    ref = reference(potential, results[1], atoms.pbc)
    without = reference(plain, results[1], atoms.pbc)
    assert ref.energy - without.energy > 1.0  # eV: the repulsion is really on in this box
    for n, result in results.items():
        assert abs(result.energy - ref.energy) <= 1e-8, n
        np.testing.assert_allclose(result.forces, ref.forces, rtol=0, atol=1e-8)
        np.testing.assert_allclose(result.virial, ref.virial, rtol=0, atol=1e-8)
        np.testing.assert_allclose(result.atom_energies, ref.atom_energies, rtol=0, atol=1e-8)


@pytest.mark.parametrize("nprocs", [1, 2])
def test_overlapping_atoms_are_an_error_naming_their_ids(model_file, tmp_path, nprocs):
    atoms = molecular_box(2, 4.2, seed=5)
    atoms.positions[7] = atoms.positions[3] + [0.02, 0.0, 0.0]
    write_structure(tmp_path, atoms)
    script = (
        f"units metal\natom_style atomic\nboundary p p p\nread_data data.lmp\npair_style metamlip\n"
        f"pair_coeff * * {model_file} H C N O\nvelocity all create 300 1\nfix 1 all nve\nrun 10\n"
    )
    proc = run_lmp(tmp_path, script, nprocs=nprocs, check=False)
    assert proc.returncode != 0
    assert "atoms 4 and 8 (atom IDs) are 0.02 Angstrom apart" in proc.stdout or (
        "atoms 8 and 4 (atom IDs) are 0.02 Angstrom apart" in proc.stdout
    ), proc.stdout[-2000:]
