"""The torch device an engine wrapper (ASE, OpenMM) runs an exported model on.

An exported model is frozen: its weights are constants of the TorchScript graph, which
``Module.to`` does not move. It is put on a device by loading its bytes with ``map_location``.
"""

from __future__ import annotations

import io
from typing import Any

import torch


class DeviceError(ValueError):
    """A device that cannot be used here (unknown name, no CUDA, no GPU, no CUDA op library)."""


def resolve_device(device: str | torch.device, metadata: dict[str, Any] | None = None) -> torch.device:
    """`device` ("cpu", "cuda" or "cuda:K") checked for use here; metadata: an exported model's,
    whose op library (when it needs one) must then have CUDA kernels too."""
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise DeviceError(f"device={device!r}: not a torch device (use 'cpu' or 'cuda')") from error
    if resolved.type == "cpu":
        return resolved
    if resolved.type != "cuda":
        raise DeviceError(f"device={device!r}: metamlip runs on 'cpu' or 'cuda'")
    if not torch.backends.cuda.is_built():
        raise DeviceError(f"device={device!r}: torch {torch.__version__} was built without CUDA; use device='cpu'")
    count = torch.cuda.device_count()
    if count == 0:
        raise DeviceError(f"device={device!r}: no CUDA GPU is visible to torch {torch.__version__}; use device='cpu'")
    if resolved.index is not None and resolved.index >= count:
        raise DeviceError(f"device={device!r}: only {count} CUDA GPU(s) are visible")
    if metadata is not None and metadata["op_library"]["required"]:
        from metamlip.ops import load_library

        load_library()
        info = torch.ops.metamlip.build_info()
        if "cuda=1" not in info.split(";"):
            raise DeviceError(
                f"device={device!r}: metamlip's op library was built without CUDA ({info}); rebuild "
                "metamlip where nvcc and a CUDA build of torch are installed, or use device='cpu'"
            )
    return resolved


def load_on(data: bytes, device: torch.device) -> torch.jit.ScriptModule:
    """A TorchScript module from its bytes, with every tensor (constants included) on `device`."""
    return torch.jit.load(io.BytesIO(data), map_location=device)


def module_bytes(module: torch.jit.ScriptModule) -> bytes:
    buffer = io.BytesIO()
    torch.jit.save(module, buffer)
    return buffer.getvalue()
