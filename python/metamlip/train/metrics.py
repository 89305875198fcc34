"""Predictions and error metrics: energy in meV/atom, forces in meV/Angstrom, per level."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from metamlip.data.batching import GraphSet
from metamlip.nn.potential import Potential


@dataclass
class Predictions:
    """Per configuration: level, molecule, n_atoms, reference/predicted energy (eV); forces concatenated."""

    levels: list[str]
    n_atoms: np.ndarray
    energy_ref: np.ndarray
    energy_pred: np.ndarray
    force_ref: np.ndarray  # [sum n_atoms with forces, 3]
    force_pred: np.ndarray
    force_levels: np.ndarray  # level of each force row's configuration
    molecules: list[str] = field(default_factory=list)  # molecule name (or element counts) per configuration


def predict(
    potential: Potential,
    data: GraphSet,
    batch_size: int = 64,
    level: str | None = None,
    include_self: bool = True,
) -> Predictions:
    """Evaluate every configuration (as its own level, or as `level` if given).

    include_self=False leaves the self energies out of the predicted energies (the network's
    part alone).
    """
    species_index = {z: k for k, z in enumerate(potential.species)}
    first = next(potential.parameters())
    dtype, device = first.dtype, first.device
    level_index = {name: k for k, name in enumerate(potential.levels)}
    if level is not None:
        level_index = {c.level: potential.level_index(level) for c in data.configs}
    rows: dict[str, list] = {k: [] for k in ("e_ref", "e_pred", "f_ref", "f_pred", "f_level")}
    for start in range(0, len(data), batch_size):
        indices = range(start, min(start + batch_size, len(data)))
        batch = data.batch(indices, species_index, level_index, dtype)
        out = potential(batch.to(device), compute_forces=True, include_self=include_self)
        rows["e_ref"].append(batch.energy.numpy())
        rows["e_pred"].append(out["energy"].detach().double().cpu().numpy())
        mask = batch.force_mask.numpy()
        rows["f_ref"].append(batch.forces.double().numpy()[mask])
        rows["f_pred"].append(out["forces"].detach().double().cpu().numpy()[mask])
        atom_levels = np.repeat([data.configs[k].level for k in indices], batch.n_atoms.numpy())
        rows["f_level"].append(atom_levels[mask])
    return Predictions(
        levels=[c.level for c in data.configs],
        n_atoms=np.array([c.n_atoms for c in data.configs]),
        energy_ref=np.concatenate(rows["e_ref"]),
        energy_pred=np.concatenate(rows["e_pred"]),
        force_ref=np.concatenate(rows["f_ref"]),
        force_pred=np.concatenate(rows["f_pred"]),
        force_levels=np.concatenate(rows["f_level"]),
        molecules=[c.molecule or _composition(c.numbers) for c in data.configs],
    )


def _composition(numbers: np.ndarray) -> str:
    """A name for a configuration without one: its element counts, e.g. "1:6,6:2,8:1"."""
    z, counts = np.unique(numbers, return_counts=True)
    return ",".join(f"{int(a)}:{int(n)}" for a, n in zip(z, counts))


def _errors(diff: np.ndarray) -> tuple[float, float]:
    if diff.size == 0:
        return float("nan"), float("nan")
    return float(np.sqrt(np.mean(diff**2)) * 1000), float(np.mean(np.abs(diff)) * 1000)


def error_metrics(pred: Predictions) -> dict[str, dict[str, float]]:
    """{level: {energy_rmse, energy_mae (meV/atom), force_rmse, force_mae (meV/A), n}}, plus "all"."""
    levels = np.array(pred.levels)
    result = {}
    for name in list(dict.fromkeys(pred.levels)) + ["all"]:
        sel = np.ones(len(levels), bool) if name == "all" else levels == name
        fsel = np.ones(len(pred.force_levels), bool) if name == "all" else pred.force_levels == name
        e_diff = (pred.energy_pred[sel] - pred.energy_ref[sel]) / pred.n_atoms[sel]
        f_diff = pred.force_pred[fsel] - pred.force_ref[fsel]
        e_rmse, e_mae = _errors(e_diff)
        f_rmse, f_mae = _errors(f_diff)
        result[name] = {
            "n_configurations": int(sel.sum()),
            "energy_rmse_meV_per_atom": e_rmse,
            "energy_mae_meV_per_atom": e_mae,
            "force_rmse_meV_per_A": f_rmse,
            "force_mae_meV_per_A": f_mae,
        }
    return result

