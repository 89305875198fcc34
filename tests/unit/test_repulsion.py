"""Core repulsion (nn/repulsion.py): a wall at short range, smooth, zero on the training data,
stored in checkpoints and exported models, and the same in every evaluation path."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase.build import molecule

from deploy_helpers import exported_energy_forces, python_energy_forces
from metamlip.deploy import build_pairs, load_model
from metamlip.nn.build import potential_from_dict, potential_to_dict
from metamlip.nn.repulsion import ZBLRepulsion, fitted_repulsion, shortest_pair_distances
from metamlip.pretrained import resolve
from metamlip.nn.checkpoint import load_potential
from model_helpers import SPECIES, config_of, small_potential

TRAINING = [config_of(molecule(name).numbers, molecule(name).positions) for name in ("CH3CH2OH", "CH3CH2NH2", "HCOOH")]


def with_repulsion(seed: int = 0):
    potential = small_potential(seed)
    potential.repulsion = fitted_repulsion("zbl", SPECIES, TRAINING, 0.5, 0.85, 2.0).double()
    return potential


def zbl_reference(z_a: int, z_b: int, r: float) -> float:
    """ZBL written out once more (eV), without switching."""
    a = 0.46850 / (z_a**0.23 + z_b**0.23)
    x = r / a
    phi = (
        0.18175 * np.exp(-3.19980 * x)
        + 0.50986 * np.exp(-0.94229 * x)
        + 0.28022 * np.exp(-0.40290 * x)
        + 0.02817 * np.exp(-0.20162 * x)
    )
    return 14.399645 * z_a * z_b / r * phi


def dimer_energy(module: ZBLRepulsion, a: int, b: int, r: torch.Tensor) -> torch.Tensor:
    """Repulsion energy (eV) of species a and b at distances r [K], through the full-list path."""
    species = torch.tensor([a, b])
    first, second = torch.tensor([0, 1]), torch.tensor([1, 0])
    return torch.stack([module(species, torch.stack([d, d]), first, second, 2).sum() for d in r])


def test_radii_are_the_shortest_distances_in_the_data_capped_by_covalent_radii():
    module = fitted_repulsion("zbl", SPECIES, TRAINING, 0.5, 0.85, 2.0)
    shortest = shortest_pair_distances(TRAINING, SPECIES, 3.0)
    outer = np.array(module.outer_radii)
    assert outer[0, 3] == pytest.approx(0.85 * shortest[0, 3])  # O-H bond
    assert outer[1, 1] == pytest.approx(0.85 * shortest[1, 1])  # C-C bond
    assert outer[0, 0] == pytest.approx(2.0 * 2 * 0.31)  # H-H: geminal 1.75 A, capped
    assert np.isinf(shortest[2, 2]) and outer[2, 2] == pytest.approx(2.0 * 2 * 0.71)  # N-N never seen
    assert np.array_equal(outer, outer.T)
    assert fitted_repulsion("none", SPECIES, TRAINING, 0.5, 0.85, 2.0) is None
    # Zero on every training configuration: the network fits the data as before.
    for config in TRAINING:
        plain = small_potential()
        e0, f0 = python_energy_forces(plain, config.numbers, config.positions)
        e1, f1 = python_energy_forces(with_repulsion(), config.numbers, config.positions)
        assert e1 == e0 and np.allclose(f1, f0, rtol=0, atol=1e-12)


def test_two_h_atoms_at_0_3_angstrom_repel_strongly():
    plain, repelled = small_potential(), with_repulsion()
    positions = np.array([[0.0, 0.0, 0.0], [0.3, 0.0, 0.0]])
    e0, f0 = python_energy_forces(plain, [1, 1], positions)
    e1, f1 = python_energy_forces(repelled, [1, 1], positions)
    assert e1 - e0 == pytest.approx(zbl_reference(1, 1, 0.3), rel=1e-12)  # 0.3 < inner radius 0.62
    assert e1 - e0 > 10.0  # eV
    assert f1[0, 0] < -50.0 and f1[1, 0] > 50.0  # eV/A, pushed apart
    assert np.allclose(f1.sum(0), 0.0, atol=1e-10)


@pytest.mark.parametrize("pair", [(0, 0), (0, 1), (1, 3), (2, 2)])
def test_smooth_finite_difference_forces_and_zero_beyond_the_outer_radius(pair):
    module = fitted_repulsion("zbl", SPECIES, TRAINING, 0.5, 0.85, 2.0).double()
    a, b = pair
    outer = module.outer_radii[a][b]
    inner = 0.5 * outer
    r = torch.tensor(
        [0.25, inner - 1e-3, inner, inner + 1e-3, 0.5 * (inner + outer), outer - 1e-3, outer - 1e-6],
        dtype=torch.float64,
        requires_grad=True,
    )
    energy = dimer_energy(module, a, b, r)
    (slope,) = torch.autograd.grad(energy.sum(), r)
    h = 1e-6
    with torch.no_grad():
        fd = (dimer_energy(module, a, b, r + h) - dimer_energy(module, a, b, r - h)) / (2 * h)
    assert torch.allclose(slope, fd, rtol=1e-6, atol=1e-6)
    assert bool((slope < 0).all())  # repulsive everywhere inside the outer radius
    z_a, z_b = SPECIES[a], SPECIES[b]
    assert energy[1].item() == pytest.approx(zbl_reference(z_a, z_b, inner - 1e-3), rel=1e-12)
    # Value and slope vanish at the outer radius, and beyond it the energy is exactly zero.
    assert abs(energy[-1].item()) < 1e-9 and abs(slope[-1].item()) < 1e-6
    at = torch.tensor([outer], dtype=torch.float64, requires_grad=True)
    (at_slope,) = torch.autograd.grad(dimer_energy(module, a, b, at).sum(), at)
    assert abs(at_slope.item()) < 1e-12
    beyond = torch.tensor([outer + 1e-9, outer + 1e-3, outer + 0.3, 4.5], dtype=torch.float64, requires_grad=True)
    far = dimer_energy(module, a, b, beyond)
    (far_slope,) = torch.autograd.grad(far.sum(), beyond)
    assert torch.equal(far, torch.zeros(4, dtype=torch.float64))
    assert torch.equal(far_slope, torch.zeros(4, dtype=torch.float64))


def squeezed_ethanol() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ethanol with one H pushed into its neighbours' repulsion, in a periodic cell (Angstrom)."""
    atoms = molecule("CH3CH2OH")
    positions = atoms.positions.copy()
    positions[5] = positions[0] + [0.45, 0.5, 0.1]
    return atoms.numbers, positions, np.diag([7.0, 7.5, 8.0])


