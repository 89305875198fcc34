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

Engines that split the atoms between processes (LAMMPS under MPI) call `stage` once per
interaction block instead, sending each block's output features of their own atoms to the
processes that hold copies of them (see ExportedModel.stage).
"""

from __future__ import annotations

from typing import List, Optional, Tuple

import torch
from ase.data import chemical_symbols
from torch import nn

from metamlip.deploy.pairs import check_distances
from metamlip.nn.hipnn import HIPNN
from metamlip.nn.repulsion import ZBLRepulsion


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
    """Per-atom energies E_i = energy_scale * hipnn_i[head] + e_self(Z_i) + rep_i for one level (eV).

    hipnn: the network (used as is: the caller passes a copy in the wanted dtype);
    species: atomic numbers in model order; self_energies: [n_species] eV (kept float64);
    repulsion: the core repulsion rep_i (nn/repulsion.py) or None. Pairs closer than
    MIN_PAIR_DISTANCE (deploy/pairs.py) are an error naming the two atoms.
    """

    def __init__(
        self,
        hipnn: HIPNN,
        species: List[int],
        self_energies: torch.Tensor,
        energy_scale: float,
        head: int,
        repulsion: Optional[ZBLRepulsion] = None,
    ) -> None:
        super().__init__()
        self.hipnn = hipnn
        self.repulsion = repulsion
        self.head = int(head)
        self.cutoff = float(hipnn.cutoff)
        # A bool, not hipnn.input_head.weight.dtype: a frozen module cannot refer to submodules.
        self.float64 = hipnn.input_head.weight.dtype == torch.float64
        self.tensor_order = int(hipnn.tensor_order)
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
        vectors = pos.index_select(0, second) - pos.index_select(0, first) + edge_shift_vectors.to(dtype)
        distances = torch.linalg.vector_norm(vectors, dim=1)
        check_distances(distances, edge_index, None)
        # Atoms outside the mask (an engine's ghosts) skip the last block: their energy is zeroed.
        pruned: Optional[torch.Tensor] = None
        if not bool(energy_atom_mask.all()):
            pruned = energy_atom_mask
        unit_vectors: Optional[torch.Tensor] = None
        if self.tensor_order > 0:
            unit_vectors = vectors / distances.unsqueeze(1)
        raw = self.hipnn(species, distances, first, second, pruned, unit_vectors)[:, self.head]
        energies = raw.to(torch.float64) * self.energy_scale + self.self_energies[species]
        repulsion = self.repulsion
        if repulsion is not None:
            energies = energies + repulsion(species, distances, first, second, n_atoms).to(torch.float64)
        return torch.where(energy_atom_mask, energies, torch.zeros_like(energies))

    @torch.jit.export
    def stage(
        self,
        block: int,
        distances: torch.Tensor,
        atomic_numbers: torch.Tensor,
        edge_index: torch.Tensor,
        features: Optional[torch.Tensor],
        n_receivers: int,
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Interaction block `block` (0-based) for the atoms [0, n_receivers) only.

        distances [P] (Angstrom, the model's dtype): |r_p| of the pairs edge_index [2, P], as
        forward computes them; or the pair vectors r_p [P, 3] themselves, which HIP-NN-TS models
        (metadata tensor_order > 0) need. The caller differentiates them with respect to
        positions and shift vectors (once, after all blocks). Every pair must be received by one
        of the receivers (edge_index[0] < n_receivers); the other atoms only send. features: None for
        block 0 (it starts from the species of all N atoms), else the previous block's output
        features of all N atoms [N, F]. Returns (energies [n_receivers] float64 eV: this block's
        share of each receiver's energy, the self energy and species term included at block 0;
        output features [n_receivers, F]). Summed over the blocks, the energies are forward's
        (block 0 also carries the core repulsion: half of each received pair's energy, so every
        pair counts once however the atoms are split between processes).
        """
        torch._assert(0 <= block < self.hipnn.n_interactions, "metamlip: stage: no such block")
        n_atoms = atomic_numbers.shape[0]
        torch._assert(0 <= n_receivers <= n_atoms, "metamlip: stage: n_receivers must be in [0, N]")
        torch._assert(edge_index.dim() == 2 and edge_index.shape[0] == 2, "metamlip: edge_index must be [2, P]")
        n_pairs = edge_index.shape[1]
        torch._assert(
            distances.shape == (n_pairs,) or distances.shape == (n_pairs, 3),
            "metamlip: stage: distances must be [P] (or pair vectors [P, 3])",
        )
        torch._assert(
            self.tensor_order == 0 or distances.dim() == 2,
            "metamlip: stage: this HIP-NN-TS model (tensor_order > 0) needs the pair vectors [P, 3], not distances",
        )
        first, second = edge_index[0], edge_index[1]
        torch._assert(
            first.numel() == 0 or int(first.max()) < n_receivers,
            "metamlip: stage: every pair must be received by one of the first n_receivers atoms",
        )
        species = species_index(atomic_numbers, self.species_of_number, self.symbols, self.supported)
        dtype = torch.float64 if self.float64 else torch.float32
        distances = distances.to(dtype)
        unit_vectors: Optional[torch.Tensor] = None
        if distances.dim() == 2:
            vectors = distances
            distances = torch.linalg.vector_norm(vectors, dim=1)
            if self.tensor_order > 0:
                unit_vectors = vectors / distances.unsqueeze(1)
        if block == 0:
            check_distances(distances, edge_index, None)
        receivers = torch.arange(n_receivers, device=distances.device)
        raw = torch.zeros(n_receivers, dtype=dtype, device=distances.device)
        energies = torch.zeros(n_receivers, dtype=torch.float64, device=distances.device)
        if features is None:
            torch._assert(block == 0, "metamlip: stage: blocks after the first need features")
            z = nn.functional.one_hot(species, self.hipnn.n_species).to(dtype)
            raw = self.hipnn.input_head(z[:n_receivers])[:, self.head]
            energies = self.self_energies[species[:n_receivers]]
            repulsion = self.repulsion
            if repulsion is not None:
                energies = energies + repulsion(species, distances, first, second, n_receivers).to(torch.float64)
        else:
            torch._assert(features.shape[0] == n_atoms, "metamlip: stage: features must be [N, F]")
            z = features.to(dtype)
        out = z[:0]
        for k, interaction in enumerate(self.hipnn.blocks):
            if k == block:
                out = interaction(z, distances, first, second, receivers, unit_vectors)
                raw = raw + interaction.head(out)[:, self.head]
        return energies + raw.to(torch.float64) * self.energy_scale, out
