"""Labelling campaigns: run, resume, shard, inspect and merge a manifest's units.

Files under the manifest's ``root``:

- ``geometries/<system>.extxyz.gz``: the system's pool (``metamlip.qm.pool``), sampled on
  first use; the first writer wins (a hard link), so shards never see two versions; parts of
  a pool that failed (e.g. an xTB MD run) are listed in ``geometries/failures[.K-of-N].jsonl``;
- ``labels/<level stem>/<system>.<k>.extxyz.gz``: one finished unit (labelled frames, possibly
  none), written atomically; a unit whose file exists is never recomputed;
- ``labels/<level stem>/failures[.K-of-N].jsonl``: frames that could not be labelled (config_id,
  molecule, level, reason), one file per shard so shards never write the same file;
- ``labels/<level stem>/log[.K-of-N].jsonl``: one line per finished unit (frames, failures,
  seconds, host).

Everything is resumable after SIGKILL (at most the unit in flight is lost); ``status`` and
``merge`` read every shard's files.
"""

from __future__ import annotations

import gzip
import json
import os
import socket
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ase import Atoms
from tqdm import tqdm

from metamlip.qm.extxyz import read_frames, write_frames
from metamlip.qm.labelling import label_chunk, set_thread_budget
from metamlip.qm.levels import parse_level
from metamlip.qm.library import Cluster, Library, load_library
from metamlip.qm.manifest import DatasetSpec, Manifest, Unit
from metamlip.qm.pool import sample_pool


def geometry_path(manifest: Manifest, system: str) -> Path:
    """The pool file of ``system``."""
    return manifest.root / "geometries" / f"{system}.extxyz.gz"


def level_dir(manifest: Manifest, spec: DatasetSpec) -> Path:
    """Directory of one dataset's chunks, failures and logs."""
    return manifest.root / "labels" / spec.level.file_stem


def chunk_path(manifest: Manifest, unit: Unit) -> Path:
    """The file of a finished unit."""
    return manifest.root / "labels" / f"{unit.name}.extxyz.gz"


def _shard_suffix(shard: tuple[int, int]) -> str:
    return "" if shard == (1, 1) else f".{shard[0]}-of-{shard[1]}"


def read_chunk(path: Path) -> list[Atoms]:
    """Frames of a chunk or pool file (an empty file holds no frames)."""
    with gzip.open(path, "rt") as fh:
        empty = not fh.read(1)
    return [] if empty else read_frames(path)


