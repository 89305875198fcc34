"""One optimiser step and one validation pass: shared by the Trainer and by Reptile's inner loop.

Data-parallel: with `comm.world` processes, each takes every world-th configuration of the
batch, the loss is normalised by the whole batch's counts, and gradients are summed, so the
step equals the single-process step on the whole batch (up to floating-point summation order).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from metamlip.data.batching import GraphSet
from metamlip.nn.potential import Potential
from metamlip.train.config import TrainingConfig
from metamlip.train.device import torch_device
from metamlip.train.distributed import SINGLE, Comm, all_reduce_grads
from metamlip.train.loss import energy_force_loss


@dataclass
class StepContext:
    """What turns configuration indices into a loss for one potential."""

    potential: Potential
    settings: TrainingConfig
    comm: Comm = SINGLE

    def __post_init__(self) -> None:
        self.dtype = getattr(torch, self.settings.dtype)
        self.device = torch_device(self.settings.device, "device")
        self.species_index = {z: k for k, z in enumerate(self.potential.species)}
        self.level_index = {name: k for k, name in enumerate(self.potential.levels)}

    def batch(self, data: GraphSet, indices: Sequence[int]):
        return data.batch(indices, self.species_index, self.level_index, self.dtype).to(self.device)


def trainable_parameters(potential: Potential) -> list[torch.nn.Parameter]:
    return [p for p in potential.parameters() if p.requires_grad]


def make_optimizer(name: str, parameters: Sequence[torch.nn.Parameter], lr: float) -> torch.optim.Optimizer:
    if name == "adam":
        return torch.optim.Adam(parameters, lr=lr)
    if name == "sgd":
        return torch.optim.SGD(parameters, lr=lr)
    raise ValueError(f"unknown optimiser {name!r} (adam, sgd)")


def batch_counts(data: GraphSet, indices: Sequence[int]) -> tuple[int, int]:
    """(energies, force components) among configurations `indices` of `data`."""
    configs = [data.configs[k] for k in indices]
    n_energy = sum(1 for c in configs if c.energy is not None and np.isfinite(c.energy))
    return n_energy, 3 * sum(c.n_atoms for c in configs if c.forces is not None)


def gradient_step(
    context: StepContext,
    parameters: Sequence[torch.nn.Parameter],
    optimizer: torch.optim.Optimizer,
    data: GraphSet,
    indices: Sequence[int],
    distributed: bool = True,
    frozen: Sequence[torch.nn.Parameter] = (),
) -> float:
    """One clipped optimiser step on configurations `indices` of `data`; returns the loss.

    distributed=False: this process alone takes the whole batch (Reptile's inner steps, where
    processes work on different tasks). frozen: parameters left out of this step (gradients
    dropped before clipping, so Adam skips them). They still require grad: frozen sensitivity
    centres would switch HIP-NN to the fused op, which cannot give the force loss's second
    derivatives.
    """
    s = context.settings
    comm = context.comm if distributed else SINGLE
    local = list(indices)[comm.rank :: comm.world]
    optimizer.zero_grad(set_to_none=True)
    value = 0.0
    if local:
        batch = context.batch(data, local)
        loss, _ = energy_force_loss(
            context.potential, batch, s.energy_weight, s.force_weight, counts=batch_counts(data, indices)
        )
        loss.backward()
        value = loss.detach().item()
    all_reduce_grads(comm, parameters)
    (value,) = comm.sum_floats(value)
    for p in frozen:
        p.grad = None
    torch.nn.utils.clip_grad_norm_(parameters, s.grad_clip)
    optimizer.step()
    return value


def validation_loss(context: StepContext, data: GraphSet, chunk: int = 64) -> tuple[float, dict[str, float]]:
    """Mean loss over `data` (batches of `chunk`, weighted by size), split across processes."""
    s, comm = context.settings, context.comm
    total, energy, force, count = 0.0, 0.0, 0.0, 0
    for number, start in enumerate(range(0, len(data), chunk)):
        if number % comm.world != comm.rank:
            continue
        indices = range(start, min(start + chunk, len(data)))
        batch = context.batch(data, indices)
        loss, parts = energy_force_loss(context.potential, batch, s.energy_weight, s.force_weight, create_graph=False)
        total += loss.detach().item() * len(indices)
        energy += parts["energy_mse"] * len(indices)
        force += parts.get("force_mse", float("nan")) * len(indices)
        count += len(indices)
    total, energy, force, count = comm.sum_floats(total, energy, force, count)
    count = max(count, 1)
    return total / count, {"energy_mse": energy / count, "force_mse": force / count}
