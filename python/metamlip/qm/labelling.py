"""Resumable, chunked, parallel labelling of an extxyz file at one level of theory.

Files for an output ``OUT`` (e.g. ``hf_sto-3g.extxyz.gz``):

- ``OUT``: the product, all labelled frames in input order, rewritten atomically after every
  finished chunk;
- ``OUT.parts/part-NNNNN.extxyz``: one atomically written file per finished chunk, so an
  interruption (even SIGKILL) loses at most the chunks in flight; removed once every frame
  is labelled or failed;
- ``OUT.failures.jsonl``: one JSON line (config_id, molecule, level, reason) per frame that
  could not be labelled; such frames are skipped on later runs (delete a line to retry it).

Frames are matched by ``info['config_id']``: frames already in ``OUT`` or its parts are not
recomputed. With ``workers == 1`` frames are labelled in this process; otherwise chunks go
to spawned worker processes, each limited to ``threads`` threads, which end with the parent
(even when it is killed with SIGKILL). Frames with a NaN position or two atoms closer than
MIN_DISTANCE are recorded as failures without calling the QM program.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import multiprocessing
import os
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ase import Atoms
from tqdm import tqdm

from metamlip.qm import calculators
from metamlip.qm.extxyz import labelled_frame, read_frames, write_frames
from metamlip.qm.levels import Level, parse_level

# Info keys written by labelling; dropped from input frames so relabelled files hold no stale ones.
LABEL_KEYS = ("level", "program", "converged", "scf_cycles", "scf_strategy", "scf_conv_tol",
              "grid_level", "density_fit")
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
PR_SET_PDEATHSIG = 1  # prctl option (linux/prctl.h)
MIN_DISTANCE = 0.5  # Angstrom: closer atom pairs are recorded as failures, never computed

Failure = dict[str, str]


@dataclass
class LabelSummary:
    """Counts of one labelling run (frames) and its wall time (s)."""

    n_input: int
    n_done_before: int
    n_failed_before: int
    n_labelled: int
    n_failed: int
    seconds: float


def parts_dir(out: Path) -> Path:
    """Side directory holding finished chunks of ``out``."""
    return out.with_name(out.name + ".parts")


def failures_path(out: Path) -> Path:
    """JSON-lines file of frames of ``out`` that could not be labelled."""
    return out.with_name(out.name + ".failures.jsonl")


def geometry_problem(atoms: Atoms) -> str | None:
    """Why ``atoms`` cannot be given to a QM program (non-finite position, two atoms closer
    than MIN_DISTANCE Angstrom), or None."""
    positions = np.asarray(atoms.positions, dtype=float)
    bad = np.argwhere(~np.isfinite(positions))
    if len(bad):
        return f"atom {int(bad[0, 0])} has a NaN or infinite position"
    if len(positions) > 1:
        distances = np.linalg.norm(positions[:, None] - positions[None], axis=-1)
        distances[np.diag_indices(len(positions))] = np.inf
        i, j = np.unravel_index(np.argmin(distances), distances.shape)
        if distances[i, j] < MIN_DISTANCE:
            return (f"atoms {min(i, j)} and {max(i, j)} are {distances[i, j]:.3f} Angstrom apart "
                    f"(closer than {MIN_DISTANCE} Angstrom)")
    return None


def label_frame(atoms: Atoms, level: Level, density_fit: bool = False) -> Atoms:
    """A labelled copy of ``atoms`` (energy eV, forces eV/Angstrom, provenance in info);
    ``density_fit``: see ``calculators.compute``.
    Raises calculators.LabelError when no trustworthy label can be computed: a geometry that
    fails ``geometry_problem`` (checked before any QM call), an unconverged SCF, or an error
    of the QM program on this frame."""
    where = f"frame {atoms.info.get('config_id')} at level {level.name}"
    problem = geometry_problem(atoms)
    if problem is not None:
        raise calculators.LabelError(f"invalid geometry: {problem}")
    try:
        label = calculators.compute(atoms, level, density_fit=density_fit)
    except calculators.LabelError:
        raise
    except Exception as err:  # the QM program failed on this frame
        raise calculators.LabelError(f"{where}: {type(err).__name__}: {err}") from err
    info = {k: v for k, v in atoms.info.items() if k not in LABEL_KEYS}
    info.update(level=level.name, program=calculators.program_version(level), converged=True)
    if label.scf_cycles is not None:
        info.update(scf_cycles=label.scf_cycles, scf_strategy=label.scf_strategy)
    info.update(calculators.settings(level, density_fit))
    return labelled_frame(atoms, info, label.energy, label.forces)


def label_chunk(frames: list[Atoms], level_name: str,
                on_frame: Callable[[], None] | None = None,
                density_fit: bool = False) -> tuple[list[Atoms], list[Failure]]:
    """Label frames; return (labelled frames, failures). ``on_frame`` is called after each frame."""
    level = parse_level(level_name)
    labelled, failures = [], []
    for atoms in frames:
        try:
            labelled.append(label_frame(atoms, level, density_fit))
        except calculators.LabelError as err:
            failures.append({"config_id": atoms.info["config_id"],
                             "molecule": str(atoms.info.get("molecule", "")),
                             "level": level.name, "reason": str(err)})
        if on_frame is not None:
            on_frame()
    return labelled, failures


def set_thread_budget(threads: int) -> None:
    """Limit OpenMP/BLAS threads: the environment for libraries loaded later, and now the
    pools of those already loaded (NumPy's and SciPy's OpenBLAS start with one thread per
    core when imported before this call: two labellers on two cores then oversubscribe them,
    3x slower per frame) and PySCF's OpenMP."""
    for name in THREAD_VARIABLES:
        os.environ[name] = str(threads)
    from pyscf import lib
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=threads)
    lib.num_threads(threads)


