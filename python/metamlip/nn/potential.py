"""Potential: HIP-NN plus per-level self energies, energy scale, forces and stress."""

from __future__ import annotations

import torch
from torch import nn

from metamlip.data.batching import Batch
from metamlip.nn.hipnn import HIPNN
from metamlip.nn.repulsion import ZBLRepulsion


class Potential(nn.Module):
    """Total energy E = sum_i [ energy_scale * hipnn_i[head(level)] + e_self(level, Z_i) + rep_i ].

    species: atomic numbers in model order; levels: level-of-theory names, each with a row of
    `self_energies` ([n_levels, n_species], eV) and an output head (`head_of_level`);
    repulsion: the analytic core repulsion rep_i (nn/repulsion.py), the same for every level,
    or None. The network learns what the repulsion and the self energies leave.
    """

    def __init__(
        self,
        hipnn: HIPNN,
        species: list[int],
        levels: list[str],
        self_energies: torch.Tensor,
        energy_scale: float = 1.0,
        head_of_level: list[int] | None = None,
        repulsion: ZBLRepulsion | None = None,
    ) -> None:
        super().__init__()
        if self_energies.shape != (len(levels), len(species)):
            raise ValueError(
                f"self_energies must have shape ({len(levels)}, {len(species)}), got {tuple(self_energies.shape)}"
            )
        self.hipnn = hipnn
        self.repulsion = repulsion
        self.species = list(species)
        self.levels = list(levels)
        self.register_buffer("self_energies", self_energies.to(torch.float64).clone())
        self.register_buffer("energy_scale", torch.tensor(float(energy_scale), dtype=torch.float64))
        heads = head_of_level if head_of_level is not None else [0] * len(levels)
        self.register_buffer("head_of_level", torch.tensor(heads, dtype=torch.int64))

    def _apply(self, fn, recurse=True):
        """Moves follow the module; self energies and the energy scale stay float64 (they
        are thousands of eV, and float32 would lose meV)."""
        kept = {name: getattr(self, name) for name in ("self_energies", "energy_scale")}
        super()._apply(fn, recurse)
        for name, value in kept.items():
            setattr(self, name, value.to(device=fn(value).device))
        return self

    @property
    def cutoff(self) -> float:
        return self.hipnn.cutoff

    def level_index(self, level: str) -> int:
        if level not in self.levels:
            raise KeyError(f"level {level!r} is not known to this model (known: {', '.join(self.levels)})")
        return self.levels.index(level)

    def add_level(self, level: str, self_energies: torch.Tensor, new_head: bool = False) -> int:
        """Add a level with its self energies ([n_species], eV); returns its index."""
        if level in self.levels:
            raise ValueError(f"level {level!r} already exists")
        device = self.self_energies.device
        self.self_energies = torch.cat([self.self_energies, self_energies.to(self.self_energies)[None]])
        if new_head:
            self.hipnn.add_heads(1)
            head = self.hipnn.n_heads - 1
        else:
            head = 0
        self.head_of_level = torch.cat([self.head_of_level, torch.tensor([head], device=device)])
        self.levels.append(level)
        return len(self.levels) - 1

    def atom_energies(
        self,
        species: torch.Tensor,
        vectors: torch.Tensor,
        pair_first: torch.Tensor,
        pair_second: torch.Tensor,
        atom_level: torch.Tensor,
        include_self: bool = True,
    ) -> torch.Tensor:
        """Per-atom energies [N] (eV) from pair vectors [P, 3]; atom_level [N] level index."""
        distances = torch.linalg.vector_norm(vectors, dim=1)
        unit_vectors = vectors / distances.unsqueeze(1) if self.hipnn.tensor_order > 0 else None
        raw = self.hipnn(species, distances, pair_first, pair_second, None, unit_vectors)
        heads = self.head_of_level[atom_level].unsqueeze(1)
        energies = raw.gather(1, heads).squeeze(1) * self.energy_scale.to(raw.dtype)
        if self.repulsion is not None:
            energies = energies + self.repulsion(species, distances, pair_first, pair_second, species.shape[0])
        if include_self:
            energies = energies + self.self_energies[atom_level, species].to(raw.dtype)
        return energies

    def forward(
        self,
        batch: Batch,
        compute_forces: bool = True,
        compute_stress: bool = False,
        create_graph: bool = False,
        include_self: bool = True,
    ) -> dict[str, torch.Tensor]:
        """energy [M] eV; forces [N, 3] eV/A; stress [M, 3, 3] eV/A^3 (ASE sign: dE/d(strain)/V)."""
        positions = batch.positions
        cells = batch.cells
        if compute_forces or compute_stress:
            positions = positions.detach().requires_grad_(True)
        strain = None
        if compute_stress:
            strain = torch.zeros_like(cells, requires_grad=True)
            deformation = torch.eye(3, dtype=cells.dtype, device=cells.device) + strain
            positions_used = torch.einsum("nk,nkl->nl", positions, deformation[batch.molecule])
            cells_used = cells @ deformation
        else:
            positions_used, cells_used = positions, cells
        first, second = batch.pair_first, batch.pair_second
        pair_cell = cells_used[batch.molecule[first]]
        vectors = positions_used.index_select(0, second) - positions_used.index_select(0, first) + torch.einsum("pk,pkl->pl", batch.shifts, pair_cell)
        atom_level = batch.level[batch.molecule]
        atom_energy = self.atom_energies(batch.species, vectors, first, second, atom_level, include_self)
        energy = torch.zeros(batch.n_configurations, dtype=atom_energy.dtype, device=atom_energy.device)
        energy = energy.index_add(0, batch.molecule, atom_energy)
        out = {"energy": energy}
        wrt = [t for t in (positions if compute_forces else None, strain) if t is not None]
        if wrt:
            grads = torch.autograd.grad(energy.sum(), wrt, create_graph=create_graph)
            if compute_forces:
                out["forces"] = -grads[0]
            if strain is not None:
                volume = torch.linalg.det(cells).abs().reshape(-1, 1, 1)
                dE = grads[-1]
                out["stress"] = 0.5 * (dE + dE.transpose(1, 2)) / volume
        return out
