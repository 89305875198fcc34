"""The exported model: one level of a Potential behind the engine interface (TorchScript).

Engine interface (the same for LAMMPS, OpenMM and ASE; units eV and Angstrom):

    forward(positions [N, 3], atomic_numbers [N] int64, edge_index [2, P] int64,
            edge_shift_vectors [P, 3], energy_atom_mask [N] bool) -> energies [N] float64

r_p = positions[j] - positions[i] + edge_shift_vectors[p] with (i, j) = edge_index[:, p]. The
pair list is *full* (both (i, j) and (j, i)), every pair closer than the cutoff must be present
and pairs at or beyond the cutoff contribute exactly zero; pair order does not matter. The
energy of atom i is returned where energy_atom_mask[i] is True and 0 elsewhere. Positions and
shift vectors of any floating dtype are cast to the model's dtype; forces come from autograd
with respect to positions, the virial from positions and shift vectors.
"""

from __future__ import annotations

from typing import List, Optional

import torch
from ase.data import chemical_symbols
from torch import nn

from metamlip.nn.hipnn import HIPNN


def species_index(
    atomic_numbers: torch.Tensor, species_of_number: torch.Tensor, symbols: List[str], supported: str
) -> torch.Tensor:
    """Model species index of each atom; an element the model does not know is an error.

    species_of_number: [max Z + 1] model index of each atomic number, -1 where unsupported.
    (A function, not a method: engines that run TorchScript unoptimised call methods by name,
    and openmmtorch's copy of a module keeps only `forward`.)
    """
    n_known = species_of_number.shape[0]
    clamped = atomic_numbers.clamp(0, n_known - 1)
    species = species_of_number[clamped]
    unknown = (species < 0) | (clamped != atomic_numbers)
    if bool(unknown.any()):
        z = int(atomic_numbers[unknown][0])
        name = symbols[z] if 0 <= z < len(symbols) else "?"
        raise RuntimeError(
            "metamlip: element " + name + " (atomic number " + str(z) + ") is not supported by "
            "this model (supported: " + supported + ")"
        )
    return species


class ExportedModel(nn.Module):
    """Per-atom energies E_i = energy_scale * hipnn_i[head] + e_self(Z_i) for one level (eV).

    hipnn: the network (used as is: the caller passes a copy in the wanted dtype);
    species: atomic numbers in model order; self_energies: [n_species] eV (kept float64).
    """

    def __init__(
        self, hipnn: HIPNN, species: List[int], self_energies: torch.Tensor, energy_scale: float, head: int
    ) -> None:
        super().__init__()
        self.hipnn = hipnn
        self.head = int(head)
        self.cutoff = float(hipnn.cutoff)
        # A bool, not hipnn.input_head.weight.dtype: a frozen module cannot refer to submodules.
        self.float64 = hipnn.input_head.weight.dtype == torch.float64
        lookup = torch.full((max(species) + 1,), -1, dtype=torch.int64)
        lookup[torch.tensor(species)] = torch.arange(len(species))
        self.register_buffer("species_of_number", lookup)
        self.register_buffer("self_energies", self_energies.detach().to(torch.float64).clone())
        self.register_buffer("energy_scale", torch.tensor(float(energy_scale), dtype=torch.float64))
        self.symbols: List[str] = list(chemical_symbols)
        self.supported = ", ".join(chemical_symbols[z] for z in species)

    def forward(
        self,
        positions: torch.Tensor,
        atomic_numbers: torch.Tensor,
        edge_index: torch.Tensor,
        edge_shift_vectors: torch.Tensor,
        energy_atom_mask: torch.Tensor,
    ) -> torch.Tensor:
        """Per-atom energies [N] float64 (eV), zero where energy_atom_mask is False."""
        n_atoms = positions.shape[0]
        n_pairs = edge_index.shape[1]
        torch._assert(positions.dim() == 2 and positions.shape[1] == 3, "metamlip: positions must be [N, 3]")
        torch._assert(atomic_numbers.shape == (n_atoms,), "metamlip: atomic_numbers must be [N]")
        torch._assert(edge_index.dim() == 2 and edge_index.shape[0] == 2, "metamlip: edge_index must be [2, P]")
        torch._assert(edge_shift_vectors.shape == (n_pairs, 3), "metamlip: edge_shift_vectors must be [P, 3]")
        torch._assert(energy_atom_mask.shape == (n_atoms,), "metamlip: energy_atom_mask must be [N]")
        species = species_index(atomic_numbers, self.species_of_number, self.symbols, self.supported)
        dtype = torch.float64 if self.float64 else torch.float32
        pos = positions.to(dtype)
        first, second = edge_index[0], edge_index[1]
        vectors = pos[second] - pos[first] + edge_shift_vectors.to(dtype)
        # Atoms outside the mask (an engine's ghosts) skip the last block: their energy is zeroed.
        pruned: Optional[torch.Tensor] = None
        if not bool(energy_atom_mask.all()):
            pruned = energy_atom_mask
        raw = self.hipnn(species, torch.linalg.vector_norm(vectors, dim=1), first, second, pruned)[:, self.head]
        energies = raw.to(torch.float64) * self.energy_scale + self.self_energies[species]
        return torch.where(energy_atom_mask, energies, torch.zeros_like(energies))
