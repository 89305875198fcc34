"""Statistics of a dataset (configurations as ``metamlip.data`` reads them from extxyz, HDF5 or
npz) per level and molecule, with the frames that cannot be used listed rather than skipped."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from ase.data import chemical_symbols

MAX_LISTED = 5  # frames named per kind of problem


@dataclass
class Group:
    """Frames of one (file, level, molecule). Energies in eV, forces in eV/Angstrom."""

    count: int = 0
    energies: list[float] = field(default_factory=list)
    energies_per_atom: list[float] = field(default_factory=list)
    max_force: float = 0.0
    elements: set[str] = field(default_factory=set)


@dataclass
class Summary:
    """Groups keyed by (level, molecule) (unlabelled frames have level ``-``) and problems:
    kind (e.g. ``NaN energy``) -> frame indices."""

    groups: dict[tuple[str, str], Group]
    problems: dict[str, list[int]]


def summarize(dataset: Sequence[Any], path: str) -> Summary:
    """Summarize configurations (``metamlip.data.Configuration``: numbers, positions, level,
    energy, forces, molecule) read from ``path``; ValueError if there are none."""
    if len(dataset) == 0:
        raise ValueError(f"{path}: no frames (empty file)")
    groups: dict[tuple[str, str], Group] = defaultdict(Group)
    problems: dict[str, list[int]] = defaultdict(list)
    labelled = any(c.energy is not None for c in dataset)
    for index, config in enumerate(dataset):
        group = groups[(config.level or "-", config.molecule or "-")]
        group.count += 1
        group.elements.update(chemical_symbols[int(z)] for z in config.numbers)
        if not np.isfinite(config.positions).all():
            problems["NaN or infinite position"].append(index)
        if config.energy is None:
            if labelled:
                problems["missing energy"].append(index)
        elif not np.isfinite(config.energy):
            problems["NaN or infinite energy"].append(index)
        else:
            group.energies.append(config.energy)
            group.energies_per_atom.append(config.energy / config.n_atoms)
        if config.forces is not None:
            if not np.isfinite(config.forces).all():
                problems["NaN or infinite force"].append(index)
            elif config.n_atoms:
                largest = float(np.linalg.norm(config.forces, axis=1).max())
                group.max_force = max(group.max_force, largest)
    return Summary(dict(groups), dict(problems))


def format_table(path: str, summary: Summary) -> str:
    """A text table: one row per (level, molecule) with counts, energy range, per-atom energy
    range (eV), largest per-atom |force| (eV/Angstrom) and elements; then one line per kind
    of problem naming the first frames (these frames are left out of the ranges)."""
    header = (f"{'level':<14} {'molecule':<12} {'frames':>6} {'E min':>14} {'E max':>14} "
              f"{'E/atom min':>12} {'E/atom max':>12} {'max|F|':>8}  elements")
    lines = [f"== {path}", header]
    for (level, molecule), g in sorted(summary.groups.items()):
        if g.energies:
            numbers = (f"{min(g.energies):14.4f} {max(g.energies):14.4f} "
                       f"{min(g.energies_per_atom):12.4f} {max(g.energies_per_atom):12.4f} "
                       f"{g.max_force:8.3f}")
        else:
            numbers = f"{'-':>14} {'-':>14} {'-':>12} {'-':>12} {'-':>8}"
        lines.append(f"{level:<14} {molecule:<12} {g.count:>6} {numbers}  "
                     f"{','.join(sorted(g.elements))}")
    total = sum(g.count for g in summary.groups.values())
    lines.append(f"total frames: {total}")
    for kind, frames in sorted(summary.problems.items()):
        listed = ", ".join(map(str, frames[:MAX_LISTED])) + (", ..." if len(frames) > MAX_LISTED
                                                               else "")
        lines.append(f"problem: {len(frames)} frame(s) with {kind} (frame {listed})")
    return "\n".join(lines)
