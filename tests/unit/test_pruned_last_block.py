"""The last interaction block runs only for masked-in atoms (an engine's local atoms): their
energies and the forces are those of the full evaluation."""

from __future__ import annotations

import pytest
import torch

from metamlip.deploy import build_pairs, export_module
from deploy_helpers import molecular_box
from model_helpers import small_potential


def partial_mask(n_atoms: int) -> torch.Tensor:
    """[N] bool: every third atom and a contiguous run, the rest False."""
    mask = torch.zeros(n_atoms, dtype=torch.bool)
    mask[::3] = True
    mask[5:9] = True
    return mask


def box_inputs(cutoff: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(positions [N, 3] requiring grad, atomic numbers [N], edge_index [2, P], shifts [P, 3])."""
    atoms = molecular_box()
    positions = torch.tensor(atoms.positions, dtype=torch.float64, requires_grad=True)
    cell = torch.tensor(atoms.cell.array, dtype=torch.float64)
    edge_index, shifts = build_pairs(positions, cutoff, cell, torch.ones(3, dtype=torch.bool))
    return positions, torch.tensor(atoms.numbers), edge_index, shifts


@pytest.mark.parametrize("tensor_order", [0, 2])
@pytest.mark.parametrize("implementation", ["cpp", "torch"])
def test_hipnn_mask_prunes_last_block_exactly(implementation: str, tensor_order: int) -> None:
    hipnn = small_potential(seed=4, tensor_order=tensor_order).hipnn
    hipnn.set_implementation(implementation)
    positions, numbers, edge_index, shifts = box_inputs(hipnn.cutoff)
    species = torch.searchsorted(torch.tensor([1, 6, 7, 8]), numbers)
    first, second = edge_index[0], edge_index[1]
    vectors = positions[second] - positions[first] + shifts
    distances = torch.linalg.vector_norm(vectors, dim=1)
    unit_vectors = vectors / distances.unsqueeze(1) if tensor_order > 0 else None
    mask = partial_mask(len(numbers))
    full = hipnn(species, distances, first, second, None, unit_vectors)[mask]
    pruned = hipnn(species, distances, first, second, mask, unit_vectors)[mask]
    torch.testing.assert_close(pruned, full, rtol=1e-12, atol=0)
    (grad_full,) = torch.autograd.grad(full.sum(), positions, retain_graph=True)
    (grad_pruned,) = torch.autograd.grad(pruned.sum(), positions)
    torch.testing.assert_close(grad_pruned, grad_full, rtol=0, atol=1e-12)


@pytest.mark.parametrize("tensor_order", [0, 1])
@pytest.mark.parametrize("implementation", ["cpp", "torch"])
def test_exported_model_partial_mask_matches_full_evaluation(implementation: str, tensor_order: int) -> None:
    module, metadata = export_module(small_potential(seed=5, tensor_order=tensor_order), implementation=implementation)
    positions, numbers, edge_index, shifts = box_inputs(metadata["cutoff"])
    mask = partial_mask(len(numbers))
    energies = module(positions, numbers, edge_index, shifts, mask)
    everything = module(positions, numbers, edge_index, shifts, torch.ones_like(mask))
    assert bool((energies[~mask] == 0).all())
    torch.testing.assert_close(energies[mask], everything[mask], rtol=1e-12, atol=0)
    (grad,) = torch.autograd.grad(energies.sum(), positions)
    (grad_full,) = torch.autograd.grad(everything[mask].sum(), positions)
    torch.testing.assert_close(grad, grad_full, rtol=0, atol=1e-12)
    nothing = module(positions, numbers, edge_index, shifts, torch.zeros_like(mask))
    assert bool((nothing == 0).all())
