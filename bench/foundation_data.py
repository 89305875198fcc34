"""The foundation experiment's data (issue 13): a multi-dataset pre-training set with held-out
molecules and a held-out level, deterministic and written by code, never by hand.

- Target (held-out) level: `mp2/cc-pvdz`, removed from pre-training entirely (the foundation
  campaign's chunks and the bundled set's file alike).
- Held-out molecules: the first N_HELDOUT molecules (not clusters, not anchors) of the
  manifest's `mp2/cc-pvdz` systems, in manifest order (the order the campaign labels them).
  Every frame of them, and of every cluster that contains one, is removed from pre-training at
  every level.
- Target split, per held-out molecule, by position in its labelled frames (chunk 000 first):
  frames 0-3 test, frame 4 validation, the rest the training pool; so the test set of a
  molecule is fixed as soon as its first chunk is labelled and never changes afterwards.
- Sources: every other level of data/foundation/labels plus, unless told otherwise, the bundled
  set (examples/data, its extra/ files included) without `mp2/cc-pvdz`; per level a fixed
  validation part (10%, at least 20 and at most 200 frames).

`prepare()` writes WORK/prepared.pt (sources) and WORK/target.pt (target split) with torch.save,
and WORK/prepared.json (counts, held-out list, closest level).
"""

from __future__ import annotations

import glob
import json
import zlib
from collections import Counter, defaultdict
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from metamlip.atomic import atomic_path
from metamlip.data import Configuration, Dataset, read_dataset
from metamlip.meta.tasks import geometry_key
from metamlip.qm.library import load_library

ROOT = Path(__file__).resolve().parents[1]
FOUNDATION = ROOT / "data" / "foundation"
BUNDLED = ROOT / "examples" / "data"
TARGET_LEVEL = "mp2/cc-pvdz"
N_HELDOUT = 24
TEST_PER_MOLECULE = 4
VAL_PER_MOLECULE = 1
MIN_TRANSFER_SYSTEMS = 20  # the transfer source must cover this many systems
SPECIES = [1, 6, 7, 8]


def heldout_molecules(manifest_path: Path = FOUNDATION / "manifest.yaml", count: int = N_HELDOUT) -> list[str]:
    """The held-out molecules: the first `count` molecules (not clusters, not anchors) of the
    manifest's target-level systems, in manifest order."""
    manifest = yaml.safe_load(Path(manifest_path).read_text())
    library = load_library()
    anchor = set(manifest.get("anchor", []))
    target = [d for d in manifest["datasets"] if str(d["level"]).lower() == TARGET_LEVEL]
    if not target:
        raise ValueError(f"{manifest_path}: no {TARGET_LEVEL} dataset")
    chosen = [s for s in target[0]["systems"] if s not in anchor and s in library.molecules][:count]
    if len(chosen) < count:
        raise ValueError(f"{manifest_path}: only {len(chosen)} {TARGET_LEVEL} molecules outside the anchor, need {count}")
    return chosen


def banned_systems(heldout: list[str]) -> set[str]:
    """The held-out molecules and every library cluster that contains one of them."""
    library = load_library()
    held = set(heldout)
    return held | {c.id for c in library.clusters.values() if held & set(c.members)}


def chunk_order(path: str) -> tuple[str, int]:
    """(system, chunk index) of labels/<level>/<system>.<k>.extxyz.gz."""
    name = Path(path).name[: -len(".extxyz.gz")]
    system, _, index = name.rpartition(".")
    return system, int(index)


def _read(path: str) -> list[Configuration]:
    return list(read_dataset(path))


def read_files(paths: list[str], workers: int = 1) -> list[list[Configuration]]:
    """Frames of each file (in the order given), read by `workers` processes."""
    if workers <= 1 or len(paths) < 8:
        return [_read(p) for p in paths]
    with ProcessPoolExecutor(workers) as pool:
        return list(pool.map(_read, paths, chunksize=8))


def foundation_files(foundation: Path) -> dict[str, list[str]]:
    """Chunk files per level directory (sorted by system, then chunk index)."""
    out = {}
    for directory in sorted((foundation / "labels").glob("*")):
        files = sorted(glob.glob(str(directory / "*.extxyz.gz")), key=chunk_order)
        if files:
            out[directory.name] = files
    return out


