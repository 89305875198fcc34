"""Data cards (Markdown) for a campaign's datasets, and merging chunks into one file per level."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict
from pathlib import Path

from metamlip.qm.calculators import program_version, settings
from metamlip.qm.campaign import DatasetStatus, dataset_frames, geometry_path, read_chunk, status
from metamlip.qm.extxyz import write_bytes_atomic, write_frames
from metamlip.qm.library import Cluster, Library, load_library
from metamlip.qm.manifest import Manifest


def _settings_text(settings) -> str:
    parts = []
    for key, value in asdict(settings).items():
        if key != "seed":
            text = "/".join(f"{v:g}" for v in value) if isinstance(value, tuple) else f"{value:g}"
            parts.append(f"{key} {text}")
    return ", ".join(parts)


def _pool_seconds(manifest: Manifest, systems: list[str]) -> float:
    total = 0.0
    for system in systems:
        path = geometry_path(manifest, system)
        if path.exists():
            frames = read_chunk(path)
            total += float(frames[0].info.get("pool_seconds", 0.0)) if frames else 0.0
    return total


def card(manifest: Manifest, row: DatasetStatus, library: Library) -> str:
    """The data card of one dataset (Markdown)."""
    spec = row.spec
    frames = list(dataset_frames(manifest, spec))
    methods = Counter()
    for atoms in frames:
        method = str(atoms.info.get("sampling", "-"))
        temperature = atoms.info.get("temperature")
        methods[method if temperature is None else f"{method} {temperature:g} K"] += 1
    per_system = Counter(str(a.info.get("molecule")) for a in frames)
    n_clusters = sum(isinstance(library.get(s), Cluster) for s in spec.systems)
    sizes = [len(a) for a in frames]
    elements = sorted({s for a in frames for s in a.get_chemical_symbols()})
    stem = spec.level.file_stem
    lines = [
        f"# {spec.level.name} — campaign `{manifest.name}`",
        "",
        f"- **Level**: `{spec.level.name}`, {program_version(spec.level)}"
        + (f", settings {settings(spec.level, spec.density_fit)}"
           if settings(spec.level) else "")
        + "; energies eV, forces eV/Å (frame info `level`, `program`).",
        f"- **Frames**: {row.frames} labelled of {row.frames_target} asked "
        f"({spec.frames} per system), {row.failed} failed (`labels/{stem}/failures*.jsonl`); "
        f"units done {row.units_done}/{row.units_total}.",
        f"- **Systems**: {len(spec.systems)} ({len(spec.systems) - n_clusters} molecules, "
        f"{n_clusters} clusters), {len(per_system)} with labels; anchor (at every level): "
        f"{', '.join(manifest.anchor) or 'none'}.",
        f"- **Atoms per frame**: {min(sizes, default=0)}–{max(sizes, default=0)}; elements "
        f"{', '.join(elements)}.",
        f"- **Sampling** (seed {manifest.seed}): each system's pool of RDKit conformers, "
        f"GFN2-xTB Langevin MD and normal-mode displacements, shuffled; this dataset takes the "
        f"first {spec.frames} frames. Molecules: {_settings_text(manifest.sampling)} "
        f"(temperatures K, timestep fs, friction 1/fs). Clusters: "
        f"{_settings_text(manifest.cluster_sampling)}.",
        "- **Frames by sampling**: "
        + ", ".join(f"{k} {v}" for k, v in sorted(methods.items())) + ".",
        f"- **Wall time**: {row.seconds / 3600:.2f} h for this dataset's units (sum over units "
        f"and shards; a unit that first needs a pool samples it); sampling the pools of these "
        f"systems took {_pool_seconds(manifest, list(spec.systems)) / 3600:.2f} h in all.",
        f"- **Files**: `labels/{stem}/*.extxyz.gz` (one per unit); "
        f"`metamlip-data campaign merge {manifest.path.name} -o DIR` joins them.",
        "",
        "| system | frames |",
        "| --- | --- |",
    ]
    lines += [f"| {s} | {per_system.get(s, 0)} |" for s in spec.systems]
    return "\n".join(lines) + "\n"


def write_cards(manifest: Manifest, out_dir: Path, library: Library | None = None) -> list[Path]:
    """Write ``<level stem>.md`` per dataset into ``out_dir``; returns the paths."""
    library = library or load_library()
    paths = []
    for row in status(manifest):
        path = Path(out_dir) / f"{row.spec.level.file_stem}.md"
        write_bytes_atomic(path, card(manifest, row, library).encode())
        paths.append(path)
    return paths


def merge(manifest: Manifest, out_dir: Path) -> list[Path]:
    """One ``<level stem>.extxyz.gz`` per dataset (finished units, manifest order) plus its
    data card, in ``out_dir``; returns the data files."""
    paths = []
    for spec in manifest.datasets:
        path = Path(out_dir) / f"{spec.level.file_stem}.extxyz.gz"
        write_frames(path, list(dataset_frames(manifest, spec)))
        paths.append(path)
    write_cards(manifest, out_dir)
    return paths
