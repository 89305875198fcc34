"""Two atoms at the same position (or closer than MIN_PAIR_DISTANCE) are an error naming them
in every Python-side engine: the exported model, ASE, OpenMM TorchForce and PythonForce (the
LAMMPS case, with atom IDs, is in test_lammps_repulsion.py). Never NaN forces."""

from __future__ import annotations

import numpy as np
import openmm
import pytest
import torch
from ase.build import molecule

from deploy_helpers import exported_energy_forces, ethanol_box, topology_of
from metamlip.ase import MetaMLIPCalculator
from metamlip.deploy import load_model
from metamlip.deploy.pairs import MIN_PAIR_DISTANCE
from metamlip.openmm import create_force, openmmtorch_problem
from model_helpers import small_potential

BACKENDS = [
    "pythonforce",
    pytest.param(
        "torchforce",
        marks=pytest.mark.skipif(openmmtorch_problem() is not None, reason=f"TorchForce unavailable: {openmmtorch_problem()}"),
    ),
]


@pytest.fixture(scope="module")
def potential():
    return small_potential(seed=3)


def ethanol_with_overlap(distance: float):
    """Ethanol whose atom 6 sits `distance` Angstrom from atom 2."""
    atoms = molecule("CH3CH2OH")
    atoms.positions[6] = atoms.positions[2] + [distance, 0.0, 0.0]
    return atoms


def test_threshold_is_0_1_angstrom():
    assert MIN_PAIR_DISTANCE == 0.1


@pytest.mark.parametrize("distance", [0.0, 0.05])
def test_exported_model(potential, distance):
    atoms = ethanol_with_overlap(distance)
    model, _ = load_model(potential)
    with pytest.raises(torch.jit.Error, match=rf"atoms 2 and 6 are {distance:g} Angstrom apart, closer than 0.1 Angstrom"):
        exported_energy_forces(model, potential.cutoff, atoms.numbers, atoms.positions)
    # Just above the threshold the forces are finite.
    atoms = ethanol_with_overlap(0.11)
    _, forces = exported_energy_forces(model, potential.cutoff, atoms.numbers, atoms.positions)
    assert np.isfinite(forces).all()


def test_exported_model_nan_position(potential):
    atoms = molecule("CH3CH2OH")
    model, _ = load_model(potential)
    positions = torch.tensor(atoms.positions)
    edge_index = torch.tensor([[0, 1], [1, 0]])
    positions[1, 0] = float("nan")
    with pytest.raises(torch.jit.Error, match="atoms 0 and 1 have a NaN distance"):
        model(positions, torch.as_tensor(atoms.numbers), edge_index, torch.zeros(2, 3, dtype=torch.float64), torch.ones(9, dtype=torch.bool))


def test_ase(potential):
    atoms = ethanol_with_overlap(0.0)
    atoms.calc = MetaMLIPCalculator(potential, level="test")
    with pytest.raises(RuntimeError, match=r"^metamlip: atoms 2 and 6 are 0 Angstrom apart, closer than 0.1 Angstrom"):
        atoms.get_forces()
    numbers, positions, cell = ethanol_box()  # periodic: an atom on top of another's image
    from ase import Atoms

    box = Atoms(numbers=numbers, positions=positions, cell=cell, pbc=True)
    box.positions[12] = box.positions[3] + cell[0] + [0.03, 0.0, 0.0]
    box.calc = MetaMLIPCalculator(potential, level="test")
    with pytest.raises(RuntimeError, match=r"atoms (3 and 12|12 and 3) are 0.03 Angstrom apart"):
        box.get_potential_energy()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("subset", [False, True])
def test_openmm(potential, backend, subset):
    atoms = ethanol_with_overlap(0.0)
    topology = topology_of(atoms)
    selected = list(range(1, 9)) if subset else None  # OpenMM indices, not positions in the subset
    system = openmm.System()
    for _ in atoms.numbers:
        system.addParticle(1.0)
    system.addForce(create_force(potential, topology, atoms=selected, backend=backend, level="test"))
    context = openmm.Context(system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName("Reference"))
    context.setPositions(atoms.positions * 0.1)
    with pytest.raises(openmm.OpenMMException, match=r"metamlip: atoms 2 and 6 are 0 Angstrom apart, closer than 0.1"):
        context.getState(getForces=True)
