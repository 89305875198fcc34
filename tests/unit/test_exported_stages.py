"""The exported model's `stage` method (one interaction block for the first n_receivers atoms,
what LAMMPS calls under MPI): the blocks chained give forward's energies and forces."""

from __future__ import annotations

import pytest
import torch

from metamlip.deploy import build_pairs, export_module
from deploy_helpers import molecular_box
from model_helpers import small_potential


def box_inputs(cutoff: float):
    atoms = molecular_box()
    positions = torch.tensor(atoms.positions, dtype=torch.float64, requires_grad=True)
    edge_index, shifts = build_pairs(positions, cutoff, torch.tensor(atoms.cell.array), torch.ones(3, dtype=torch.bool))
    return positions, torch.tensor(atoms.numbers), edge_index, shifts


@pytest.mark.parametrize("dtype,tensor_order,geometry", [
    ("float64", 0, "distances"), ("float32", 0, "distances"), ("float64", 0, "vectors"),
    ("float64", 1, "vectors"), ("float64", 2, "vectors"), ("float32", 2, "vectors"),
])  # fmt: skip
def test_blocks_chained_equal_forward(dtype: str, tensor_order: int, geometry: str) -> None:
    """stage takes the pair distances [P] or vectors [P, 3] (HIP-NN-TS needs the vectors)."""
    module, metadata = export_module(small_potential(seed=8, tensor_order=tensor_order), dtype=dtype)
    assert metadata["tensor_order"] == tensor_order
    positions, numbers, edge_index, shifts = box_inputs(metadata["cutoff"])
    n = len(numbers)
    total = module(positions, numbers, edge_index, shifts, torch.ones(n, dtype=torch.bool))
    distances = positions[edge_index[1]] - positions[edge_index[0]] + shifts
    if geometry == "distances":
        distances = torch.linalg.vector_norm(distances, dim=1)
    energies, features = module.stage(0, distances, numbers, edge_index, None, n)
    assert features.shape == (n, metadata["n_features"])
    for block in range(1, metadata["n_interactions"]):
        share, features = module.stage(block, distances, numbers, edge_index, features, n)
        energies = energies + share
    tolerance = 1e-12 if dtype == "float64" else 1e-5
    torch.testing.assert_close(energies, total, rtol=tolerance, atol=tolerance)
    (grad,) = torch.autograd.grad(energies.sum(), positions, retain_graph=True)
    (expected,) = torch.autograd.grad(total.sum(), positions)
    torch.testing.assert_close(grad, expected, rtol=tolerance, atol=tolerance)


def test_stage_refuses_pairs_received_by_other_atoms() -> None:
    module, metadata = export_module(small_potential(seed=8))
    positions, numbers, edge_index, shifts = box_inputs(metadata["cutoff"])
    with pytest.raises(torch.jit.Error, match="every pair must be received by one of the first n_receivers atoms"):
        module.stage(0, torch.ones(edge_index.shape[1], dtype=torch.float64), numbers, edge_index, None, 3)


def test_tensor_model_stage_refuses_distances() -> None:
    module, metadata = export_module(small_potential(seed=8, tensor_order=1))
    positions, numbers, edge_index, shifts = box_inputs(metadata["cutoff"])
    with pytest.raises(torch.jit.Error, match="needs the pair vectors"):
        module.stage(0, torch.ones(edge_index.shape[1], dtype=torch.float64), numbers, edge_index, None, len(numbers))
