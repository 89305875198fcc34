"""The one place that imports openmmtorch and checks that it works with the running torch.

openmmtorch's library needs libnvrtc.so.12, which the pip package nvidia-cuda-nvrtc-cu12
(a dependency of torch) installs outside the loader's search path. It is preloaded here; when
openmm was imported before that, its failed TorchForce plugins are loaded again.
"""

from __future__ import annotations

import ctypes
import functools
import importlib.metadata
import importlib.util
import logging
import re
from pathlib import Path
from types import ModuleType

import openmm
import torch
from torch import nn

NVRTC = "libnvrtc.so.12"


class OpenMMTorchUnavailable(RuntimeError):
    """openmmtorch is missing or cannot evaluate a TorchForce with the running torch."""


def _preload_nvrtc() -> None:
    spec = importlib.util.find_spec("nvidia.cuda_nvrtc")
    for root in (spec.submodule_search_locations or []) if spec is not None else []:
        path = Path(root) / "lib" / NVRTC
        if path.exists():
            ctypes.CDLL(str(path), mode=ctypes.RTLD_GLOBAL)
            return


def _reload_torch_plugins() -> None:
    """Load the TorchForce plugins that failed at `import openmm` for want of libnvrtc."""
    for failure in openmm.Platform.getPluginLoadFailures():
        match = re.match(r"Error loading library (\S*libOpenMMTorch\w*\.so): .*" + re.escape(NVRTC), failure)
        if match:
            openmm.Platform.loadPluginLibrary(match.group(1))


class _DropSimtkNotice(logging.Filter):
    """openmmtorch imports the deprecated `simtk.openmm`, which logs a warning on the root logger."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "simtk.openmm" not in record.getMessage()


def _import() -> ModuleType:
    _preload_nvrtc()
    _reload_torch_plugins()
    notice_filter = _DropSimtkNotice()
    root = logging.getLogger()
    root.addFilter(notice_filter)
    try:
        import openmmtorch
    finally:
        root.removeFilter(notice_filter)
    return openmmtorch


def _version() -> str:
    try:
        return importlib.metadata.version("openmmtorch")
    except importlib.metadata.PackageNotFoundError:
        return "(version unknown)"


class _Probe(nn.Module):
    def forward(self, positions: torch.Tensor) -> torch.Tensor:
        return positions.square().sum()


@functools.cache
def _checked_openmmtorch() -> ModuleType | str:
    """openmmtorch, or the reason it cannot be used (checked once per process by evaluating a
    small TorchForce on the Reference platform)."""
    try:
        openmmtorch = _import()
    except ImportError as error:
        return f"openmmtorch cannot be imported ({error})"
    system = openmm.System()
    system.addParticle(1.0)
    system.addForce(openmmtorch.TorchForce(torch.jit.script(_Probe())))
    try:
        context = openmm.Context(
            system, openmm.VerletIntegrator(0.001), openmm.Platform.getPlatformByName("Reference")
        )
        context.setPositions([openmm.Vec3(0.1, 0.2, 0.3)])
        state = context.getState(getEnergy=True, getForces=True)
    except openmm.OpenMMException as error:
        return f"openmmtorch {_version()} does not work with torch {torch.__version__} ({error})"
    energy = state.getPotentialEnergy()._value
    force = state.getForces(asNumpy=True)._value[0]
    if abs(energy - 0.14) > 1e-6 or abs(force[2] + 0.6) > 1e-6:
        return f"openmmtorch gives wrong results with torch {torch.__version__} (energy {energy}, expected 0.14)"
    return openmmtorch


def openmmtorch_problem() -> str | None:
    """None when TorchForce works here, else why not."""
    result = _checked_openmmtorch()
    return result if isinstance(result, str) else None


def import_openmmtorch() -> ModuleType:
    """The working openmmtorch module; OpenMMTorchUnavailable says why when it does not work."""
    result = _checked_openmmtorch()
    if isinstance(result, str):
        raise OpenMMTorchUnavailable(result)
    return result