def bundled_files(bundled: Path) -> list[str]:
    """The bundled set's labelled files but the target level's."""
    files = sorted(glob.glob(str(bundled / "*.extxyz.gz"))) + sorted(glob.glob(str(bundled / "extra" / "*.extxyz.gz")))
    return [f for f in files if "configs" not in Path(f).name and not Path(f).name.startswith("mp2")]


@dataclass
class Prepared:
    """Sources {level: (train, val)}, the target split, and what was decided."""

    sources: dict[str, tuple[Dataset, Dataset]]
    info: dict[str, Any] = field(default_factory=dict)


@dataclass
class TargetData:
    test: Dataset
    val: Dataset
    pool: Dataset
    molecules: list[str]


def split_target(frames_by_molecule: dict[str, list[Configuration]], heldout: list[str]) -> TargetData:
    """Per held-out molecule: frames 0-3 test, 4 validation, the rest the pool."""
    test, val, pool, present = [], [], [], []
    for molecule in heldout:
        frames = frames_by_molecule.get(molecule, [])
        if not frames:
            continue
        present.append(molecule)
        test += frames[:TEST_PER_MOLECULE]
        val += frames[TEST_PER_MOLECULE : TEST_PER_MOLECULE + VAL_PER_MOLECULE]
        pool += frames[TEST_PER_MOLECULE + VAL_PER_MOLECULE :]
    return TargetData(Dataset(test), Dataset(val), Dataset(pool), present)


