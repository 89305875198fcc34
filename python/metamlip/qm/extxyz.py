"""Reading and atomically writing extxyz files, optionally gzipped (``.gz``).

Writes are atomic (temporary file in the same directory, then ``os.replace``) and
deterministic (gzip header without time stamp or file name), so that identical frames give
identical bytes. Files written here read back with plain ``ase.io.read(path, ":")``.
"""

from __future__ import annotations

import gzip
import io
import os
import tempfile
from pathlib import Path

import ase.io
import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator


def read_frames(path: str | os.PathLike) -> list[Atoms]:
    """All frames of an extxyz file (``.gz`` allowed); ValueError with a one-line message
    naming the file when it is truncated or not extxyz."""
    try:
        return ase.io.read(path, index=":", format="extxyz")
    except FileNotFoundError:
        raise
    except EOFError:
        raise ValueError(f"{path}: truncated gzip file (the compressed data end early)") from None
    except (OSError, ValueError, KeyError, IndexError) as err:  # ASE and gzip parse errors
        raise ValueError(f"{path}: not a readable extxyz file: {err}") from None


def labelled_frame(atoms: Atoms, info: dict, energy: float, forces: np.ndarray) -> Atoms:
    """A fresh frame with ``atoms``' species and positions, the given info (in that key order),
    energy (eV) and forces ((n_atoms, 3), eV/Angstrom) as a SinglePointCalculator."""
    frame = Atoms(atoms.numbers, positions=atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
    frame.info.update(info)
    frame.calc = SinglePointCalculator(frame, energy=float(energy), forces=np.asarray(forces))
    return frame


def write_frames(path: str | os.PathLike, frames: list[Atoms]) -> None:
    """Write frames to ``path`` atomically, gzipped if the name ends with ``.gz``."""
    path = Path(path)
    text = io.StringIO()
    ase.io.write(text, frames, format="extxyz")
    data = text.getvalue().encode()
    if path.suffix == ".gz":
        raw = io.BytesIO()
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
            gz.write(data)
        data = raw.getvalue()
    write_bytes_atomic(path, data)


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file next to ``path``, fsync it, rename it to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)  # mkstemp creates 0600
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