def _check_ids(frames: list[Atoms], path: Path) -> None:
    ids = []
    for index, atoms in enumerate(frames):
        if "config_id" not in atoms.info:
            raise ValueError(f"{path}: frame {index} has no info['config_id']")
        ids.append(atoms.info["config_id"])
    if len(set(ids)) != len(ids):
        duplicate = next(i for i in ids if ids.count(i) > 1)
        raise ValueError(f"{path}: config_id '{duplicate}' occurs more than once")


def _integrals(auxbasis: str | None) -> str:
    return "exact integrals" if auxbasis is None else f"density fitting ({auxbasis})"


def _load_done(out: Path, level: Level, inputs: dict[str, Atoms],
               auxbasis: str | None) -> dict[str, Atoms]:
    """Frames already labelled in ``out`` and its parts, checked against level, density
    fitting (``auxbasis``, None for exact integrals) and input."""
    sources = ([out] if out.exists() else []) + sorted(parts_dir(out).glob("part-*.extxyz"))
    done = {}
    for path in sources:
        for atoms in read_frames(path):
            cid = atoms.info.get("config_id")
            if atoms.info.get("level") != level.name:
                raise ValueError(f"{path}: frame {cid} has level {atoms.info.get('level')!r}, "
                                 f"not {level.name!r}; use another output file")
            if atoms.info.get("density_fit") != auxbasis:
                raise ValueError(f"{path}: frame {cid} was labelled with "
                                 f"{_integrals(atoms.info.get('density_fit'))}, this run uses "
                                 f"{_integrals(auxbasis)}; use another output file")
            source = inputs.get(cid)
            if source is None or not (np.array_equal(source.numbers, atoms.numbers)
                                      and np.allclose(source.positions, atoms.positions,
                                                      atol=1e-6)):
                raise ValueError(f"{path}: frame {cid} is not a configuration of the input file "
                                 "(missing config_id or other atoms/positions)")
            done[cid] = atoms
    return done


def _load_failed(path: Path) -> set[str]:
    if not path.exists():
        return set()
    with path.open() as fh:
        return {json.loads(line)["config_id"] for line in fh if line.strip()}


