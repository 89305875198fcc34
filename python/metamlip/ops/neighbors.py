"""Public neighbour-list entry point shared by training, ASE, OpenMM and LAMMPS export."""

from __future__ import annotations

import torch

from metamlip.ops.reference import neighbor_list_reference


def neighbor_list(
    positions: torch.Tensor,
    cutoff: float,
    cell: torch.Tensor | None = None,
    pbc: torch.Tensor | None = None,
    batch: torch.Tensor | None = None,
    implementation: str = "torch",
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Full neighbour list (i [P], j [P], S [P, 3] int64) with |x_j - x_i + S @ cell| < cutoff.

    positions: [N, 3] Angstrom; cell: [3, 3] lattice vectors as rows; pbc: [3] bool;
    batch: [N] molecule index per atom (pairs never cross molecules).
    """
    if cutoff <= 0:
        raise ValueError(f"neighbor_list: cutoff must be positive, got {cutoff}")
    if positions.ndim != 2 or positions.shape[1] != 3:
        raise ValueError(f"neighbor_list: positions must have shape [N, 3], got {tuple(positions.shape)}")
    if not bool(torch.isfinite(positions).all()):
        raise ValueError("neighbor_list: positions contain NaN or inf")
    if implementation != "torch":
        raise ValueError(f"neighbor_list: unknown implementation {implementation!r} (known: 'torch')")
    return neighbor_list_reference(positions, cutoff, cell, pbc, batch)


def pair_vectors(
    positions: torch.Tensor,
    i: torch.Tensor,
    j: torch.Tensor,
    shifts: torch.Tensor,
    cell: torch.Tensor | None,
) -> torch.Tensor:
    """r_ij = x_j - x_i + S @ cell, [P, 3]; differentiable w.r.t. positions and cell."""
    vectors = positions[j] - positions[i]
    if cell is not None:
        vectors = vectors + shifts.to(positions.dtype) @ cell
    return vectors
