"""Small models and batches shared by the model tests."""

from __future__ import annotations

import numpy as np
import torch

from metamlip.data import Configuration
from metamlip.data.batching import Batch, build_graph, collate
from metamlip.nn.build import build_potential
from metamlip.nn.potential import Potential

SPECIES = [1, 6, 7, 8]
ARCHITECTURE = {
    "n_features": 16,
    "n_sensitivities": 8,
    "n_interactions": 2,
    "n_atom_layers": 2,
    "cutoff": 4.0,
    "soft_min": 0.75,
    "soft_max": 3.5,
}


def small_potential(
    seed: int = 0, dtype: torch.dtype = torch.float64, levels: tuple[str, ...] = ("test",), tensor_order: int = 0
) -> Potential:
    torch.manual_seed(seed)
    self_energies = torch.randn(len(levels), len(SPECIES)) * 10
    architecture = dict(ARCHITECTURE, tensor_order=tensor_order)
    potential = build_potential(architecture, SPECIES, list(levels), self_energies, energy_scale=0.7)
    return potential.to(dtype)


def batch_of(configs: list[Configuration], potential: Potential, dtype: torch.dtype = torch.float64) -> Batch:
    graphs = [build_graph(c, potential.cutoff) for c in configs]
    return collate(
        configs,
        graphs,
        {z: k for k, z in enumerate(potential.species)},
        {name: k for k, name in enumerate(potential.levels)},
        dtype,
    )


def config_of(numbers, positions, cell=None, pbc=None, level: str = "test") -> Configuration:
    return Configuration(
        numbers=np.asarray(numbers, dtype=np.int64),
        positions=np.asarray(positions, dtype=np.float64),
        level=level,
        cell=None if cell is None else np.asarray(cell, dtype=np.float64),
        pbc=np.zeros(3, bool) if pbc is None else np.asarray(pbc, bool),
    )
