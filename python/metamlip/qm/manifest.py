"""Campaign manifests: which library systems are labelled at which level, how many frames each.

A manifest (YAML)::

    name: foundation
    root: .                  # output directory, relative to the manifest's directory
    seed: 0                  # sampling seed (pools of geometries)
    sampling: {md_frames: 15, ...}        # PoolSettings for molecules
    cluster_sampling: {nm_frames: 0, ...} # PoolSettings for clusters
    anchor: [H2O, CH3CH2OH]  # systems labelled at every level
    datasets:
      - level: gfn2-xtb
        systems: all         # or a list of library ids; "molecules" and "clusters" also work
        frames: 58           # per system: the first `frames` of its pool
        chunk: 58            # frames per chunk file (the unit of work and of resumption)
        density_fit: false   # HF/DFT only: density-fitted integrals (calculators.compute)

The work is cut into units, one per (dataset, system, chunk), in manifest order. Shard K of N
(1 <= K <= N) takes every N-th unit of each dataset, starting at its (K-1)-th, so N shards
are disjoint, cover every unit, and each gets a share of every level.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import yaml

from metamlip.qm.calculators import auxiliary_basis
from metamlip.qm.levels import Level, LevelError, parse_level
from metamlip.qm.library import Library, load_library
from metamlip.qm.pool import PoolSettings

TOP_KEYS = {"name", "root", "seed", "sampling", "cluster_sampling", "anchor", "datasets"}
DATASET_KEYS = {"level", "systems", "frames", "chunk", "density_fit"}
GROUPS = ("all", "molecules", "clusters")


@dataclass(frozen=True)
class DatasetSpec:
    """One level of theory on its systems (anchor first): frames per system, chunk size,
    whether the integrals are density-fitted."""

    level: Level
    systems: tuple[str, ...]
    frames: int
    chunk: int
    density_fit: bool = False


@dataclass(frozen=True)
class Unit:
    """Frames ``start:stop`` of a system's pool at a dataset's level; ``index`` is the chunk
    number within (dataset, system)."""

    dataset: DatasetSpec
    system: str
    index: int
    start: int
    stop: int

    @property
    def name(self) -> str:
        """``<level file stem>/<system>.<index>``, e.g. ``hf_sto-3g/H2O.000``."""
        return f"{self.dataset.level.file_stem}/{self.system}.{self.index:03d}"


@dataclass(frozen=True)
class Manifest:
    """A parsed manifest; ``root`` is absolute."""

    path: Path
    name: str
    root: Path
    seed: int
    sampling: PoolSettings
    cluster_sampling: PoolSettings
    anchor: tuple[str, ...]
    datasets: tuple[DatasetSpec, ...]

    def units(self) -> list[Unit]:
        """Every unit, dataset by dataset in manifest order."""
        out = []
        for spec in self.datasets:
            for system in spec.systems:
                for index, start in enumerate(range(0, spec.frames, spec.chunk)):
                    out.append(Unit(spec, system, index, start, min(start + spec.chunk,
                                                                    spec.frames)))
        return out

    def shard_units(self, shard: int, n_shards: int) -> list[Unit]:
        """The units of shard ``shard`` of ``n_shards`` (1-based), see module docstring."""
        out, counters = [], {}
        for unit in self.units():
            position = counters.get(unit.dataset.level, 0)
            counters[unit.dataset.level] = position + 1
            if position % n_shards == shard - 1:
                out.append(unit)
        return out


def parse_shard(text: str) -> tuple[int, int]:
    """``"K/N"`` -> (K, N) with 1 <= K <= N; ValueError otherwise."""
    k, sep, n = text.partition("/")
    try:
        shard, n_shards = int(k), int(n)
    except ValueError:
        shard = n_shards = 0
    if not sep or not 1 <= shard <= n_shards:
        raise ValueError(f"--shard '{text}': expected K/N with 1 <= K <= N, e.g. 3/8")
    return shard, n_shards


def _systems(value, where: str, library: Library) -> list[str]:
    if value in GROUPS:
        return {"all": library.ids(), "molecules": list(library.molecules),
                "clusters": list(library.clusters)}[value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{where}: expected a list of library ids or one of {', '.join(GROUPS)}")
    for system_id in value:
        try:
            library.get(system_id)
        except ValueError as err:
            raise ValueError(f"{where}: {err}") from None
    return value


def _positive_int(value, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{where}: expected a positive integer, got {value!r}")
    return value


def _dataset(entry, where: str, anchor: list[str], library: Library) -> DatasetSpec:
    if not isinstance(entry, dict):
        raise ValueError(f"{where}: expected a mapping with keys {', '.join(sorted(DATASET_KEYS))}")
    unknown = sorted(set(entry) - DATASET_KEYS)
    missing = sorted({"level", "systems", "frames"} - set(entry))
    if unknown or missing:
        raise ValueError(f"{where}: unknown key(s) {', '.join(unknown) or 'none'}, missing "
                         f"{', '.join(missing) or 'none'}")
    level = parse_level(str(entry["level"]))
    systems = list(dict.fromkeys([*anchor, *_systems(entry["systems"], f"{where}.systems",
                                                     library)]))
    frames = _positive_int(entry["frames"], f"{where}.frames")
    chunk = _positive_int(entry.get("chunk", frames), f"{where}.chunk")
    density_fit = entry.get("density_fit", False)
    if not isinstance(density_fit, bool):
        raise ValueError(f"{where}.density_fit: expected true or false, got {density_fit!r}")
    if density_fit:
        try:
            auxiliary_basis(level)
        except LevelError as err:
            raise ValueError(f"{where}.density_fit: {err}") from None
    return DatasetSpec(level, tuple(systems), frames, chunk, density_fit)


def load_manifest(path: str | Path, library: Library | None = None) -> Manifest:
    """Read and validate a manifest; ValueError names the file and key."""
    path = Path(path).resolve()
    library = library or load_library()
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: manifest not found") from None
    except yaml.YAMLError as err:
        raise ValueError(f"{path}: not valid YAML: {err}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping with keys {', '.join(sorted(TOP_KEYS))}")
    unknown = sorted(set(data) - TOP_KEYS)
    if unknown:
        raise ValueError(f"{path}: unknown key(s) {', '.join(unknown)} "
                         f"(known: {', '.join(sorted(TOP_KEYS))})")
    seed = data.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"{path}: seed: expected a non-negative integer, got {seed!r}")
    sampling = replace(PoolSettings.from_dict(data.get("sampling") or {}, f"{path}: sampling"),
                       seed=seed)
    cluster = replace(PoolSettings.from_dict(data.get("cluster_sampling") or {},
                                             f"{path}: cluster_sampling"), seed=seed)
    anchor = _systems(data.get("anchor") or [], f"{path}: anchor", library)
    entries = data.get("datasets")
    if not isinstance(entries, list) or not entries:
        raise ValueError(f"{path}: datasets: expected a non-empty list")
    datasets = tuple(_dataset(e, f"{path}: datasets[{i}]", anchor, library)
                     for i, e in enumerate(entries))
    levels = [d.level.name for d in datasets]
    if len(set(levels)) != len(levels):
        raise ValueError(f"{path}: datasets: a level occurs twice ({', '.join(levels)})")
    return Manifest(path, str(data.get("name", path.stem)),
                    (path.parent / str(data.get("root", "."))).resolve(), seed, sampling,
                    cluster, tuple(anchor), datasets)
