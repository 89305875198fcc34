"""OpenMM: both backends, both CPU platforms, equal the Python model (molecule, periodic box,
molecule split across the boundary, triclinic box, ML subset); openmm-ml; NVE energy drift."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import openmm
import openmm.app
import pytest
import torch
from ase.build import molecule

from deploy_helpers import (
    CUDA_READY,
    EV_TO_KJ_PER_MOL,
    ethanol_box,
    molecular_box,
    python_energy_forces,
    topology_of,
)
from metamlip.deploy import export_model
from metamlip.deploy.device import DeviceError
from metamlip.openmm import create_force, openmmtorch_problem
from metamlip.openmm import forces as openmm_forces
from metamlip.train.checkpoint import save_checkpoint
from model_helpers import small_potential

PLATFORMS = ("Reference", "CPU")
BACKENDS = ("torchforce", "pythonforce")

requires_openmmtorch = pytest.mark.skipif(
    openmmtorch_problem() is not None, reason=f"TorchForce unavailable: {openmmtorch_problem()}"
)


@pytest.fixture(scope="module")
def potential():
    return small_potential(seed=7)


@pytest.fixture(scope="module")
def model_path(potential, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("openmm") / "model.pt"
    export_model(potential, path)
    return path


def openmm_energy_forces(
    force: openmm.Force, numbers, positions, cell=None, platform: str = "Reference"
) -> tuple[float, np.ndarray]:
    """(energy eV, forces [N, 3] eV/A) of a System holding `force` (positions and cell in A)."""
    system = openmm.System()
    for _ in numbers:
        system.addParticle(1.0)
    if cell is not None:
        system.setDefaultPeriodicBoxVectors(*(openmm.Vec3(*row) * 0.1 for row in np.asarray(cell)))
    system.addForce(force)
    return context_energy_forces(system, positions, platform)


def context_energy_forces(
    system: openmm.System, positions, platform: str = "Reference", groups: set[int] | None = None
) -> tuple[float, np.ndarray]:
    context = openmm.Context(system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName(platform))
    context.setPositions(np.asarray(positions) * 0.1)
    state = context.getState(getEnergy=True, getForces=True, **({} if groups is None else {"groups": groups}))
    energy = state.getPotentialEnergy().value_in_unit(openmm.unit.kilojoule_per_mole) / EV_TO_KJ_PER_MOL
    forces = state.getForces(asNumpy=True).value_in_unit(openmm.unit.kilojoule_per_mole / openmm.unit.nanometer)
    return energy, np.asarray(forces) / EV_TO_KJ_PER_MOL / 10.0


def systems() -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray | None]]:
    """name -> (atomic numbers, positions A, cell A or None)."""
    ethanol = molecule("CH3CH2OH")
    box = molecular_box()
    return {
        "molecule": (ethanol.numbers, ethanol.positions, None),
        "periodic box": (box.numbers, box.positions, box.cell.array),
        "triclinic": ethanol_box(),
    }


def assert_matches(energy: float, forces: np.ndarray, ref_energy: float, ref_forces: np.ndarray) -> None:
    assert abs(energy - ref_energy) <= 1e-6 * max(1.0, abs(ref_energy))
    np.testing.assert_allclose(forces, ref_forces, rtol=1e-6, atol=1e-6 * np.abs(ref_forces).max())


@pytest.mark.parametrize("platform", PLATFORMS)
@pytest.mark.parametrize("backend", [pytest.param("torchforce", marks=requires_openmmtorch), "pythonforce"])
@pytest.mark.parametrize("name", ["molecule", "periodic box", "triclinic"])
def test_openmm_equals_python_model(potential, model_path, platform: str, backend: str, name: str) -> None:
    numbers, positions, cell = systems()[name]
    force = create_force(model_path, numbers.tolist(), periodic=cell is not None, backend=backend)
    energy, forces = openmm_energy_forces(force, numbers, positions, cell, platform)
    assert_matches(energy, forces, *python_energy_forces(potential, numbers, positions, cell))


@pytest.mark.parametrize("platform", PLATFORMS)
@pytest.mark.parametrize("backend", [pytest.param("torchforce", marks=requires_openmmtorch), "pythonforce"])
def test_molecule_split_across_the_boundary(potential, model_path, backend: str, platform: str) -> None:
    """A molecule wrapped across the faces of a 20 A box has its vacuum energy, for any shift."""
    ethanol = molecule("CH3CH2OH")
    ref_energy, ref_forces = python_energy_forces(potential, ethanol.numbers, ethanol.positions)
    cell = np.eye(3) * 20.0
    for shift in ([0.0, 0.0, 0.0], [0.4, -0.3, 0.2], [20.0, 10.0, -40.0]):
        positions = (ethanol.positions + shift) % 20.0
        assert np.ptp(positions, axis=0).max() > 10.0  # split across a face
        force = create_force(model_path, ethanol.numbers.tolist(), periodic=True, backend=backend)
        energy, forces = openmm_energy_forces(force, ethanol.numbers, positions, cell, platform)
        assert_matches(energy, forces, ref_energy, ref_forces)


@requires_openmmtorch
@pytest.mark.parametrize("periodic", [False, True])
def test_backends_agree_on_an_ml_subset(potential, model_path, periodic: bool) -> None:
    """ML region = the first two molecules of the box; other particles feel no force."""
    box = molecular_box()
    n_ml = len(molecule("CH3CH2OH")) + len(molecule("CH3CH2NH2"))
    atoms = list(range(n_ml))
    cell = box.cell.array if periodic else None
    results = []
    for backend in BACKENDS:
        force = create_force(model_path, box.numbers.tolist(), atoms=atoms, periodic=periodic, backend=backend)
        results.append(openmm_energy_forces(force, box.numbers, box.positions, cell, "CPU"))
    (e_torch, f_torch), (e_python, f_python) = results
    assert abs(e_torch - e_python) <= 1e-10 * abs(e_python)
    np.testing.assert_allclose(f_torch, f_python, rtol=0, atol=1e-10)
    ref_energy, ref_forces = python_energy_forces(potential, box.numbers[:n_ml], box.positions[:n_ml], cell)
    assert_matches(e_python, f_python[:n_ml], ref_energy, ref_forces)
    assert not f_python[n_ml:].any()


def test_bad_input(model_path) -> None:
    with pytest.raises(ValueError, match=r"particle 1 is element S, which the model does not support"):
        create_force(model_path, [1, 16, 1], backend="pythonforce")
    create_force(model_path, [1, 16, 1], atoms=[0, 2], backend="pythonforce")  # S outside the ML region
    with pytest.raises(ValueError, match=r"atoms must be distinct particle indices in \[0, 3\)"):
        create_force(model_path, [1, 8, 1], atoms=[0, 3], backend="pythonforce")
    with pytest.raises(ValueError, match="unknown backend 'cuda'"):
        create_force(model_path, [1, 8, 1], backend="cuda")


def test_automatic_fallback_to_pythonforce(model_path, monkeypatch, caplog) -> None:
    monkeypatch.setattr(openmm_forces, "openmmtorch_problem", lambda: "openmmtorch is broken here")
    with caplog.at_level(logging.WARNING, logger="metamlip.openmm.forces"):
        force = create_force(model_path, [8, 1, 1])
    assert isinstance(force, openmm.PythonForce)
    assert caplog.messages == ["metamlip: using openmm.PythonForce because openmmtorch is broken here"]


def water_topology(n_waters: int, side: float) -> tuple[openmm.app.Topology, np.ndarray]:
    """TIP3P-named water molecules on a grid in a cubic box (side in A); positions in A."""
    topology = openmm.app.Topology()
    chain = topology.addChain()
    water = molecule("H2O")
    per_side = int(np.ceil(n_waters ** (1 / 3)))
    positions = []
    for k in range(n_waters):
        residue = topology.addResidue("HOH", chain)
        o = topology.addAtom("O", openmm.app.element.oxygen, residue)
        for name in ("H1", "H2"):
            topology.addBond(o, topology.addAtom(name, openmm.app.element.hydrogen, residue))
        corner = (np.array(np.unravel_index(k, (per_side,) * 3)) + 0.5) * side / per_side
        positions.append(water.positions[[0, 1, 2]] + corner)
    topology.setPeriodicBoxVectors([openmm.Vec3(side, 0, 0) * 0.1, openmm.Vec3(0, side, 0) * 0.1, openmm.Vec3(0, 0, side) * 0.1])
    return topology, np.concatenate(positions)


@pytest.mark.parametrize("backend", [pytest.param("torchforce", marks=requires_openmmtorch), "pythonforce"])
def test_openmm_ml_create_system_and_mixed_system(model_path, backend: str) -> None:
    from openmmml import MLPotential

    topology, positions = water_topology(8, 10.0)
    ml_atoms = list(range(6))
    ml = MLPotential("metamlip", modelPath=str(model_path), backend=backend)
    numbers = [atom.element.atomic_number for atom in topology.atoms()]

    direct = create_force(model_path, numbers, periodic=True, backend=backend)
    full = context_energy_forces(ml.createSystem(topology), positions)
    assert_matches(*full, *openmm_energy_forces(direct, numbers, positions, 10.0 * np.eye(3)))

    forcefield = openmm.app.ForceField("amber14/tip3p.xml")
    mm_system = forcefield.createSystem(
        topology, nonbondedMethod=openmm.app.CutoffPeriodic, nonbondedCutoff=0.45 * openmm.unit.nanometer
    )
    mixed = ml.createMixedSystem(topology, mm_system, ml_atoms, forceGroup=1)
    direct = create_force(model_path, numbers, atoms=ml_atoms, periodic=True, backend=backend)
    ml_energy, ml_forces = context_energy_forces(mixed, positions, groups={1})
    assert_matches(ml_energy, ml_forces, *openmm_energy_forces(direct, numbers, positions, 10.0 * np.eye(3)))
    assert not ml_forces[6:].any()


def test_openmm_ml_needs_a_model_path() -> None:
    from openmmml import MLPotential

    with pytest.raises(ValueError, match=r"needs modelPath="):
        MLPotential("metamlip")
    with pytest.raises(ValueError, match=r"unknown arguments modelpath"):
        MLPotential("metamlip", modelPath="model.pt", modelpath="model.pt")


def test_example_script_runs(model_path, tmp_path: Path) -> None:
    script = Path(__file__).parents[2] / "examples" / "openmm" / "md.py"
    result = subprocess.run(
        [sys.executable, str(script), "--model", str(model_path), "--steps", "20", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    for name in ("vacuum", "box"):
        rows = (tmp_path / f"{name}.csv").read_text().splitlines()
        assert rows[0].startswith('#"Step"') and len(rows) == 1 + 20
        assert (tmp_path / f"{name}.dcd").stat().st_size > 0 and (tmp_path / f"{name}.pdb").exists()
    assert "box: 54 atoms, 20 steps of 0.5 fs (NVE)" in result.stdout


def test_pythonforce_system_survives_serialization(potential, model_path) -> None:
    """The PythonForce computation pickles (TorchScript bytes), so XML round trips work."""
    ethanol = molecule("CH3CH2OH")
    system = openmm.System()
    for _ in ethanol.numbers:
        system.addParticle(1.0)
    system.addForce(create_force(model_path, ethanol.numbers.tolist(), backend="pythonforce"))
    copy = openmm.XmlSerializer.deserialize(openmm.XmlSerializer.serialize(system))
    energy, forces = context_energy_forces(copy, ethanol.positions)
    assert_matches(energy, forces, *python_energy_forces(potential, ethanol.numbers, ethanol.positions))


@pytest.mark.parametrize("backend", [pytest.param("torchforce", marks=requires_openmmtorch), "pythonforce"])
def test_force_from_a_checkpoint_or_potential(potential, tmp_path: Path, backend: str) -> None:
    checkpoint = tmp_path / "model.ckpt"
    save_checkpoint(checkpoint, potential, config={})
    ethanol = molecule("CH3CH2OH")
    ref = python_energy_forces(potential, ethanol.numbers, ethanol.positions)
    for source in (checkpoint, potential):
        force = create_force(source, ethanol.numbers.tolist(), backend=backend)
        assert_matches(*openmm_energy_forces(force, ethanol.numbers, ethanol.positions), *ref)


def _particles(n: int) -> openmm.System:
    system = openmm.System()
    for _ in range(n):
        system.addParticle(1.0)
    return system


@pytest.mark.parametrize("backend", [pytest.param("torchforce", marks=requires_openmmtorch), "pythonforce"])
def test_atom_count_mismatch_is_refused(model_path, backend: str) -> None:
    """A Topology of 9 atoms and a System of 10 particles: refused when create_force sees the
    System (and at the first evaluation, with the same numbers, when it does not)."""
    ethanol = molecule("CH3CH2OH")
    topology = topology_of(ethanol)
    with pytest.raises(ValueError, match="the System has 10 particles but the Topology has 9 atoms"):
        create_force(model_path, topology, backend=backend, system=_particles(10))
    with pytest.raises(ValueError, match="the System has 8 particles but elements has 9 atoms"):
        create_force(model_path, ethanol.numbers.tolist(), backend=backend, system=_particles(8))
    system = _particles(10)
    system.addForce(create_force(model_path, topology, backend=backend))
    with pytest.raises(openmm.OpenMMException, match="OpenMM passed 10 particles but the force was created for 9"):
        context_energy_forces(system, np.concatenate([ethanol.positions, [[6.0, 6.0, 6.0]]]))


def test_openmm_ml_refuses_a_system_of_another_size(model_path) -> None:
    from openmmml import MLPotential

    topology, _ = water_topology(4, 8.0)
    ml = MLPotential("metamlip", modelPath=str(model_path), backend="pythonforce")
    with pytest.raises(ValueError, match="the System has 15 particles but the Topology has 12 atoms"):
        ml.createMixedSystem(topology, _particles(15), list(range(3)))


def test_level_error_names_the_python_argument() -> None:
    with pytest.raises(ValueError, match="choose one with level=") as error:
        create_force(small_potential(seed=3, levels=("gfn2", "hf")), [8, 1, 1], backend="pythonforce")
    assert "--level" not in str(error.value)


@pytest.mark.parametrize("backend", [pytest.param("torchforce", marks=requires_openmmtorch), "pythonforce"])
def test_device_cpu(potential, model_path, backend: str) -> None:
    """device='cpu' gives the default results (a TorchForce without a GPU copy of the model runs
    on the CPU platforms as before)."""
    numbers, positions, cell = systems()["triclinic"]
    default, cpu = (
        openmm_energy_forces(
            create_force(model_path, numbers.tolist(), periodic=True, backend=backend, **kwargs), numbers, positions, cell
        )
        for kwargs in ({}, {"device": "cpu"})
    )
    assert default[0] == cpu[0]
    np.testing.assert_array_equal(default[1], cpu[1])


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is visible: device='cuda' works here")
@pytest.mark.parametrize("backend", [pytest.param("torchforce", marks=requires_openmmtorch), "pythonforce"])
def test_device_cuda_without_a_gpu_is_refused(model_path, backend: str) -> None:
    with pytest.raises(DeviceError, match=r"device='cuda': (no CUDA GPU is visible|torch .* was built without CUDA)"):
        create_force(model_path, [8, 1, 1], backend=backend, device="cuda")


@pytest.mark.skipif(not CUDA_READY, reason="needs a GPU and the op library built with CUDA")
def test_pythonforce_on_cuda_equals_cpu(model_path) -> None:
    numbers, positions, cell = systems()["triclinic"]
    results = [
        openmm_energy_forces(
            create_force(model_path, numbers.tolist(), periodic=True, backend="pythonforce", device=device),
            numbers, positions, cell,
        )
        for device in ("cpu", "cuda")
    ]
    assert abs(results[1][0] - results[0][0]) <= 1e-10 * abs(results[0][0])
    np.testing.assert_allclose(results[1][1], results[0][1], rtol=0, atol=1e-10)


def _has_cuda_platform() -> bool:
    names = [openmm.Platform.getPlatform(k).getName() for k in range(openmm.Platform.getNumPlatforms())]
    return "CUDA" in names


@requires_openmmtorch
@pytest.mark.skipif(not (CUDA_READY and _has_cuda_platform()), reason="needs a GPU, CUDA op library and OpenMM's CUDA platform")
def test_torchforce_on_the_cuda_platform(potential, model_path) -> None:
    """openmmtorch passes CUDA tensors: the GPU copy of the model runs on them."""
    numbers, positions, cell = systems()["triclinic"]
    force = create_force(model_path, numbers.tolist(), periodic=True, backend="torchforce")
    system = openmm.System()
    for _ in numbers:
        system.addParticle(1.0)
    system.setDefaultPeriodicBoxVectors(*(openmm.Vec3(*row) * 0.1 for row in np.asarray(cell)))
    system.addForce(force)
    platform = openmm.Platform.getPlatformByName("CUDA")
    context = openmm.Context(system, openmm.VerletIntegrator(0.001), platform, {"Precision": "double"})
    context.setPositions(np.asarray(positions) * 0.1)
    state = context.getState(getEnergy=True, getForces=True)
    energy = state.getPotentialEnergy().value_in_unit(openmm.unit.kilojoule_per_mole) / EV_TO_KJ_PER_MOL
    forces = np.asarray(state.getForces(asNumpy=True)._value) / EV_TO_KJ_PER_MOL / 10.0


@pytest.mark.parametrize("backend", [pytest.param("torchforce", marks=requires_openmmtorch), "pythonforce"])
@pytest.mark.parametrize("tensor_order", [1, 2])
def test_tensor_model_equals_python_model(tensor_order: int, backend: str, tmp_path: Path) -> None:
    """HIP-NN-TS in OpenMM (CPU platform): the triclinic box."""
    potential = small_potential(seed=7, tensor_order=tensor_order)
    path = tmp_path / "model.pt"
    export_model(potential, path)
    numbers, positions, cell = systems()["triclinic"]
    force = create_force(path, numbers.tolist(), periodic=True, backend=backend)
    energy, forces = openmm_energy_forces(force, numbers, positions, cell, "CPU")
    assert_matches(energy, forces, *python_energy_forces(potential, numbers, positions, cell))
