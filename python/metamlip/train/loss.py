"""Energy (per atom) and force mean-squared-error loss."""

from __future__ import annotations

import torch

from metamlip.data.batching import Batch
from metamlip.nn.potential import Potential


def residual_energy_target(potential: Potential, batch: Batch) -> torch.Tensor:
    """E_ref - sum_i e_self(level, Z_i) in float64: what the network learns. [M] eV."""
    atom_self = potential.self_energies[batch.level[batch.molecule], batch.species]
    self_sum = torch.zeros(batch.n_configurations, dtype=torch.float64, device=atom_self.device)
    return batch.energy - self_sum.index_add(0, batch.molecule, atom_self)


def loss_counts(batch: Batch) -> tuple[int, int]:
    """(configurations with an energy, force components with a reference) in a batch."""
    n_energy = int(torch.isfinite(batch.energy).sum())
    return n_energy, 3 * int(batch.force_mask.sum())


def energy_force_loss(
    potential: Potential,
    batch: Batch,
    energy_weight: float,
    force_weight: float,
    create_graph: bool = True,
    counts: tuple[int, int] | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """w_E * MSE(E/atom) [(eV/atom)^2] + w_F * MSE(F) [(eV/A)^2]; configurations without an
    energy or atoms without forces are left out of their term.

    counts: the denominators (energies, force components) of the two means. None = this
    batch's own (`loss_counts`); data-parallel training passes those of the whole batch, so
    that the per-process losses add up to the loss of the whole batch.
    """
    n_energy, n_force = counts if counts is not None else loss_counts(batch)
    need_forces = force_weight > 0 and bool(batch.force_mask.any())
    out = potential(batch, compute_forces=need_forces, create_graph=create_graph and need_forces, include_self=False)
    target = residual_energy_target(potential, batch).to(out["energy"].dtype)
    has_energy = torch.isfinite(target)
    per_atom = (out["energy"] - target) / batch.n_atoms.to(target.dtype)
    energy_mse = per_atom[has_energy].square().sum() / max(n_energy, 1) if bool(has_energy.any()) else per_atom.sum() * 0
    loss = energy_weight * energy_mse
    parts = {"energy_mse": energy_mse.item()}
    if need_forces:
        diff = out["forces"][batch.force_mask] - batch.forces[batch.force_mask]
        force_mse = diff.square().sum() / max(n_force, 1)
        loss = loss + force_weight * force_mse
        parts["force_mse"] = force_mse.item()
    return loss, parts
