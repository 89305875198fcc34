"""The one loader of metamlip's C++ op library (``torch.ops.metamlip``)."""

from __future__ import annotations

import threading
from pathlib import Path

import torch

_LOCK = threading.Lock()
_LOADED_PATH: Path | None = None

LIBRARY_NAME = "libmetamlip_ops.so"


class OpLibraryError(RuntimeError):
    """The op library is missing or was built for another torch."""


def library_path() -> Path:
    """Path of the installed op library (inside the installed package's ``lib/``)."""
    import metamlip

    for root in metamlip.__path__:
        candidate = Path(root) / "lib" / LIBRARY_NAME
        if candidate.exists():
            return candidate
    searched = ", ".join(str(Path(r) / "lib") for r in metamlip.__path__)
    raise OpLibraryError(
        f"metamlip's op library {LIBRARY_NAME} was not found (searched {searched}). "
        "Rebuild and reinstall the package: `make install` (or "
        "`pip install --no-build-isolation -e .` with torch==2.9.1 already installed)."
    )


def _already_registered() -> bool:
    try:
        torch.ops.metamlip.build_info
    except (AttributeError, RuntimeError):
        return False
    return True


def load_library() -> Path:
    """Load the op library once per process and check it matches the running torch.

    A library that is already registered (for example linked by the LAMMPS plugin, or loaded
    by an earlier call) is not loaded a second time.
    """
    global _LOADED_PATH
    with _LOCK:
        if _LOADED_PATH is not None:
            return _LOADED_PATH
        path = library_path()
        if not _already_registered():
            try:
                torch.ops.load_library(str(path))
            except OSError as error:
                hint = ""
                if "undefined symbol" in str(error):
                    hint = " It was built against a different torch than the running one."
                raise OpLibraryError(
                    f"could not load {path}: {error}.{hint} Rebuild it for torch "
                    f"{torch.__version__}: `make install` (or "
                    "`pip install --no-build-isolation --force-reinstall -e .`)."
                ) from error
        _check_build_info(path)
        _LOADED_PATH = path
        return path


def _check_build_info(path: Path) -> None:
    info = dict(item.split("=", 1) for item in torch.ops.metamlip.build_info().split(";"))
    running_abi = str(int(torch.compiled_with_cxx11_abi()))
    if info["torch"] != torch.__version__ or info["cxx11_abi"] != running_abi:
        raise OpLibraryError(
            f"{path} was built for torch {info['torch']} (C++11 ABI {info['cxx11_abi']}) but "
            f"torch {torch.__version__} (C++11 ABI {running_abi}) is running. Rebuild it: "
            "`make install` (or `pip install --no-build-isolation --force-reinstall -e .`)."
        )
