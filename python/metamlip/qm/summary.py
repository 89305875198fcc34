"""Statistics of extxyz datasets per level and molecule (read with plain ``ase.io.read``)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import ase.io
import numpy as np


@dataclass
class Group:
    """Frames of one (file, level, molecule). Energies in eV, forces in eV/Angstrom."""

    count: int = 0
    energies: list[float] = field(default_factory=list)
    energies_per_atom: list[float] = field(default_factory=list)
    max_force: float = 0.0
    elements: set[str] = field(default_factory=set)


def summarize(path: str) -> dict[tuple[str, str], Group]:
    """Groups keyed by (level, molecule); unlabelled frames have level ``-``."""
    groups: dict[tuple[str, str], Group] = defaultdict(Group)
    for atoms in ase.io.read(path, index=":"):
        key = (str(atoms.info.get("level", "-")), str(atoms.info.get("molecule", "-")))
        group = groups[key]
        group.count += 1
        group.elements.update(atoms.get_chemical_symbols())
        if atoms.calc is not None and "energy" in atoms.calc.results:
            energy = atoms.get_potential_energy()
            group.energies.append(energy)
            group.energies_per_atom.append(energy / len(atoms))
        if atoms.calc is not None and "forces" in atoms.calc.results:
            largest = float(np.linalg.norm(atoms.get_forces(), axis=1).max())
            group.max_force = max(group.max_force, largest)
    return dict(groups)


def format_table(path: str, groups: dict[tuple[str, str], Group]) -> str:
    """A text table: one row per (level, molecule) with counts, energy range, per-atom energy
    range (eV), largest per-atom |force| (eV/Angstrom) and elements."""
    header = (f"{'level':<14} {'molecule':<12} {'frames':>6} {'E min':>14} {'E max':>14} "
              f"{'E/atom min':>12} {'E/atom max':>12} {'max|F|':>8}  elements")
    lines = [f"== {path}", header]
    for (level, molecule), g in sorted(groups.items()):
        if g.energies:
            numbers = (f"{min(g.energies):14.4f} {max(g.energies):14.4f} "
                       f"{min(g.energies_per_atom):12.4f} {max(g.energies_per_atom):12.4f} "
                       f"{g.max_force:8.3f}")
        else:
            numbers = f"{'-':>14} {'-':>14} {'-':>12} {'-':>12} {'-':>8}"
        lines.append(f"{level:<14} {molecule:<12} {g.count:>6} {numbers}  "
                     f"{','.join(sorted(g.elements))}")
    total = sum(g.count for g in groups.values())
    lines.append(f"total frames: {total}")
    return "\n".join(lines)
