"""Configurations (one geometry with its labels at one level of theory) and datasets of them."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable, Iterator

import numpy as np


@dataclass
class Configuration:
    """One labelled geometry.

    numbers: [n] atomic numbers; positions: [n, 3] Angstrom; energy: eV (total, or None);
    forces: [n, 3] eV/Angstrom or None; cell: [3, 3] lattice vectors as rows (Angstrom) or None;
    pbc: [3] bool; level: level of theory, lower case (e.g. "b3lyp/6-31g*");
    source: "file:frame" used in error messages.
    """

    numbers: np.ndarray
    positions: np.ndarray
    level: str
    energy: float | None = None
    forces: np.ndarray | None = None
    cell: np.ndarray | None = None
    pbc: np.ndarray = field(default_factory=lambda: np.zeros(3, dtype=bool))
    molecule: str = ""
    source: str = ""

    @property
    def n_atoms(self) -> int:
        return int(self.numbers.shape[0])


class Dataset:
    """An ordered list of configurations, possibly at several levels of theory."""

    def __init__(self, configurations: Iterable[Configuration] = ()) -> None:
        self.configurations: list[Configuration] = list(configurations)

    def __len__(self) -> int:
        return len(self.configurations)

    def __iter__(self) -> Iterator[Configuration]:
        return iter(self.configurations)

    def __getitem__(self, index: int) -> Configuration:
        return self.configurations[index]

    def __add__(self, other: "Dataset") -> "Dataset":
        return Dataset(self.configurations + other.configurations)

    def subset(self, indices: Iterable[int]) -> "Dataset":
        return Dataset(self.configurations[i] for i in indices)

    def levels(self) -> list[str]:
        """Levels of theory present, in order of first appearance."""
        return list(dict.fromkeys(c.level for c in self.configurations))

    def level_counts(self) -> Counter:
        return Counter(c.level for c in self.configurations)

    def select_level(self, level: str) -> "Dataset":
        return Dataset(c for c in self.configurations if c.level == level)

    def elements(self) -> list[int]:
        """Sorted atomic numbers present."""
        found: set[int] = set()
        for c in self.configurations:
            found.update(int(z) for z in np.unique(c.numbers))
        return sorted(found)
