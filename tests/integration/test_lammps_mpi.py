"""pair_style metamlip under MPI: 1, 2 and 4 ranks (oversubscribed on small machines) give the
same energy, forces (by atom ID) and pressure, and match the Python model."""

from __future__ import annotations

import numpy as np
import pytest

from model_helpers import small_potential
from test_lammps_helpers import cluster, compute_lammps, export_model, molecular_box, reference

RELATIVE = 1e-10

STRUCTURES = {
    "periodic": lambda: molecular_box(3, 4.2, seed=4),
    # ghost shells deeper than the subdomains: ghosts of ghosts, images of the same atom
    "triclinic-small": lambda: molecular_box(2, 4.0, seed=5, tilt=(0.15, 0.1, -0.1)),
    # no periodicity: with 4 ranks some subdomains hold no atom
    "cluster": lambda: cluster(2, box=30.0, seed=6),
}


@pytest.fixture(scope="module")
def potential():
    return small_potential(seed=2)


@pytest.fixture(scope="module")
def model_file(potential, tmp_path_factory):
    return export_model(potential, tmp_path_factory.mktemp("model") / "model.pt")


@pytest.mark.parametrize("name", list(STRUCTURES))
def test_ranks_agree(name, potential, model_file, tmp_path):
    atoms = STRUCTURES[name]()
    results = {n: compute_lammps(tmp_path / f"np{n}", model_file, atoms, nprocs=n) for n in (1, 2, 4)}
    for n, result in results.items():
        assert f"{n} rank(s)" in result.output
    serial = results[1]
    force_scale = np.abs(serial.forces).max()
    virial_scale = np.abs(serial.virial).max()
    for n in (2, 4):
        result = results[n]
        assert abs(result.energy - serial.energy) <= RELATIVE * abs(serial.energy)
        np.testing.assert_allclose(result.forces, serial.forces, rtol=0, atol=RELATIVE * force_scale)
        np.testing.assert_allclose(result.virial, serial.virial, rtol=0, atol=RELATIVE * virial_scale)
        np.testing.assert_allclose(result.atom_energies, serial.atom_energies, rtol=0, atol=RELATIVE * abs(serial.energy))
    ref = reference(potential, results[4], atoms.pbc)
    assert abs(results[4].energy - ref.energy) <= 1e-8
    np.testing.assert_allclose(results[4].forces, ref.forces, rtol=0, atol=1e-8)
    np.testing.assert_allclose(results[4].virial, ref.virial, rtol=0, atol=1e-8)


@pytest.mark.parametrize("tensor_order", [1, 2])
def test_tensor_models_serial_and_two_ranks_match_python(tensor_order, tmp_path):
    """HIP-NN-TS: the serial run (whole model) and 2 ranks (staged, pair vectors passed to
    stage) agree with each other and with the Python model."""
    potential = small_potential(seed=2, tensor_order=tensor_order)
    model_file = export_model(potential, tmp_path / "model.pt")
    atoms = STRUCTURES["triclinic-small"]()
    results = {n: compute_lammps(tmp_path / f"np{n}", model_file, atoms, nprocs=n) for n in (1, 2)}
    serial, split = results[1], results[2]
    assert "2 rank(s)" in split.output
    assert abs(split.energy - serial.energy) <= RELATIVE * abs(serial.energy)
    np.testing.assert_allclose(split.forces, serial.forces, rtol=0, atol=RELATIVE * np.abs(serial.forces).max())
    np.testing.assert_allclose(split.virial, serial.virial, rtol=0, atol=RELATIVE * np.abs(serial.virial).max())
    for result in (serial, split):
        ref = reference(potential, result, atoms.pbc)
        assert abs(result.energy - ref.energy) <= 1e-8
        np.testing.assert_allclose(result.forces, ref.forces, rtol=0, atol=1e-8)
        np.testing.assert_allclose(result.virial, ref.virial, rtol=0, atol=1e-8)
