"""The molecule library: neutral closed-shell H/C/N/O molecules and molecular clusters.

``molecules.csv`` (id, smiles, formula, source) lists the molecules, written as SMILES in this
repository; ``clusters.csv`` (id, members, source) lists dimers and small clusters, each a
``+``-joined list of molecule ids. ``load_library()`` reads both; 3D structures come from
``metamlip.qm.embedding``.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from pathlib import Path

LIBRARY_DIR = Path(__file__).resolve().parent
ELEMENTS = ("H", "C", "N", "O")
MIN_ATOMS, MAX_ATOMS = 3, 30  # per molecule, hydrogens included


@dataclass(frozen=True)
class Molecule:
    """One library molecule: id (file-name safe), SMILES, Hill formula, source collection."""

    id: str
    smiles: str
    formula: str
    source: str


@dataclass(frozen=True)
class Cluster:
    """Two to four library molecules placed together: id, member molecule ids, source."""

    id: str
    members: tuple[str, ...]
    source: str


@dataclass(frozen=True)
class Library:
    """Molecules and clusters by id (insertion order = file order)."""

    molecules: dict[str, Molecule]
    clusters: dict[str, Cluster]

    def ids(self) -> list[str]:
        """Every system id: molecules, then clusters."""
        return [*self.molecules, *self.clusters]

    def get(self, system_id: str) -> Molecule | Cluster:
        """The molecule or cluster ``system_id``; ValueError names an unknown id."""
        if system_id in self.molecules:
            return self.molecules[system_id]
        if system_id in self.clusters:
            return self.clusters[system_id]
        raise ValueError(f"'{system_id}' is not a molecule or cluster of the library "
                         "(list them with `metamlip-data library`)")


def _rows(path: Path, header: list[str]) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames != header:
            raise ValueError(f"{path}: header {reader.fieldnames}, expected {header}")
        return list(reader)


@cache
def load_library(directory: Path = LIBRARY_DIR) -> Library:
    """Read ``molecules.csv`` and ``clusters.csv`` from ``directory``; ids must be unique
    and cluster members must be library molecules (ValueError names the row)."""
    molecules: dict[str, Molecule] = {}
    for row in _rows(directory / "molecules.csv", ["id", "smiles", "formula", "source"]):
        if row["id"] in molecules:
            raise ValueError(f"{directory / 'molecules.csv'}: id '{row['id']}' occurs twice")
        molecules[row["id"]] = Molecule(**row)
    clusters: dict[str, Cluster] = {}
    path = directory / "clusters.csv"
    for row in _rows(path, ["id", "members", "source"]):
        members = tuple(row["members"].split("+"))
        unknown = [m for m in members if m not in molecules]
        if unknown or not 2 <= len(members) <= 4:
            raise ValueError(f"{path}: cluster '{row['id']}': members must be 2 to 4 library "
                             f"molecules (unknown: {', '.join(unknown) or 'none'})")
        if row["id"] in clusters or row["id"] in molecules:
            raise ValueError(f"{path}: id '{row['id']}' occurs twice")
        clusters[row["id"]] = Cluster(row["id"], members, row["source"])
    return Library(molecules, clusters)
