"""Plain-PyTorch reference neighbour search: every pair, every needed periodic image.

O(N^2 x images): the definition the C++ cell-list op is tested against, fine for molecules.
"""

from __future__ import annotations

import math

import torch


def search_cell(cell: torch.Tensor, pbc: torch.Tensor) -> torch.Tensor:
    """[3, 3] float64 basis: the periodic lattice vectors, with the non-periodic ones replaced by
    unit vectors orthogonal to them (a non-periodic cell vector may be zero or degenerate)."""
    basis = cell.detach().to(torch.float64).clone()
    periodic = [k for k in range(3) if bool(pbc[k])]
    if len(periodic) == 3:
        if abs(float(torch.linalg.det(basis))) < 1e-12:
            raise ValueError(f"neighbor_list: the periodic cell is singular: {cell.tolist()}")
        return basis
    # Gram-Schmidt completion: directions orthogonal to the periodic vectors.
    found = [basis[k] for k in periodic]
    for k in range(3):
        if k in periodic:
            continue
        for trial in torch.eye(3, dtype=torch.float64):
            v = trial.clone()
            for u in found:
                v = v - (v @ u) / (u @ u) * u
            if float(torch.linalg.norm(v)) > 1e-6:
                found.append(v / torch.linalg.norm(v))
                basis[k] = found[-1]
                break
    if abs(float(torch.linalg.det(basis))) < 1e-12:
        raise ValueError(f"neighbor_list: the periodic cell vectors are linearly dependent: {cell.tolist()}")
    return basis


def image_range(basis: torch.Tensor, pbc: torch.Tensor, cutoff: float) -> list[int]:
    """Number of periodic images needed along each lattice vector to see every neighbour of
    atoms inside the cell. The distance between opposite faces of the cell along lattice
    vector k is 1 / |b_k| with b the reciprocal vectors (rows of inv(basis).T)."""
    reciprocal = torch.linalg.inv(basis).T
    return [
        int(math.ceil(cutoff * float(torch.linalg.norm(reciprocal[k])))) if bool(pbc[k]) else 0 for k in range(3)
    ]


def neighbor_list_reference(
    positions: torch.Tensor,
    cutoff: float,
    cell: torch.Tensor | None = None,
    pbc: torch.Tensor | None = None,
    batch: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Full neighbour list: (i [P], j [P], S [P, 3]) with |x_j - x_i + S @ cell| < cutoff.

    positions: [N, 3] (anywhere, also outside the cell); cell: [3, 3] row vectors or None;
    pbc: [3] bool or None (all False); batch: [N] molecule index per atom (no pairs across
    molecules; one shared cell). Pairs are sorted by (i, j, S). An atom's own periodic
    images are its neighbours.
    """
    n = positions.shape[0]
    device = positions.device
    pos = positions.detach().to(torch.float64).cpu()
    pbc = torch.zeros(3, dtype=torch.bool) if pbc is None else pbc.to(torch.bool).cpu()
    if cell is None:
        if bool(pbc.any()):
            raise ValueError("neighbor_list: pbc is set but no cell was given")
        cell = torch.zeros(3, 3, dtype=torch.float64)
    cell64 = cell.detach().to(torch.float64).cpu()
    offsets = torch.zeros(n, 3, dtype=torch.int64)
    nx = ny = nz = 0
    if bool(pbc.any()):
        basis = search_cell(cell64, pbc)
        # wrap into the cell along periodic directions: x = x_wrapped + offset @ cell
        fractional = pos @ torch.linalg.inv(basis)
        offsets = torch.where(pbc, torch.floor(fractional), torch.zeros_like(fractional)).to(torch.int64)
        pos = pos - offsets.to(torch.float64) @ cell64
        nx, ny, nz = image_range(basis, pbc, cutoff)
    shifts = torch.cartesian_prod(
        torch.arange(-nx, nx + 1), torch.arange(-ny, ny + 1), torch.arange(-nz, nz + 1)
    ).to(torch.int64).reshape(-1, 3)
    shift_vectors = shifts.to(torch.float64) @ cell64  # [K, 3]
    same = torch.ones(n, n, dtype=torch.bool)
    if batch is not None:
        b = batch.cpu()
        same = b[:, None] == b[None, :]
    found_i, found_j, found_s = [], [], []
    for k in range(shifts.shape[0]):
        d = pos[None, :, :] - pos[:, None, :] + shift_vectors[k]
        close = (d.square().sum(-1) < cutoff * cutoff) & same
        if not bool(shifts[k].any()):
            close.fill_diagonal_(False)
        i, j = torch.nonzero(close, as_tuple=True)
        found_i.append(i)
        found_j.append(j)
        # in the original coordinates: x_j - x_i + (S_wrapped - offset_j + offset_i) @ cell
        found_s.append(shifts[k] - offsets[j] + offsets[i])
    i = torch.cat(found_i)
    j = torch.cat(found_j)
    s = torch.cat(found_s)
    key = torch.stack([i, j, s[:, 0], s[:, 1], s[:, 2]], dim=1)
    order = _lexsort(key)
    return i[order].to(device), j[order].to(device), s[order].to(device)


def _lexsort(key: torch.Tensor) -> torch.Tensor:
    """Indices that sort the rows of an int64 [P, K] tensor lexicographically."""
    order = torch.arange(key.shape[0])
    for col in range(key.shape[1] - 1, -1, -1):
        order = order[torch.sort(key[order, col], stable=True).indices]
    return order
