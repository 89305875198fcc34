"""The whole HIP-NN potential (and HIP-NN-TS) with the C++ pair sums ("cpp") equals the PyTorch
reference.

Energies, forces and stress agree to 1e-10 relative in float64, and a few training steps on
energies and forces (second derivatives through the pair sums) give the same parameters.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from fixtures.structures import make_case, water_density_box
from model_helpers import ARCHITECTURE, SPECIES, batch_of, config_of, small_potential

from metamlip.nn.build import build_potential

WIDE = dict(ARCHITECTURE, n_features=64, n_sensitivities=20, n_interactions=2, n_atom_layers=3, cutoff=5.0, soft_max=4.0)


def potential_of(architecture: str, seed: int = 0, tensor_order: int = 0):
    if architecture == "small":
        return small_potential(seed, tensor_order=tensor_order)
    torch.manual_seed(seed)
    wide = dict(WIDE, tensor_order=tensor_order)
    return build_potential(wide, SPECIES, ["test"], torch.randn(1, len(SPECIES)), energy_scale=0.7).double()


def configurations(seed: int = 0):
    """Molecules, an isolated atom, a periodic box and a cell thinner than the cutoff."""
    rng = np.random.default_rng(seed)

    def numbers(n):
        return rng.choice(SPECIES, size=n)

    configs = []
    for index in range(2):
        case = make_case("molecule", seed, index)
        positions = case.positions[:25]
        configs.append(config_of(numbers(len(positions)), positions))
    configs.append(config_of([8], [[0.0, 0.0, 0.0]]))
    positions, cell = water_density_box(60, seed)
    configs.append(config_of(numbers(60), positions - 3.0, cell, [True, True, True]))
    thin = make_case("tiny", seed, 5)
    configs.append(config_of(numbers(thin.n_atoms), thin.positions, thin.cell, [True, True, True]))
    return configs


def evaluate(potential, batch, implementation):
    potential.hipnn.set_implementation(implementation)
    out = potential(batch, compute_forces=True, compute_stress=True)
    return {k: v.detach() for k, v in out.items()}


def assert_relative(ours: torch.Tensor, ref: torch.Tensor, tol: float) -> None:
    """max |ours - ref| <= tol * max |ref|."""
    error, scale = float((ours - ref).abs().max()), float(ref.abs().max())
    assert error <= tol * scale, f"max error {error:.3e} against max value {scale:.3e}"


@pytest.mark.parametrize("architecture,tensor_order", [("small", 0), ("wide", 0), ("small", 1), ("small", 2)])
def test_energies_forces_stress_identical(architecture, tensor_order):
    potential = potential_of(architecture, tensor_order=tensor_order)
    batch_configs = configurations()
    batch = batch_of(batch_configs, potential)
    torch_out = evaluate(potential, batch, "torch")
    cpp_out = evaluate(potential, batch, "cpp")
    periodic = [k for k, c in enumerate(batch_configs) if c.cell is not None]
    torch_out["stress"], cpp_out["stress"] = torch_out["stress"][periodic], cpp_out["stress"][periodic]
    for key in ("energy", "forces", "stress"):
        assert torch.isfinite(torch_out[key]).all()
        assert_relative(cpp_out[key], torch_out[key], 1e-10)
    assert float(torch_out["forces"].abs().max()) > 1e-3  # a real test, not zeros


def train(potential, batch, implementation, steps=4):
    potential.hipnn.set_implementation(implementation)
    optimizer = torch.optim.Adam(potential.parameters(), lr=1e-3)
    for _ in range(steps):
        optimizer.zero_grad()
        out = potential(batch, compute_forces=True, create_graph=True)
        loss = (out["energy"] - batch.energy).square().mean() + (out["forces"] - batch.forces).square().mean()
        loss.backward()
        optimizer.step()
    return potential


@pytest.mark.parametrize("architecture,tensor_order", [("wide", 0), ("small", 2)])
def test_training_steps_give_same_parameters(architecture, tensor_order):
    potential = potential_of(architecture, seed=1, tensor_order=tensor_order)
    configs = configurations(seed=0)  # ~6k pairs (other seeds' thin cells give ~10^5)
    rng = np.random.default_rng(0)
    for c in configs:
        c.energy = float(rng.normal(scale=5.0))
        c.forces = rng.normal(size=(c.n_atoms, 3))
    batch = batch_of(configs, potential)
    trained = {impl: train(copy.deepcopy(potential), batch, impl) for impl in ("torch", "cpp")}
    reference = {k: v.detach() for k, v in trained["torch"].named_parameters()}
    initial = {k: v.detach() for k, v in potential.named_parameters()}
    moved = 0.0
    for name, parameter in trained["cpp"].named_parameters():
        torch.testing.assert_close(parameter.detach(), reference[name], rtol=1e-9, atol=1e-12, msg=name)
        moved = max(moved, float((reference[name] - initial[name]).abs().max()))
    assert moved > 1e-4  # the parameters did change
