"""ASE calculator on an exported model (or a checkpoint): energy, forces, stress.

    from metamlip.ase import MetaMLIPCalculator
    atoms.calc = MetaMLIPCalculator("model.pt")
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from ase import Atoms
from ase.calculators.calculator import Calculator, PropertyNotImplementedError, all_changes
from ase.data import chemical_symbols
from ase.stress import full_3x3_to_voigt_6_stress

from metamlip.deploy.device import resolve_device
from metamlip.deploy.load import ModelSource, load_model
from metamlip.deploy.pairs import build_pairs, model_error


class MetaMLIPCalculator(Calculator):
    """energy, free_energy (= energy), energies (per atom) in eV; forces eV/A; stress eV/A^3
    (ASE sign and Voigt order; only for cells periodic in all three directions).

    model: an exported file (`metamlip-export`), a training checkpoint (or ``pretrained:NAME``)
    or a Potential; level and dtype choose what a checkpoint is exported with (for an exported
    file they must match it); device: where the model runs, "cpu" or "cuda" ("cuda:K").
    """

    implemented_properties = ["energy", "free_energy", "energies", "forces", "stress"]

    def __init__(
        self,
        model: ModelSource,
        level: str | None = None,
        dtype: str | None = None,
        device: str = "cpu",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.model, self.metadata = load_model(model, level, dtype, device)
        self.device = resolve_device(device)
        self.cutoff = float(self.metadata["cutoff"])
        self.supported = set(self.metadata["atomic_numbers"])

    def calculate(
        self, atoms: Atoms | None = None, properties: list[str] | None = None, system_changes: list[str] = all_changes
    ) -> None:
        super().calculate(atoms, properties or ["energy"], system_changes)
        atoms = self.atoms
        unknown = sorted(set(atoms.numbers.tolist()) - self.supported)
        if unknown:
            raise ValueError(
                f"MetaMLIPCalculator: elements {', '.join(chemical_symbols[z] for z in unknown)} are not "
                f"supported by this model (supported: {', '.join(self.metadata['elements'])})"
            )
        want_stress = "stress" in (properties or [])
        if want_stress and not atoms.pbc.all():
            raise PropertyNotImplementedError("stress needs a cell periodic in all three directions")
        stress = bool(atoms.pbc.all())
        self.results = self._evaluate(atoms, stress) if len(atoms) else _no_atoms(stress)

    def _evaluate(self, atoms: Atoms, stress: bool) -> dict[str, Any]:
        f64 = {"dtype": torch.float64, "device": self.device}
        positions = torch.tensor(atoms.positions, requires_grad=True, **f64)
        strain = torch.zeros((3, 3), requires_grad=stress, **f64)
        deformation = torch.eye(3, **f64) + strain
        cell: torch.Tensor | None = None
        pbc: torch.Tensor | None = None
        if atoms.pbc.any():
            cell = torch.tensor(atoms.cell.array, **f64) @ deformation
            pbc = torch.tensor(atoms.pbc, dtype=torch.bool, device=self.device)
        strained = positions @ deformation
        edge_index, shifts = build_pairs(strained, self.cutoff, cell, pbc)
        mask = torch.ones(len(atoms), dtype=torch.bool, device=self.device)
        numbers = torch.tensor(atoms.numbers, dtype=torch.int64, device=self.device)
        try:  # the model refuses overlapping atoms, naming them by index
            energies = self.model(strained, numbers, edge_index, shifts, mask)
        except torch.jit.Error as error:
            raise model_error(error) from None
        energy = energies.sum()
        wrt = [positions, strain] if stress else [positions]
        gradients = torch.autograd.grad(energy, wrt)
        results: dict[str, Any] = {
            "energy": energy.item(),
            "free_energy": energy.item(),
            "energies": energies.detach().cpu().numpy(),
            "forces": -gradients[0].cpu().numpy(),
        }
        if stress:
            virial = gradients[1].cpu().numpy()
            results["stress"] = full_3x3_to_voigt_6_stress(0.5 * (virial + virial.T) / atoms.get_volume())
        return results


def _no_atoms(stress: bool) -> dict[str, Any]:
    """Results of an empty structure: zero energy, no forces (and zero stress when periodic)."""
    results: dict[str, Any] = {"energy": 0.0, "free_energy": 0.0, "energies": np.zeros(0), "forces": np.zeros((0, 3))}
    if stress:
        results["stress"] = np.zeros(6)
    return results