def _write_once(path: Path, frames: list[Atoms]) -> None:
    """Write ``frames`` to ``path`` unless it exists (then keep the existing file)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp.gz")
    os.close(fd)
    try:
        write_frames(tmp, frames)
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        except OSError:  # a file system without hard links: last writer wins
            os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def load_pool(manifest: Manifest, system: str, library: Library,
              shard: tuple[int, int] = (1, 1)) -> list[Atoms]:
    """The pool of ``system``: read from its file, or sampled and written first."""
    path = geometry_path(manifest, system)
    if not path.exists():
        cluster = isinstance(library.get(system), Cluster)
        settings = manifest.cluster_sampling if cluster else manifest.sampling
        frames, problems = sample_pool(system, library, settings)
        if problems:
            _append_jsonl(path.parent / f"failures{_shard_suffix(shard)}.jsonl",
                          [{"system": system, "reason": reason} for reason in problems])
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_once(path, frames)
    return read_chunk(path)


def _append_jsonl(path: Path, records: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as fh:
        for record in records:
            fh.write(json.dumps(record) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def _read_jsonl(paths: list[Path]) -> list[dict]:
    records = []
    for path in paths:
        with path.open() as fh:
            for line in fh:
                if line.strip():
                    try:
                        records.append(json.loads(line))
                    except json.JSONDecodeError:  # a line cut by a kill mid-write
                        continue
    return records


def run_unit(manifest: Manifest, unit: Unit, library: Library,
             shard: tuple[int, int] = (1, 1)) -> tuple[int, int]:
    """Label one unit and write its chunk; returns (labelled, failed) frame counts."""
    start = time.perf_counter()
    frames = load_pool(manifest, unit.system, library, shard)[unit.start:unit.stop]
    for frame in frames:
        frame.info.pop("pool_seconds", None)  # a property of the pool, not of the frame
    labelled, failures = label_chunk(frames, unit.dataset.level.name,
                                     density_fit=unit.dataset.density_fit)
    suffix = _shard_suffix(shard)
    directory = level_dir(manifest, unit.dataset)
    if failures:
        _append_jsonl(directory / f"failures{suffix}.jsonl", failures)
    write_frames(chunk_path(manifest, unit), labelled)
    _append_jsonl(directory / f"log{suffix}.jsonl", [{
        "unit": unit.name, "frames": len(labelled), "failed": len(failures),
        "seconds": round(time.perf_counter() - start, 2), "host": socket.gethostname(),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}])
    return len(labelled), len(failures)


def run(manifest: Manifest, shard: tuple[int, int] = (1, 1), threads: int = 1,
        progress: bool = True, library: Library | None = None,
        levels: list[str] | None = None) -> tuple[int, int, int]:
    """Run this shard's unfinished units in manifest order, only those of ``levels`` if given
    (the shard's share does not depend on it); returns (units run, frames labelled, frames
    failed)."""
    library = library or load_library()
    wanted = None
    if levels:
        wanted = {parse_level(name).name for name in levels}
        unknown = wanted - {spec.level.name for spec in manifest.datasets}
        if unknown:
            raise ValueError(f"{manifest.path}: no dataset at level(s) "
                             f"{', '.join(sorted(unknown))}")
    set_thread_budget(threads)
    todo = [u for u in manifest.shard_units(*shard) if not chunk_path(manifest, u).exists()
            and (wanted is None or u.dataset.level.name in wanted)]
    n_labelled = n_failed = 0
    bar = tqdm(todo, desc=f"{manifest.name} shard {shard[0]}/{shard[1]}", unit="unit",
               disable=not progress, file=sys.stderr, mininterval=1.0)
    for unit in bar:
        bar.set_postfix_str(unit.name, refresh=False)
        labelled, failed = run_unit(manifest, unit, library, shard)
        n_labelled += labelled
        n_failed += failed
    return len(todo), n_labelled, n_failed


def count_frames(path: Path) -> int:
    """Number of frames of an extxyz(.gz) file, from its atom-count lines."""
    n = 0
    with gzip.open(path, "rt") if path.suffix == ".gz" else path.open() as fh:
        while line := fh.readline():
            if not line.strip():
                continue
            n += 1
            for _ in range(int(line) + 1):
                fh.readline()
    return n


@dataclass
class DatasetStatus:
    """Progress of one dataset: units and frames done of the target, failures, wall time (s)."""

    spec: DatasetSpec
    units_done: int = 0
    units_total: int = 0
    frames: int = 0
    failed: int = 0
    seconds: float = 0.0
    systems_done: set[str] = field(default_factory=set)

    @property
    def frames_target(self) -> int:
        """Frames the manifest asks for."""
        return self.spec.frames * len(self.spec.systems)


def status(manifest: Manifest) -> list[DatasetStatus]:
    """Progress of every dataset over all shards."""
    out = []
    for spec in manifest.datasets:
        st = DatasetStatus(spec)
        directory = level_dir(manifest, spec)
        for unit in (u for u in manifest.units() if u.dataset is spec):
            st.units_total += 1
            path = chunk_path(manifest, unit)
            if path.exists():
                st.units_done += 1
                n = count_frames(path)
                st.frames += n
                if n:
                    st.systems_done.add(unit.system)
        if directory.exists():
            failures = _read_jsonl(sorted(directory.glob("failures*.jsonl")))
            st.failed = len({f["config_id"] for f in failures})
            logs = _read_jsonl(sorted(directory.glob("log*.jsonl")))
            st.seconds = sum(r["seconds"] for r in logs)
        out.append(st)
    return out


def format_status(manifest: Manifest, rows: list[DatasetStatus]) -> str:
    """A text table of ``status``."""
    lines = [f"campaign {manifest.name}: {manifest.path}",
             f"{'level':<16} {'systems':>7} {'units':>11} {'frames':>15} {'failed':>6} "
             f"{'CPU h':>7}"]
    for r in rows:
        lines.append(f"{r.spec.level.name:<16} {len(r.spec.systems):>7} "
                     f"{r.units_done:>5}/{r.units_total:<5} {r.frames:>7}/{r.frames_target:<7} "
                     f"{r.failed:>6} {r.seconds / 3600:>7.2f}")
    return "\n".join(lines)


def dataset_frames(manifest: Manifest, spec: DatasetSpec) -> Iterator[Atoms]:
    """Labelled frames of a dataset, in unit order (finished units only)."""
    for unit in manifest.units():
        if unit.dataset is spec and chunk_path(manifest, unit).exists():
            yield from read_chunk(chunk_path(manifest, unit))