def _append_failures(path: Path, failures: list[Failure]) -> None:
    with path.open("a") as fh:
        for failure in failures:
            fh.write(json.dumps(failure) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def _in_order(frames: list[Atoms], done: dict[str, Atoms]) -> list[Atoms]:
    return [done[a.info["config_id"]] for a in frames if a.info["config_id"] in done]


def die_with_parent(parent: int) -> None:
    """End this process when process ``parent`` ends, even by SIGKILL: Linux
    PR_SET_PDEATHSIG (SIGKILL), elsewhere a daemon thread polling the parent id (1 s)."""
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True) \
        if sys.platform.startswith("linux") else None
    if libc is not None and libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0:
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)
        return

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="parent-watchdog").start()


def _init_worker(threads: int, parent: int) -> None:
    die_with_parent(parent)
    set_thread_budget(threads)


def _run_chunks(chunks: list[list[Atoms]], level: Level, workers: int, threads: int,
                bar: tqdm, density_fit: bool) -> Iterator[tuple[list[Atoms], list[Failure]]]:
    """Yield (labelled, failures) per chunk, in completion order."""
    if workers == 1:
        set_thread_budget(threads)
        for chunk in chunks:
            yield label_chunk(chunk, level.name, lambda: bar.update(1), density_fit)
        return
    for name in THREAD_VARIABLES:  # inherited by spawned workers before they import numpy
        os.environ[name] = str(threads)
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_init_worker, initargs=(threads, os.getpid()))
    try:
        futures = {pool.submit(label_chunk, chunk, level.name, None, density_fit): len(chunk)
                   for chunk in chunks}
        for future in as_completed(futures):
            result = future.result()
            bar.update(futures[future])
            yield result
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def label_file(inp: Path, out: Path, level_name: str, workers: int = 1, threads: int = 1,
               chunk_size: int = 10, progress: bool = True,
               density_fit: bool = False) -> LabelSummary:
    """Label every frame of ``inp`` at ``level_name`` into ``out`` (see module docstring);
    ``density_fit``: see ``calculators.compute`` (an output is never mixed: frames already in
    ``out`` must have been labelled the same way)."""
    if workers < 1 or threads < 1 or chunk_size < 1:
        raise ValueError("workers, threads and chunk size must be >= 1")
    level = parse_level(level_name)
    auxbasis = calculators.auxiliary_basis(level) if density_fit else None
    inp, out = Path(inp), Path(out)
    frames = read_frames(inp)
    _check_ids(frames, inp)
    inputs = {atoms.info["config_id"]: atoms for atoms in frames}
    done = _load_done(out, level, inputs, auxbasis)
    failed = _load_failed(failures_path(out))
    n_done_before, n_failed_before = len(done), len(failed & inputs.keys())
    skip = done.keys() | failed
    todo = [a for a in frames if a.info["config_id"] not in skip]
    chunks = [todo[i:i + chunk_size] for i in range(0, len(todo), chunk_size)]
    parts = parts_dir(out)
    numbers = [int(p.stem.split("-")[1]) for p in parts.glob("part-*.extxyz")]
    next_part = max(numbers, default=-1) + 1
    n_labelled = n_failed = 0
    start = time.perf_counter()
    bar = tqdm(total=len(todo), desc=level.name, unit="frame", disable=not progress,
               file=sys.stderr, mininterval=1.0)
    try:
        for labelled, failures in _run_chunks(chunks, level, workers, threads, bar, density_fit):
            if failures:
                _append_failures(failures_path(out), failures)
            if labelled:
                write_frames(parts / f"part-{next_part:05d}.extxyz", labelled)
                next_part += 1
                done.update((a.info["config_id"], a) for a in labelled)
                write_frames(out, _in_order(frames, done))
            n_labelled += len(labelled)
            n_failed += len(failures)
    finally:
        bar.close()
    if done:  # final merge: also covers parts written just before an interruption
        write_frames(out, _in_order(frames, done))
    if parts.exists():
        shutil.rmtree(parts)  # every frame is now in OUT or in the failures file
    return LabelSummary(len(frames), n_done_before, n_failed_before, n_labelled, n_failed,
                        time.perf_counter() - start)
