"""Public neighbour-list entry points shared by training, ASE, OpenMM and LAMMPS export.

All functions here can be compiled with ``torch.jit.script``; the C++ op
``torch.ops.metamlip.neighbor_list`` is registered when ``metamlip.ops`` is imported.
"""

from __future__ import annotations

from typing import Optional, Tuple

import torch

from metamlip.ops.reference import neighbor_list_reference


def neighbor_list(
    positions: torch.Tensor,
    cutoff: float,
    cell: Optional[torch.Tensor] = None,
    pbc: Optional[torch.Tensor] = None,
    batch: Optional[torch.Tensor] = None,
    implementation: str = "cpp",
    full_list: bool = True,
) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Neighbour list (i [P], j [P], S [P, 3] int64) with |x_j - x_i + S @ cell| < cutoff.

    positions: [N, 3] Angstrom; cell: [3, 3] lattice vectors as rows, or [M, 3, 3] one per
    molecule; pbc: [3] (or [M, 3]) bool tensor; batch: [N] molecule index per atom (pairs never
    cross molecules). The full list holds both (i, j) and (j, i); the half list
    (full_list=False) keeps i < j, and S > 0 lexicographically for an atom's own images.
    implementation: "cpp" (cell list, torch.ops.metamlip) or "torch" (O(N^2) reference).
    The "cpp" pairs are ordered by i (then by search order); the reference sorts by (i, j, S).
    """
    i, j, shifts, _, _ = neighbor_list_op(
        positions, cutoff, cell, pbc, batch, full_list, False, implementation
    )
    return i, j, shifts


def neighbor_list_op(
    positions: torch.Tensor,
    cutoff: float,
    cell: Optional[torch.Tensor] = None,
    pbc: Optional[torch.Tensor] = None,
    batch: Optional[torch.Tensor] = None,
    full_list: bool = True,
    return_vectors: bool = False,
    implementation: str = "cpp",
) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(i, j, S, distances [P], vectors [P, 3]); distances and vectors are empty unless
    return_vectors.

    vectors = x_j - x_i + S @ cell (Angstrom). When positions or cell require grad, they are
    recomputed from (i, j, S) with differentiable tensor operations, so forces and stress
    (strain derivatives) flow through them; otherwise the op's own values are used.
    """
    if cutoff <= 0.0:
        raise ValueError("neighbor_list: cutoff must be positive, got " + str(cutoff))
    needs_grad = positions.requires_grad or (cell is not None and cell.requires_grad)
    if implementation == "cpp":
        i, j, shifts, distances, vectors = torch.ops.metamlip.neighbor_list(
            positions, cutoff, cell, pbc, batch, full_list, return_vectors and not needs_grad
        )
    elif implementation == "torch":
        if not bool(torch.isfinite(positions).all()):
            raise ValueError("neighbor_list: positions contain NaN or infinite values")
        i, j, shifts = neighbor_list_reference(positions, cutoff, cell, pbc, batch, full_list)
        distances = torch.zeros(0, dtype=positions.dtype, device=positions.device)
        vectors = torch.zeros((0, 3), dtype=positions.dtype, device=positions.device)
    else:
        raise ValueError(
            "neighbor_list: unknown implementation " + implementation + " (known: 'cpp', 'torch')"
        )
    if return_vectors and (needs_grad or implementation == "torch"):
        vectors = pair_vectors(positions, i, j, shifts, cell, batch)
        distances = torch.linalg.vector_norm(vectors, dim=1)
    return i, j, shifts, distances, vectors


def pair_vectors(
    positions: torch.Tensor,
    i: torch.Tensor,
    j: torch.Tensor,
    shifts: torch.Tensor,
    cell: Optional[torch.Tensor],
    batch: Optional[torch.Tensor] = None,
) -> torch.Tensor:
    """r_ij = x_j - x_i + S @ cell, [P, 3]; differentiable w.r.t. positions and cell.

    cell: [3, 3], or [M, 3, 3] with batch [N] giving each atom's molecule.
    """
    vectors = positions.index_select(0, j) - positions.index_select(0, i)
    if cell is not None:
        shifts_f = shifts.to(positions.dtype)
        if cell.dim() == 3:
            if batch is None:
                if cell.shape[0] != 1:
                    raise ValueError("pair_vectors: a cell per molecule needs batch")
                vectors = vectors + shifts_f @ cell[0]
            else:
                vectors = vectors + torch.bmm(shifts_f.unsqueeze(1), cell[batch[i]]).squeeze(1)
        else:
            vectors = vectors + shifts_f @ cell
    return vectors
