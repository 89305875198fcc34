"""HIP-NN potential (tensor_order 0) and HIP-NN-TS (1, 2): forces are -dE/dx, invariances,
locality, periodic images, dtypes."""

import numpy as np
import pytest
import torch
from ase.build import molecule
from model_helpers import batch_of, config_of, small_potential
from scipy.spatial.transform import Rotation


def ethanol(seed: int = 0):
    atoms = molecule("CH3CH2OH")
    rng = np.random.default_rng(seed)
    return atoms.numbers, atoms.positions + rng.normal(scale=0.05, size=atoms.positions.shape)


def energy_forces(potential, configs):
    out = potential(batch_of(configs, potential), compute_forces=True)
    return out["energy"].detach(), out["forces"].detach()


@pytest.mark.parametrize("tensor_order", [0, 1, 2])
def test_forces_are_minus_gradient_by_central_differences(tensor_order):
    potential = small_potential(tensor_order=tensor_order)
    numbers, positions = ethanol()
    _, forces = energy_forces(potential, [config_of(numbers, positions)])
    h = 1e-5
    numeric = np.zeros_like(positions)
    for atom in range(len(numbers)):
        for axis in range(3):
            plus, minus = positions.copy(), positions.copy()
            plus[atom, axis] += h
            minus[atom, axis] -= h
            e_plus, _ = energy_forces(potential, [config_of(numbers, plus)])
            e_minus, _ = energy_forces(potential, [config_of(numbers, minus)])
            numeric[atom, axis] = -(e_plus.item() - e_minus.item()) / (2 * h)
    np.testing.assert_allclose(forces.numpy(), numeric, atol=1e-7, rtol=1e-6)


@pytest.mark.parametrize("tensor_order", [0, 1, 2])
def test_rotation_translation_permutation_invariance(tensor_order):
    potential = small_potential(tensor_order=tensor_order)
    numbers, positions = ethanol(1)
    energy, forces = energy_forces(potential, [config_of(numbers, positions)])
    rotation = Rotation.random(random_state=3).as_matrix()
    moved = positions @ rotation.T + np.array([3.0, -7.0, 11.0])
    e_rot, f_rot = energy_forces(potential, [config_of(numbers, moved)])
    torch.testing.assert_close(e_rot, energy, rtol=1e-12, atol=1e-10)
    torch.testing.assert_close(f_rot, forces @ torch.from_numpy(rotation).T, rtol=1e-10, atol=1e-10)
    perm = np.random.default_rng(0).permutation(len(numbers))
    e_perm, f_perm = energy_forces(potential, [config_of(numbers[perm], positions[perm])])
    torch.testing.assert_close(e_perm, energy, rtol=1e-12, atol=1e-10)
    torch.testing.assert_close(f_perm, forces[perm], rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("tensor_order", [0, 1, 2])
def test_far_apart_molecules_add_up(tensor_order):
    potential = small_potential(tensor_order=tensor_order)
    n1, p1 = ethanol(2)
    water = molecule("H2O")
    e1, f1 = energy_forces(potential, [config_of(n1, p1)])
    e2, f2 = energy_forces(potential, [config_of(water.numbers, water.positions)])
    both = config_of(np.concatenate([n1, water.numbers]), np.concatenate([p1, water.positions + 100.0]))
    e, f = energy_forces(potential, [both])
    torch.testing.assert_close(e, e1 + e2, rtol=1e-12, atol=1e-9)
    torch.testing.assert_close(f, torch.cat([f1, f2]), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("tensor_order", [0, 1, 2])
def test_batch_equals_separate_and_no_gradient_leaks(tensor_order):
    potential = small_potential(tensor_order=tensor_order)
    configs = [config_of(*ethanol(k)) for k in range(3)]
    e_batch, f_batch = energy_forces(potential, configs)
    separate = [energy_forces(potential, [c]) for c in configs]
    torch.testing.assert_close(e_batch, torch.cat([e for e, _ in separate]), rtol=1e-12, atol=1e-10)
    torch.testing.assert_close(f_batch, torch.cat([f for _, f in separate]), rtol=1e-10, atol=1e-12)


def periodic_box(seed: int = 0):
    rng = np.random.default_rng(seed)
    cell = np.array([[6.0, 0.0, 0.0], [1.0, 5.5, 0.0], [0.5, -0.8, 6.5]])
    n = 12
    numbers = rng.choice([1, 6, 7, 8], size=n)
    # atoms on a jittered grid so none are unphysically close
    grid = np.stack(np.meshgrid(range(3), range(2), range(2), indexing="ij"), -1).reshape(-1, 3)
    fractional = (grid + 0.5 + rng.uniform(-0.15, 0.15, size=(n, 3))) / np.array([3, 2, 2])
    return numbers, fractional @ cell, cell


@pytest.mark.parametrize("tensor_order", [0, 1, 2])
def test_whole_lattice_shifts_change_nothing(tensor_order):
    potential = small_potential(tensor_order=tensor_order)
    numbers, positions, cell = periodic_box()
    base = config_of(numbers, positions, cell, [True, True, True])
    energy, forces = energy_forces(potential, [base])
    shifts = np.random.default_rng(1).integers(-2, 3, size=(len(numbers), 3))
    moved = config_of(numbers, positions + shifts @ cell, cell, [True, True, True])
    e_moved, f_moved = energy_forces(potential, [moved])
    torch.testing.assert_close(e_moved, energy, rtol=1e-12, atol=1e-10)
    torch.testing.assert_close(f_moved, forces, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("tensor_order", [0, 1, 2])
def test_stress_is_strain_derivative_of_energy(tensor_order):
    potential = small_potential(tensor_order=tensor_order)
    numbers, positions, cell = periodic_box(2)
    batch = batch_of([config_of(numbers, positions, cell, [True] * 3)], potential)
    stress = potential(batch, compute_stress=True)["stress"][0].detach().numpy()
    volume = abs(np.linalg.det(cell))
    h = 1e-6
    numeric = np.zeros((3, 3))
    for a in range(3):
        for b in range(3):
            values = []
            for sign in (1, -1):
                strain = np.eye(3)
                strain[a, b] += sign * h
                c = config_of(numbers, positions @ strain, cell @ strain, [True] * 3)
                values.append(energy_forces(potential, [c])[0].item())
            numeric[a, b] = (values[0] - values[1]) / (2 * h) / volume
    numeric = 0.5 * (numeric + numeric.T)
    np.testing.assert_allclose(stress, numeric, atol=1e-8)


@pytest.mark.parametrize("tensor_order", [0, 2])
@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-4), (torch.float64, 1e-12)])
def test_float32_and_float64_agree(dtype, tol, tensor_order):
    reference = small_potential(dtype=torch.float64, tensor_order=tensor_order)
    other = small_potential(dtype=dtype, tensor_order=tensor_order)
    numbers, positions = ethanol(4)
    config = config_of(numbers, positions)
    e_ref, f_ref = energy_forces(reference, [config])
    out = other(batch_of([config], other, dtype), compute_forces=True)
    assert out["forces"].dtype == dtype
    torch.testing.assert_close(out["energy"].double(), e_ref, rtol=tol, atol=tol * 100)
    torch.testing.assert_close(out["forces"].double(), f_ref, rtol=tol, atol=tol * 10)
