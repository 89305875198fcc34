"""Atomic file writes: write to a temporary file beside the target, then rename over it."""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from pathlib import Path
from typing import Iterator


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path in the target's directory; on success it replaces `path`.

    A crash or exception leaves the previous `path` untouched (the temporary is removed).
    The temporary keeps the target's suffixes so writers that choose a format by suffix work.
    The result gets the permissions a plain `open(path, "w")` would give (umask applied), not
    mkstemp's private 0600.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix="".join(path.suffixes))
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb") as handle:
            os.fsync(handle.fileno())
        os.chmod(tmp_path, 0o666 & ~_umask())
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


_TEMPORARY = re.compile(r"\.(?P<target>.+)\.[A-Za-z0-9_]{8}(?P<suffix>(\.[^.]+)*)")


def is_stale_temporary(name: str) -> bool:
    """Whether `name` is an `atomic_path` temporary (`.TARGET.XXXXXXXX` + TARGET's suffixes)."""
    match = _TEMPORARY.fullmatch(name)
    return bool(match) and "".join(Path(match["target"]).suffixes) == match["suffix"]


def clean_stale_temporaries(directory: str | Path, depth: int = 3) -> list[Path]:
    """Delete the temporaries that killed writers left in `directory` and up to `depth` levels
    of non-hidden folders below (a run's pretrain/, a learning curve's runs/S/N/); returns them.

    Call before work starts in the directory (no writer of this run is active yet).
    """
    directory = Path(directory)
    if not directory.is_dir():
        return []
    removed = []
    for root, folders, names in os.walk(directory):
        below = len(Path(root).relative_to(directory).parts)
        folders[:] = [] if below >= depth else [f for f in folders if not f.startswith(".")]
        for name in names:
            if name.startswith(".") and is_stale_temporary(name):
                path = Path(root) / name
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                    removed.append(path)
    return removed


def _umask() -> int:
    """The process's umask (reading it means setting it, so set it straight back)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask
