"""Data-parallel training with torch.distributed, as started by torchrun.

`torchrun --nproc_per_node N -m metamlip.train CONFIG.yaml` sets RANK/WORLD_SIZE; `setup()`
then joins the process group (gloo for CPU training, nccl for CUDA). Without torchrun every
helper here is a no-op on one process, so the same code runs single-process and distributed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Sequence

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Comm:
    """This process's place among the training processes."""

    rank: int = 0
    world: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world > 1

    def all_reduce_sum(self, tensors: Sequence[torch.Tensor]) -> None:
        """Sum each tensor over processes, in place (one coalesced message)."""
        if not self.active or not tensors:
            return
        flat = torch.cat([t.reshape(-1) for t in tensors])
        dist.all_reduce(flat, op=dist.ReduceOp.SUM)
        offset = 0
        for t in tensors:
            t.copy_(flat[offset : offset + t.numel()].view_as(t))
            offset += t.numel()

    def sum_floats(self, *values: float) -> list[float]:
        """Sum Python floats over processes (float64)."""
        if not self.active:
            return list(values)
        buffer = torch.tensor(values, dtype=torch.float64, device=self._device())
        dist.all_reduce(buffer, op=dist.ReduceOp.SUM)
        return buffer.tolist()

    def broadcast(self, tensors: Sequence[torch.Tensor], src: int = 0) -> None:
        if not self.active:
            return
        for t in tensors:
            dist.broadcast(t, src=src)

    def barrier(self) -> None:
        if self.active:
            dist.barrier()

    def _device(self) -> torch.device:
        return torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")


SINGLE = Comm()


def setup(device: str = "cpu") -> Comm:
    """Join the process group that torchrun describes in the environment (or stay single)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return SINGLE
    if not dist.is_initialized():
        backend = "nccl" if device.startswith("cuda") else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend=backend)
    return Comm(dist.get_rank(), dist.get_world_size())


def shutdown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_grads(comm: Comm, parameters: Sequence[torch.nn.Parameter]) -> None:
    """Sum gradients over processes; a parameter without a gradient counts as zero."""
    if not comm.active:
        return
    for p in parameters:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    comm.all_reduce_sum([p.grad for p in parameters])
