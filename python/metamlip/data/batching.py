"""Neighbour graphs per configuration and flat batches (atoms concatenated, no padding)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from metamlip.data.configuration import Configuration
from metamlip.ops import neighbor_list


@dataclass
class Graph:
    """Pairs of one configuration: r_ij = x_j - x_i + shifts @ cell, all within the cutoff."""

    pair_first: np.ndarray  # [P] int64
    pair_second: np.ndarray  # [P] int64
    shifts: np.ndarray  # [P, 3] int64


def build_graph(config: Configuration, cutoff: float) -> Graph:
    positions = torch.from_numpy(config.positions)
    cell = None if config.cell is None else torch.from_numpy(config.cell)
    pbc = torch.from_numpy(config.pbc) if config.cell is not None else None
    i, j, s = neighbor_list(positions, cutoff, cell=cell, pbc=pbc)
    return Graph(i.numpy(), j.numpy(), s.numpy())


def build_graphs(configs: Sequence[Configuration], cutoff: float, progress: bool = True) -> list[Graph]:
    iterator = tqdm(configs, desc="neighbour lists", disable=not progress, leave=False)
    return [build_graph(c, cutoff) for c in iterator]


@dataclass
class Batch:
    """Many configurations as one graph. N atoms, M configurations, P pairs.

    species: [N] model species index; positions: [N, 3] Angstrom; molecule: [N] configuration
    index; cells: [M, 3, 3]; pair_first/pair_second: [P]; shifts: [P, 3] (float, lattice units);
    level: [M] level index; energy: [M] eV (NaN when unknown); forces: [N, 3] eV/A;
    force_mask: [N] bool (atoms with reference forces); n_atoms: [M].
    """

    species: torch.Tensor
    positions: torch.Tensor
    molecule: torch.Tensor
    cells: torch.Tensor
    pair_first: torch.Tensor
    pair_second: torch.Tensor
    shifts: torch.Tensor
    level: torch.Tensor
    energy: torch.Tensor
    forces: torch.Tensor
    force_mask: torch.Tensor
    n_atoms: torch.Tensor

    @property
    def n_configurations(self) -> int:
        return int(self.n_atoms.shape[0])

    def to(self, device: torch.device | str) -> "Batch":
        return Batch(**{f.name: getattr(self, f.name).to(device) for f in fields(self)})


def collate(
    configs: Sequence[Configuration],
    graphs: Sequence[Graph],
    species_index: dict[int, int],
    level_index: dict[str, int],
    dtype: torch.dtype = torch.float32,
) -> Batch:
    """Concatenate configurations (and their graphs) into one Batch."""
    n_atoms = np.array([c.n_atoms for c in configs], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(n_atoms)[:-1]])
    lookup = np.full(max(species_index) + 1, -1, dtype=np.int64)
    for z, k in species_index.items():
        lookup[z] = k
    numbers = np.concatenate([c.numbers for c in configs])
    species = lookup[numbers]
    forces = np.concatenate(
        [c.forces if c.forces is not None else np.zeros((c.n_atoms, 3)) for c in configs]
    )
    force_mask = np.concatenate([np.full(c.n_atoms, c.forces is not None) for c in configs])
    cells = np.stack([c.cell if c.cell is not None else np.zeros((3, 3)) for c in configs])
    return Batch(
        species=torch.from_numpy(species),
        positions=torch.from_numpy(np.concatenate([c.positions for c in configs])).to(dtype),
        molecule=torch.from_numpy(np.repeat(np.arange(len(configs)), n_atoms)),
        cells=torch.from_numpy(cells).to(dtype),
        pair_first=torch.from_numpy(np.concatenate([g.pair_first + o for g, o in zip(graphs, offsets)])),
        pair_second=torch.from_numpy(np.concatenate([g.pair_second + o for g, o in zip(graphs, offsets)])),
        shifts=torch.from_numpy(np.concatenate([g.shifts for g in graphs])).to(dtype),
        level=torch.tensor([level_index[c.level] for c in configs], dtype=torch.int64),
        energy=torch.tensor([np.nan if c.energy is None else c.energy for c in configs], dtype=torch.float64),
        forces=torch.from_numpy(forces).to(dtype),
        force_mask=torch.from_numpy(force_mask),
        n_atoms=torch.from_numpy(n_atoms),
    )


class GraphSet:
    """Configurations with their precomputed neighbour graphs, served as Batches."""

    def __init__(self, configs: Sequence[Configuration], cutoff: float, progress: bool = False) -> None:
        self.configs = list(configs)
        self.graphs = build_graphs(self.configs, cutoff, progress)

    def __len__(self) -> int:
        return len(self.configs)

    def batch(
        self,
        indices: Sequence[int],
        species_index: dict[int, int],
        level_index: dict[str, int],
        dtype: torch.dtype,
    ) -> Batch:
        return collate(
            [self.configs[k] for k in indices], [self.graphs[k] for k in indices], species_index, level_index, dtype
        )