def test_exported_forward_and_stages_equal_the_python_model():
    potential = with_repulsion()
    numbers, positions, cell = squeezed_ethanol()
    plain_e, _ = python_energy_forces(small_potential(), numbers, positions, cell)
    e_py, f_py = python_energy_forces(potential, numbers, positions, cell)
    assert e_py - plain_e > 0.5  # the repulsion is on
    model, metadata = load_model(potential)
    assert metadata["repulsion"]["kind"] == "zbl"
    assert metadata["repulsion"]["pairs"]["H-H"]["outer"] == pytest.approx(1.24)
    assert metadata["min_pair_distance"] == 0.1
    e_ex, f_ex = exported_energy_forces(model, potential.cutoff, numbers, positions, cell)
    assert e_ex == pytest.approx(e_py, abs=1e-10)
    assert np.allclose(f_ex, f_py, atol=1e-10)
    # stage, block by block for all atoms: the repulsion is counted once, in block 0.
    pos = torch.tensor(positions, requires_grad=True)
    edge_index, shifts = build_pairs(pos, potential.cutoff, torch.tensor(cell), torch.ones(3, dtype=torch.bool))
    distances = torch.linalg.vector_norm(pos[edge_index[1]] - pos[edge_index[0]] + shifts, dim=1)
    z = torch.as_tensor(numbers)
    features, total = None, torch.zeros((), dtype=torch.float64)
    for block in range(potential.hipnn.n_interactions):
        energies, features = model.stage(block, distances, z, edge_index, features, len(numbers))
        total = total + energies.sum()
    (gradient,) = torch.autograd.grad(total, pos)
    assert total.item() == pytest.approx(e_py, abs=1e-10)
    assert np.allclose(-gradient.numpy(), f_py, atol=1e-10)


def test_checkpoints_keep_the_repulsion_and_old_ones_load_without():
    potential = with_repulsion()
    values = potential_to_dict(potential)
    assert values["repulsion"]["kind"] == "zbl"
    again = potential_from_dict(values)
    numbers, positions, cell = squeezed_ethanol()
    assert python_energy_forces(again, numbers, positions, cell)[0] == python_energy_forces(potential, numbers, positions, cell)[0]
    old = potential_to_dict(small_potential())
    old["state_dict"] = {k: v for k, v in old["state_dict"].items() if not k.startswith("repulsion.")}
    del old["repulsion"]
    assert potential_from_dict(old).repulsion is None
    shipped = load_potential(resolve("pretrained:hipnn-meta-hcno"))
    assert shipped.repulsion is None
    assert load_model(shipped, level=shipped.levels[0])[1]["repulsion"] == {"kind": "none"}


def test_float32_model_repels_too():
    potential = with_repulsion().float()
    numbers, positions, cell = squeezed_ethanol()
    e64, f64 = python_energy_forces(with_repulsion(), numbers, positions, cell)
    model, _ = load_model(potential)
    e32, f32 = exported_energy_forces(model, potential.cutoff, numbers, positions, cell)
    assert e32 == pytest.approx(e64, rel=1e-5)
    assert np.allclose(f32, f64, rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize(
    "model, message",
    [
        ({"repulsion": "lj"}, "model.repulsion: "),
        ({"repulsion_inner": 1.0}, "model.repulsion_inner: "),
        ({"repulsion_outer": 1.5}, "model.repulsion_outer: "),
        ({"repulsion_max_outer": 0}, "model.repulsion_max_outer: "),
    ],
)
def test_config_keys_are_checked(model, message):
    from metamlip.train.config import ConfigError, config_from_dict

    assert config_from_dict({}).model.repulsion == "zbl"
    with pytest.raises(ConfigError, match=message):
        config_from_dict({"model": model})
