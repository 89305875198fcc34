"""Pairs for the engine interface from positions and a cell, with metamlip's neighbour-list op.

Used by the OpenMM wrapper (compiled into its TorchScript) and by the ASE calculator, so both
feed the exported model exactly the same pairs.
"""

from __future__ import annotations

import math
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


MIN_PAIR_DISTANCE = 0.1  # Angstrom: closer atoms are an error in every engine (README, "Overlapping atoms")


def check_distances(
    distances: torch.Tensor,
    edge_index: torch.Tensor,
    atom_ids: Optional[torch.Tensor],
    threshold: float = MIN_PAIR_DISTANCE,
) -> None:
    """Raise a RuntimeError naming the closest pair if it is closer than `threshold` (Angstrom)
    or its distance is NaN, instead of letting the model return NaN or infinite forces.

    distances [P] of the pairs edge_index [2, P]; atom_ids [N]: the name (index or ID) of each
    atom in the error, None for the atoms' own indices.
    """
    if distances.numel() == 0:
        return
    d = distances.detach()
    if float(d.min()) >= threshold:  # one reduction in the common case (min propagates NaN)
        return
    nan = torch.isnan(d)
    closest = int(torch.argmax(nan.to(torch.int64))) if bool(nan.any()) else int(torch.argmin(d))
    distance = float(d[closest])
    i = int(edge_index[0, closest])
    j = int(edge_index[1, closest])
    if atom_ids is not None:
        i = int(atom_ids[i])
        j = int(atom_ids[j])
    if math.isnan(distance):
        raise RuntimeError(
            "metamlip: atoms " + str(i) + " and " + str(j) + " have a NaN distance (NaN or infinite positions)"
        )
    raise RuntimeError(
        "metamlip: atoms " + str(i) + " and " + str(j) + " are " + _decimal(distance) + " Angstrom apart, "
        "closer than " + _decimal(threshold) + " Angstrom (overlapping atoms: check the structure)"
    )


def _decimal(x: float) -> str:
    """x >= 0 with at most 4 decimals (TorchScript's str(float) prints 17 significant digits)."""
    n = int(round(x * 10000.0))
    text = str(n // 10000) + "." + str(10000 + n % 10000)[1:]
    return text.rstrip("0").rstrip(".")


def model_error(error: torch.jit.Error) -> RuntimeError:
    """The error a TorchScript model raised (check_distances' for overlapping atoms, say) as one
    line, without TorchScript's traceback."""
    return RuntimeError(str(error).strip().splitlines()[-1].removeprefix("builtins.RuntimeError: "))


def check_pairs(
    positions: torch.Tensor, edge_index: torch.Tensor, shifts: torch.Tensor, atom_ids: Optional[torch.Tensor]
) -> None:
    """check_distances for pairs given as in the engine interface (positions [N, 3],
    edge_index [2, P], shifts [P, 3], Angstrom)."""
    x = positions.detach()
    vectors = x.index_select(0, edge_index[1]) - x.index_select(0, edge_index[0]) + shifts.detach()
    check_distances(torch.linalg.vector_norm(vectors, dim=1), edge_index, atom_ids)