def split_source(frames: list[Configuration], level: str, seed: int = 0) -> tuple[Dataset, Dataset]:
    """A fixed validation part of one source level: 10%, at least 20, at most 200 frames."""
    n = len(frames)
    n_val = min(200, max(20, n // 10), n // 2)
    order = np.random.default_rng([seed, zlib.crc32(level.encode())]).permutation(n)
    val = set(order[:n_val].tolist())
    return Dataset(f for k, f in enumerate(frames) if k not in val), Dataset(frames[k] for k in sorted(val))


def force_rmsd_to_target(frames: list[Configuration], target_frames: list[Configuration]) -> dict[str, tuple[float, int]]:
    """Force RMSD (meV/A) of each level to the target level on the geometries both label,
    with the number of shared geometries."""
    reference = {geometry_key(c): c.forces for c in target_frames if c.forces is not None}
    sums: dict[str, list[float]] = defaultdict(lambda: [0.0, 0, 0])
    for c in frames:
        ref = reference.get(geometry_key(c))
        if ref is None or c.forces is None:
            continue
        s = sums[c.level]
        s[0] += float(((c.forces - ref) ** 2).sum())
        s[1] += ref.size
        s[2] += 1
    return {level: (1000 * (s[0] / s[1]) ** 0.5, s[2]) for level, s in sums.items()}


def prepare(
    work: Path,
    foundation: Path = FOUNDATION,
    bundled: Path | None = BUNDLED,
    n_heldout: int = N_HELDOUT,
    workers: int = 1,
    max_frames_per_level: int | None = None,
) -> dict[str, Any]:
    """Build the pre-training set and the target split; write WORK/prepared.pt, target.pt and
    prepared.json. max_frames_per_level: a cap for quick runs (the first frames of each level)."""
    work.mkdir(parents=True, exist_ok=True)
    heldout = heldout_molecules(foundation / "manifest.yaml", n_heldout)
    banned = banned_systems(heldout)
    per_level = foundation_files(foundation)
    paths = [p for files in per_level.values() for p in files]
    extra = bundled_files(bundled) if bundled is not None else []
    frames = read_files(paths + extra, workers)
    by_path = dict(zip(paths + extra, frames))
    sources: dict[str, list[Configuration]] = defaultdict(list)
    target_by_molecule: dict[str, list[Configuration]] = defaultdict(list)
    target_all: list[Configuration] = []
    removed: Counter = Counter()
    systems: dict[str, set[str]] = defaultdict(set)
    for path in paths + extra:
        for c in by_path[path]:
            if c.level == TARGET_LEVEL:
                target_all.append(c)
                if c.molecule in heldout:
                    target_by_molecule[c.molecule].append(c)
                continue
            if c.molecule in banned:
                removed[c.level] += 1
                continue
            sources[c.level].append(c)
            systems[c.level].add(c.molecule)
    rmsd = force_rmsd_to_target([c for level in sources.values() for c in level], target_all)
    if max_frames_per_level is not None:
        sources = {level: frames[:max_frames_per_level] for level, frames in sources.items()}
    split = {level: split_source(list(frames), level) for level, frames in sources.items()}
    target = split_target(target_by_molecule, heldout)
    broad = [level for level in split if len(systems[level]) >= MIN_TRANSFER_SYSTEMS and level in rmsd]
    closest = min(broad, key=lambda level: rmsd[level][0]) if broad else max(split, key=lambda level: len(split[level][0]))
    info = {
        "target_level": TARGET_LEVEL,
        "heldout_molecules": heldout,
        "heldout_with_labels": target.molecules,
        "banned_systems": sorted(banned),
        "n_test": len(target.test),
        "n_val": len(target.val),
        "n_pool": len(target.pool),
        "sources": {
            level: {"train": len(t), "val": len(v), "systems": len(systems[level]), "removed_heldout_frames": removed[level]}
            for level, (t, v) in split.items()
        },
        "force_rmsd_to_target_meV_per_A": {level: {"rmsd": r, "shared_geometries": n} for level, (r, n) in rmsd.items()},
        "transfer_source": closest,
        "bundled": bundled is not None,
    }
    with atomic_path(work / "prepared.pt") as tmp:
        torch.save({"sources": {level: (list(t), list(v)) for level, (t, v) in split.items()}, "info": info}, tmp)
    _write_target(work, target)
    with atomic_path(work / "prepared.json") as tmp:
        tmp.write_text(json.dumps(info, indent=2) + "\n")
    return info


def read_target(foundation: Path = FOUNDATION, n_heldout: int = N_HELDOUT) -> TargetData:
    """The target split of the held-out molecules from the target level's chunks labelled by now."""
    heldout = heldout_molecules(foundation / "manifest.yaml", n_heldout)
    stem = TARGET_LEVEL.replace("/", "_")
    paths = [p for p in foundation_files(foundation).get(stem, []) if chunk_order(p)[0] in heldout]
    by_molecule: dict[str, list[Configuration]] = defaultdict(list)
    for frames in read_files(paths):
        for c in frames:
            by_molecule[c.molecule].append(c)
    return split_target(by_molecule, heldout)


def prepare_target(work: Path, foundation: Path = FOUNDATION, n_heldout: int = N_HELDOUT) -> dict[str, Any]:
    """Rewrite only WORK/target.pt (and the target counts of prepared.json) from the target
    level's chunks labelled by now; the pre-training sources stay as prepared."""
    target = read_target(foundation, n_heldout)
    info = json.loads((work / "prepared.json").read_text())
    info.update(heldout_with_labels=target.molecules, n_test=len(target.test), n_val=len(target.val), n_pool=len(target.pool))
    _write_target(work, target)
    with atomic_path(work / "prepared.json") as tmp:
        tmp.write_text(json.dumps(info, indent=2) + "\n")
    return info


def _write_target(work: Path, target: TargetData) -> None:
    with atomic_path(work / "target.pt") as tmp:
        torch.save({"test": list(target.test), "val": list(target.val), "pool": list(target.pool), "molecules": target.molecules}, tmp)


def load_sources(work: Path) -> Prepared:
    payload = torch.load(work / "prepared.pt", weights_only=False)
    sources = {level: (Dataset(t), Dataset(v)) for level, (t, v) in payload["sources"].items()}
    return Prepared(sources, payload["info"])


def load_target(work: Path) -> TargetData:
    payload = torch.load(work / "target.pt", weights_only=False)
    return TargetData(Dataset(payload["test"]), Dataset(payload["val"]), Dataset(payload["pool"]), payload["molecules"])
