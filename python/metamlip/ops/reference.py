"""Plain-PyTorch reference neighbour search: every pair, every needed periodic image.

O(N^2 x images): the definition the C++ cell-list op is tested against, fine for molecules.
"""

from __future__ import annotations

import math
from typing import List, Optional, Tuple

import torch


def _single_system(
    pos: torch.Tensor, cutoff: float, cell: torch.Tensor, pbc: torch.Tensor
) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(i, j, S) of one system; pos [n, 3] float64 CPU, cell [3, 3] float64, pbc [3] bool."""
    n = pos.shape[0]
    # Open directions get an orthonormal completion, so that the cell can be inverted.
    full_cell = cell.clone()
    if not bool(pbc.all()):
        periodic_rows = full_cell[pbc]
        _, _, vh = torch.linalg.svd(
            torch.cat([periodic_rows, torch.zeros(3 - periodic_rows.shape[0], 3, dtype=cell.dtype)]),
        )
        q = 0
        for k in range(3):
            if not bool(pbc[k]):
                full_cell[k] = vh[2 - q]
                q += 1
    # Wrap atoms into the cell along periodic directions (integer image w); then every
    # neighbour lies within floor(1 + cutoff / face distance) images along each direction.
    wrap = torch.zeros(n, 3, dtype=torch.int64)
    ranges = [0, 0, 0]
    if bool(pbc.any()):
        frac = pos @ torch.linalg.inv(full_cell)
        wrap = torch.where(pbc, torch.floor(frac), torch.zeros_like(frac)).to(torch.int64)
        pos = pos - wrap.to(torch.float64) @ full_cell
        reciprocal_norms = torch.linalg.norm(torch.linalg.inv(full_cell), dim=0)
        for k in range(3):
            if bool(pbc[k]):
                ranges[k] = int(math.floor(1.0 + cutoff * float(reciprocal_norms[k])))
    nx, ny, nz = ranges
    grids = torch.meshgrid(
        [torch.arange(-nx, nx + 1), torch.arange(-ny, ny + 1), torch.arange(-nz, nz + 1)],
        indexing="ij",
    )
    shifts = torch.stack(grids, dim=-1).to(torch.int64).reshape(-1, 3)
    shift_vectors = shifts.to(torch.float64) @ full_cell  # [K, 3]
    found_i: List[torch.Tensor] = []
    found_j: List[torch.Tensor] = []
    found_s: List[torch.Tensor] = []
    # Coordinate differences x_j - x_i, one [n, n] matrix per Cartesian direction.
    dx = pos[None, :, 0] - pos[:, None, 0]
    dy = pos[None, :, 1] - pos[:, None, 1]
    dz = pos[None, :, 2] - pos[:, None, 2]
    for k in range(shifts.shape[0]):
        t = shift_vectors[k]
        close = ((dx + t[0]).square() + (dy + t[1]).square() + (dz + t[2]).square()) < cutoff * cutoff
        if not bool(shifts[k].any()):
            close.fill_diagonal_(False)
        pairs = torch.nonzero(close)
        i, j = pairs[:, 0], pairs[:, 1]
        found_i.append(i)
        found_j.append(j)
        found_s.append(shifts[k] + wrap[i] - wrap[j])
    if n == 0:
        empty = torch.zeros(0, dtype=torch.int64)
        return empty, empty, torch.zeros(0, 3, dtype=torch.int64)
    return torch.cat(found_i), torch.cat(found_j), torch.cat(found_s)


def neighbor_list_reference(
    positions: torch.Tensor,
    cutoff: float,
    cell: Optional[torch.Tensor] = None,
    pbc: Optional[torch.Tensor] = None,
    batch: Optional[torch.Tensor] = None,
    full_list: bool = True,
) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Neighbour list: (i [P], j [P], S [P, 3]) with |x_j - x_i + S @ cell| < cutoff.

    positions: [N, 3]; cell: [3, 3] row vectors, or [M, 3, 3] one per molecule, or None;
    pbc: [3] or [M, 3] bool, or None (all False); batch: [N] molecule index per atom (no pairs
    across molecules). Pairs are sorted by (i, j, S). An atom's own images count as
    neighbours. The half list (full_list=False) keeps i < j, and S > 0 (lexicographically)
    for an atom's own images.
    """
    n = positions.shape[0]
    device = positions.device
    pos = positions.detach().to(torch.float64).cpu()
    if pbc is None:
        pbc = torch.zeros(3, dtype=torch.bool)
    pbc = pbc.to(torch.bool).cpu().reshape(-1, 3)
    if cell is None:
        if bool(pbc.any()):
            raise ValueError("neighbor_list: pbc is set but no cell was given")
        cell = torch.zeros(3, 3, dtype=torch.float64)
    cells = cell.detach().to(torch.float64).cpu().reshape(-1, 3, 3)
    molecule = torch.zeros(n, dtype=torch.int64) if batch is None else batch.to(torch.int64).cpu()
    n_molecules = int(molecule.max()) + 1 if n > 0 else 0
    found_i: List[torch.Tensor] = [torch.zeros(0, dtype=torch.int64)]
    found_j: List[torch.Tensor] = [torch.zeros(0, dtype=torch.int64)]
    found_s: List[torch.Tensor] = [torch.zeros(0, 3, dtype=torch.int64)]
    for m in range(n_molecules):
        atoms = torch.nonzero(molecule == m).reshape(-1)
        if atoms.shape[0] == 0:
            continue
        cell_m = cells[0] if cells.shape[0] == 1 else cells[m]
        pbc_m = pbc[0] if pbc.shape[0] == 1 else pbc[m]
        i, j, s = _single_system(pos[atoms], cutoff, cell_m, pbc_m)
        found_i.append(atoms[i])
        found_j.append(atoms[j])
        found_s.append(s)
    i = torch.cat(found_i)
    j = torch.cat(found_j)
    s = torch.cat(found_s)
    if not full_list:
        positive = (s[:, 0] > 0) | ((s[:, 0] == 0) & ((s[:, 1] > 0) | ((s[:, 1] == 0) & (s[:, 2] > 0))))
        keep = (i < j) | ((i == j) & positive)
        i, j, s = i[keep], j[keep], s[keep]
    key = torch.stack([i, j, s[:, 0], s[:, 1], s[:, 2]], dim=1)
    order = _lexsort(key)
    return i[order].to(device), j[order].to(device), s[order].to(device)


def _lexsort(key: torch.Tensor) -> torch.Tensor:
    """Indices that sort the rows of an int64 [P, K] tensor lexicographically."""
    order = torch.arange(key.shape[0])
    for col in range(key.shape[1] - 1, -1, -1):
        order = order[torch.sort(key[order, col], stable=True).indices]
    return order
