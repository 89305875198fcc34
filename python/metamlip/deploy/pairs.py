"""Pairs for the engine interface from positions and a cell, with metamlip's neighbour-list op.

Used by the OpenMM wrapper (compiled into its TorchScript) and by the ASE calculator, so both
feed the exported model exactly the same pairs.
"""

from __future__ import annotations

from typing import Optional, Tuple

import torch

from metamlip.ops import neighbor_list


def build_pairs(
    positions: torch.Tensor, cutoff: float, cell: Optional[torch.Tensor], pbc: Optional[torch.Tensor]
) -> Tuple[torch.Tensor, torch.Tensor]:
    """(edge_index [2, P] int64, edge_shift_vectors [P, 3]) for a full list within `cutoff`.

    positions: [N, 3] Angstrom; cell: [3, 3] lattice vectors as rows (Angstrom) or None;
    pbc: [3] bool or None. Shift vectors are S @ cell in the positions' dtype, differentiable
    with respect to the cell; pairs never depend on the positions' autograd history.
    """
    detached_cell: Optional[torch.Tensor] = None
    if cell is not None:
        detached_cell = cell.detach()
    i, j, shifts = neighbor_list(positions.detach(), cutoff, detached_cell, pbc)
    edge_index = torch.stack([i, j])
    if cell is None:
        return edge_index, torch.zeros((i.shape[0], 3), dtype=positions.dtype, device=positions.device)
    return edge_index, shifts.to(positions.dtype) @ cell.to(positions.dtype)
