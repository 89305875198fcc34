"""ASE calculator: energy, forces and stress equal the Python model; stress equals finite
differences of the energy under strain; ase.md and ase.optimize run; unknown elements refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from ase import Atoms, units
from ase.build import molecule
from ase.calculators.calculator import PropertyNotImplementedError
from ase.md.verlet import VelocityVerlet
from ase.md.velocitydistribution import thermalize_momenta
from ase.optimize import BFGS

from deploy_helpers import CUDA_READY, ethanol_box, molecular_box
from metamlip.ase import MetaMLIPCalculator
from metamlip.deploy import export_model
from metamlip.deploy.device import DeviceError
from metamlip.train.checkpoint import save_checkpoint
from model_helpers import batch_of, config_of, small_potential


@pytest.fixture(scope="module")
def potential():
    return small_potential(seed=8)


@pytest.fixture(scope="module")
def model_path(potential, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ase") / "model.pt"
    export_model(potential, path)
    return path


def triclinic() -> Atoms:
    numbers, positions, cell = ethanol_box()
    return Atoms(numbers=numbers, positions=positions, cell=cell, pbc=True)


def python_results(potential, atoms: Atoms) -> dict[str, np.ndarray]:
    config = config_of(atoms.numbers, atoms.positions, atoms.cell.array if atoms.pbc.any() else None, atoms.pbc)
    out = potential(batch_of([config], potential), compute_stress=bool(atoms.pbc.all()))
    return {key: value.detach().numpy() for key, value in out.items()}


@pytest.mark.parametrize("name", ["molecule", "periodic box", "triclinic"])
def test_calculator_equals_python_model(potential, model_path, name: str) -> None:
    atoms = {"molecule": molecule("CH3CH2OH"), "periodic box": molecular_box(), "triclinic": triclinic()}[name]
    atoms.calc = MetaMLIPCalculator(model_path)
    ref = python_results(potential, atoms)
    assert abs(atoms.get_potential_energy() - ref["energy"][0]) <= 1e-10 * abs(ref["energy"][0])
    assert atoms.get_potential_energy(force_consistent=True) == atoms.get_potential_energy()
    assert abs(atoms.calc.get_property("energies").sum() - ref["energy"][0]) < 1e-10 * abs(ref["energy"][0])
    np.testing.assert_allclose(atoms.get_forces(), ref["forces"], rtol=0, atol=1e-10)
    if atoms.pbc.all():
        np.testing.assert_allclose(atoms.get_stress(voigt=False), ref["stress"][0], rtol=0, atol=1e-10)
    else:
        with pytest.raises(PropertyNotImplementedError, match="stress needs a cell periodic"):
            atoms.get_stress()


def test_stress_equals_finite_differences(model_path) -> None:
    """sigma_ab = (1/V) dE/d(eps_ab) with positions and cell strained by (I + eps), central
    differences with h = 1e-5 (float64)."""
    atoms = triclinic()
    atoms.calc = MetaMLIPCalculator(model_path)
    stress = atoms.get_stress(voigt=False)
    h = 1e-5
    numeric = np.zeros((3, 3))
    for a in range(3):
        for b in range(3):
            energies = []
            for sign in (1, -1):
                strained = atoms.copy()
                deformation = np.eye(3)
                deformation[a, b] += sign * h
                strained.set_cell(atoms.cell.array @ deformation, scale_atoms=False)
                strained.positions = atoms.positions @ deformation
                strained.calc = atoms.calc
                energies.append(strained.get_potential_energy())
            numeric[a, b] = (energies[0] - energies[1]) / (2 * h) / atoms.get_volume()
    numeric = 0.5 * (numeric + numeric.T)
    np.testing.assert_allclose(stress, numeric, rtol=0, atol=1e-7 * max(1.0, np.abs(stress).max()))
    assert np.abs(stress).max() > 1e-4  # not trivially zero


def test_md_and_optimisation(model_path) -> None:
    atoms = molecular_box()
    atoms.calc = MetaMLIPCalculator(model_path)
    thermalize_momenta(atoms, temperature_K=300, rng=np.random.default_rng(0))
    start = atoms.get_total_energy()
    VelocityVerlet(atoms, timestep=0.25 * units.fs).run(40)
    assert abs(atoms.get_total_energy() - start) < 1e-3 * len(atoms)

    ethanol = molecule("CH3CH2OH")
    ethanol.calc = MetaMLIPCalculator(model_path)
    before = ethanol.get_potential_energy()
    BFGS(ethanol, logfile=None).run(fmax=0.05, steps=200)
    assert ethanol.get_potential_energy() < before
    assert np.abs(ethanol.get_forces()).max() < 0.05


def test_checkpoint_and_unknown_elements(potential, tmp_path: Path) -> None:
    checkpoint = tmp_path / "model.ckpt"
    save_checkpoint(checkpoint, potential, config={})
    atoms = molecule("CH3CH2OH")
    atoms.calc = MetaMLIPCalculator(checkpoint)
    assert abs(atoms.get_potential_energy() - python_results(potential, atoms)["energy"][0]) < 1e-9
    salt = Atoms("NaClH", positions=[[0, 0, 0], [2.5, 0, 0], [0, 1.5, 0]])
    salt.calc = MetaMLIPCalculator(checkpoint)
    with pytest.raises(ValueError, match=r"elements Na, Cl are not supported by this model \(supported: H, C, N, O\)"):
        salt.get_potential_energy()


@pytest.mark.parametrize("pbc", [False, True])
def test_no_atoms(model_path, pbc: bool) -> None:
    """An empty structure has zero energy, no forces, and zero stress when periodic."""
    atoms = Atoms(cell=np.eye(3) * 8.0, pbc=pbc)
    atoms.calc = MetaMLIPCalculator(model_path)
    assert atoms.get_potential_energy() == 0.0
    assert atoms.get_forces().shape == (0, 3)
    assert atoms.calc.get_property("energies").shape == (0,)
    if pbc:
        np.testing.assert_array_equal(atoms.get_stress(), np.zeros(6))


def test_level_error_names_the_python_argument() -> None:
    with pytest.raises(ValueError, match="choose one with level=") as error:
        MetaMLIPCalculator(small_potential(seed=3, levels=("gfn2", "hf")))
    assert "--level" not in str(error.value)


def test_device_cpu_is_the_default(potential, model_path) -> None:
    atoms = triclinic()
    results = []
    for kwargs in ({}, {"device": "cpu"}):
        atoms.calc = MetaMLIPCalculator(model_path, **kwargs)
        results.append((atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress()))
    assert results[0][0] == results[1][0]
    np.testing.assert_array_equal(results[0][1], results[1][1])
    np.testing.assert_array_equal(results[0][2], results[1][2])
    with pytest.raises(DeviceError, match=r"device='tpu': not a torch device \(use 'cpu' or 'cuda'\)"):
        MetaMLIPCalculator(model_path, device="tpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is visible: device='cuda' works here")
def test_device_cuda_without_a_gpu_is_refused(model_path) -> None:
    with pytest.raises(DeviceError, match=r"device='cuda': (no CUDA GPU is visible|torch .* was built without CUDA)"):
        MetaMLIPCalculator(model_path, device="cuda")


@pytest.mark.skipif(not CUDA_READY, reason="needs a GPU and the op library built with CUDA")
def test_device_cuda_equals_cpu(model_path) -> None:
    atoms = triclinic()
    atoms.calc = MetaMLIPCalculator(model_path, device="cpu")
    cpu = atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress()
    atoms.calc = MetaMLIPCalculator(model_path, device="cuda")
    cuda = atoms.get_potential_energy(), atoms.get_forces(), atoms.get_stress()
    assert abs(cuda[0] - cpu[0]) <= 1e-10 * abs(cpu[0])
    np.testing.assert_allclose(cuda[1], cpu[1], rtol=0, atol=1e-10)
    np.testing.assert_allclose(cuda[2], cpu[2], rtol=0, atol=1e-10)


@pytest.mark.parametrize("tensor_order", [1, 2])
def test_tensor_model_calculator_equals_python_model(tensor_order: int, tmp_path: Path) -> None:
    """HIP-NN-TS exported and run by the calculator: energy, forces, stress of a triclinic box."""
    potential = small_potential(seed=8, tensor_order=tensor_order)
    export_model(potential, tmp_path / "model.pt")
    atoms = triclinic()
    atoms.calc = MetaMLIPCalculator(tmp_path / "model.pt")
    ref = python_results(potential, atoms)
    assert abs(atoms.get_potential_energy() - ref["energy"][0]) <= 1e-10 * abs(ref["energy"][0])
    np.testing.assert_allclose(atoms.get_forces(), ref["forces"], rtol=0, atol=1e-10)
    np.testing.assert_allclose(atoms.get_stress(voigt=False), ref["stress"][0], rtol=0, atol=1e-10)
