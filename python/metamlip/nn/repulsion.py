"""Core repulsion: the ZBL screened nuclear repulsion, switched off below the shortest distances
the training data hold, added to the learned energy.

ZBL (Ziegler, Biersack, Littmark 1985, the "universal" screening): for atoms with atomic
numbers Z_a, Z_b at distance r (Angstrom),

    V(r) = k Z_a Z_b / r * phi(r / a),   a = 0.46850 / (Z_a^0.23 + Z_b^0.23) Angstrom,
    phi(x) = 0.18175 e^(-3.19980 x) + 0.50986 e^(-0.94229 x) + 0.28022 e^(-0.40290 x)
             + 0.02817 e^(-0.20162 x),

k = e^2 / (4 pi eps0) = 14.399645 eV Angstrom. Each element pair has an outer radius r_out
(by default 0.85 x the shortest distance of that pair in the training data, so that validation
and test frames a little closer than any training frame are not penalised) and an inner radius
r_in = inner_fraction * r_out; the pair energy is V(r) s(t), t = (r - r_in) / (r_out - r_in)
clamped to [0, 1], s = 1 - t^3 (10 - 15 t + 6 t^2): pure ZBL inside r_in, exactly zero at and
beyond r_out with zero slope and curvature there. Every training configuration thus gets zero
repulsion, and the network fits the data as before; MD that pushes atoms closer than the data
ever were meets a wall instead of whatever the network extrapolates. Half of each pair's
energy goes to each of its two atoms (a full pair list is summed over the receiving atom), so
per-atom energies, masked atoms and atoms split between processes count every pair once.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from ase.data import chemical_symbols, covalent_radii
from torch import nn

COULOMB = 14.399645  # e^2 / (4 pi eps0), eV Angstrom
SCREENING_LENGTH = 0.46850  # Angstrom (0.8854 * Bohr radius)
SCREENING_COEFFICIENTS = (0.18175, 0.50986, 0.28022, 0.02817)
SCREENING_EXPONENTS = (3.19980, 0.94229, 0.40290, 0.20162)
KINDS = ("zbl", "none")


class ZBLRepulsion(nn.Module):
    """Per-atom ZBL repulsion energies (eV) from pair distances.

    species: atomic numbers in model order (S of them); outer: [S, S] symmetric outer radii
    (Angstrom); inner_fraction: r_in / r_out, in [0, 1); outer_fraction and covalent_cap: how
    the radii were chosen from the data (fitted_repulsion; kept for the config).
    """

    def __init__(
        self,
        species: list[int],
        outer: torch.Tensor,
        inner_fraction: float,
        outer_fraction: float,
        covalent_cap: float,
    ) -> None:
        super().__init__()
        outer = torch.as_tensor(outer, dtype=torch.float64)
        n = len(species)
        if outer.shape != (n, n) or not bool(torch.equal(outer, outer.T)) or not bool((outer > 0).all()):
            raise ValueError(f"repulsion: outer radii must be a symmetric positive [{n}, {n}] matrix")
        if not 0.0 <= inner_fraction < 1.0:
            raise ValueError(f"repulsion: inner fraction must be in [0, 1), got {inner_fraction}")
        z = torch.tensor(species, dtype=torch.float64)
        zz = z[:, None] * z[None, :]
        zpow = z**0.23
        self.n_species = n
        self.inner_fraction = float(inner_fraction)
        self.outer_fraction = float(outer_fraction)
        self.covalent_cap = float(covalent_cap)
        self.max_outer = float(outer.max())
        self.outer_radii: list[list[float]] = outer.tolist()  # float64, whatever the buffers' dtype
        self.register_buffer("prefactor", (COULOMB * zz).reshape(-1))
        self.register_buffer("inverse_screening", ((zpow[:, None] + zpow[None, :]) / SCREENING_LENGTH).reshape(-1))
        self.register_buffer("inner", (inner_fraction * outer).reshape(-1))
        self.register_buffer("outer", outer.reshape(-1).clone())
        self.register_buffer("coefficients", torch.tensor(SCREENING_COEFFICIENTS, dtype=torch.float64))
        self.register_buffer("exponents", torch.tensor(SCREENING_EXPONENTS, dtype=torch.float64))

    def pair_energies(self, distances: torch.Tensor, pair_type: torch.Tensor) -> torch.Tensor:
        """Energy [P] (eV) of pairs at distances [P] with pair_type [P] = S * s_a + s_b."""
        dtype = distances.dtype
        x = distances * self.inverse_screening.to(dtype)[pair_type]
        screening = (self.coefficients.to(dtype) * torch.exp(-x[:, None] * self.exponents.to(dtype))).sum(1)
        inner = self.inner.to(dtype)[pair_type]
        outer = self.outer.to(dtype)[pair_type]
        t = ((distances - inner) / (outer - inner)).clamp(0.0, 1.0)
        switch = 1.0 - t * t * t * (10.0 - 15.0 * t + 6.0 * t * t)
        return self.prefactor.to(dtype)[pair_type] / distances * screening * switch

    def forward(
        self,
        species: torch.Tensor,
        distances: torch.Tensor,
        pair_first: torch.Tensor,
        pair_second: torch.Tensor,
        n_receivers: int,
    ) -> torch.Tensor:
        """Energies [n_receivers] (eV, distances' dtype): half of each pair's energy, summed
        over pair_first. species [N] (model index), distances [P], pairs (pair_first <
        n_receivers). Pairs at or beyond every outer radius are skipped before any work."""
        close = (distances < self.max_outer).nonzero().squeeze(1)
        d = distances.index_select(0, close)
        first = pair_first.index_select(0, close)
        second = pair_second.index_select(0, close)
        pair_type = species.index_select(0, first) * self.n_species + species.index_select(0, second)
        energies = torch.zeros(n_receivers, dtype=distances.dtype, device=distances.device)
        return energies.index_add(0, first, 0.5 * self.pair_energies(d, pair_type))

    def describe(self, species: list[int]) -> dict[str, Any]:
        """Readable description (metadata): radii per element pair, Angstrom."""
        outer = self.outer_radii
        pairs = {}
        for a in range(self.n_species):
            for b in range(a, self.n_species):
                name = f"{chemical_symbols[species[a]]}-{chemical_symbols[species[b]]}"
                pairs[name] = {"inner": self.inner_fraction * outer[a][b], "outer": outer[a][b]}
        return {"kind": "zbl", "inner_fraction": self.inner_fraction, "pairs": pairs}


def covalent_caps(species: list[int], covalent_cap: float) -> np.ndarray:
    """[S, S] covalent_cap * (r_cov_a + r_cov_b), Angstrom (ASE's covalent radii)."""
    radii = np.array([covalent_radii[z] for z in species])
    return covalent_cap * (radii[:, None] + radii[None, :])


def shortest_pair_distances(configurations: list[Any], species: list[int], search: float) -> np.ndarray:
    """[S, S] shortest distance (Angstrom) of each element pair within `search` over the
    configurations (objects with numbers, positions, cell, pbc), inf where none is closer."""
    from metamlip.ops import neighbor_list

    index = {z: k for k, z in enumerate(species)}
    n = len(species)
    shortest = np.full(n * n, np.inf)
    for config in configurations:
        positions = torch.as_tensor(np.asarray(config.positions, dtype=np.float64))
        periodic = config.cell is not None and bool(np.any(config.pbc))
        cell = torch.as_tensor(np.asarray(config.cell, dtype=np.float64)) if periodic else None
        pbc = torch.as_tensor(np.asarray(config.pbc, dtype=bool)) if periodic else None
        i, j, shifts = neighbor_list(positions, search, cell, pbc)
        if i.numel() == 0:
            continue
        vectors = positions[j] - positions[i]
        if cell is not None:
            vectors = vectors + shifts.to(torch.float64) @ cell
        distances = torch.linalg.vector_norm(vectors, dim=1).numpy()
        s = np.array([index[int(z)] for z in config.numbers])
        pair_type = s[i.numpy()] * n + s[j.numpy()]
        np.minimum.at(shortest, pair_type, distances)
    shortest = shortest.reshape(n, n)
    return np.minimum(shortest, shortest.T)


def fitted_repulsion(
    kind: str,
    species: list[int],
    configurations: list[Any],
    inner_fraction: float,
    outer_fraction: float,
    covalent_cap: float,
) -> ZBLRepulsion | None:
    """A new model's repulsion: outer radii = outer_fraction x the shortest distance of each
    element pair in `configurations` (the training data), at most covalent_cap * (r_cov_a +
    r_cov_b) (also for pairs the data never bring closer than that)."""
    if kind not in KINDS:
        raise ValueError(f"unknown repulsion kind {kind!r} (known: {', '.join(KINDS)})")
    if kind == "none":
        return None
    caps = covalent_caps(species, covalent_cap)
    shortest = shortest_pair_distances(configurations, species, float(caps.max()))
    outer = torch.from_numpy(np.minimum(outer_fraction * shortest, caps))
    return ZBLRepulsion(species, outer, inner_fraction, outer_fraction, covalent_cap)


def repulsion_from_config(model: Any, species: list[int], configurations: list[Any]) -> ZBLRepulsion | None:
    """The repulsion a config's model section asks for (its keys repulsion, repulsion_inner,
    repulsion_outer, repulsion_max_outer), radii from `configurations` (the training data)."""
    return fitted_repulsion(
        model.repulsion, species, configurations, model.repulsion_inner, model.repulsion_outer, model.repulsion_max_outer
    )


def repulsion_from_spec(species: list[int], spec: dict[str, Any] | None) -> ZBLRepulsion | None:
    """The module a checkpoint's `repulsion` entry describes (None or kind "none": no repulsion)."""
    if spec is None or spec.get("kind", "none") == "none":
        return None
    if spec["kind"] != "zbl":
        raise ValueError(f"unknown repulsion kind {spec['kind']!r} (known: {', '.join(KINDS)})")
    outer = torch.tensor(spec["outer"], dtype=torch.float64)
    return ZBLRepulsion(
        species, outer, float(spec["inner_fraction"]), float(spec["outer_fraction"]), float(spec["covalent_cap"])
    )


def repulsion_spec(module: ZBLRepulsion | None) -> dict[str, Any]:
    """What a checkpoint stores to rebuild `module`."""
    if module is None:
        return {"kind": "none"}
    return {
        "kind": "zbl",
        "inner_fraction": module.inner_fraction,
        "outer_fraction": module.outer_fraction,
        "covalent_cap": module.covalent_cap,
        "outer": module.outer_radii,
    }
