"""Structures and references shared by the export, OpenMM and ASE tests (no tests here)."""

from __future__ import annotations

import numpy as np
import openmm.app
import torch
from ase import Atoms
from ase.build import molecule

import metamlip.ops  # noqa: F401  (torch.ops.metamlip.build_info)
from metamlip.deploy import build_pairs
from metamlip.nn.potential import Potential
from model_helpers import batch_of, config_of

EV_TO_KJ_PER_MOL = 96.48533212331002
MOLECULES = ("CH3CH2OH", "CH3CH2NH2", "HCOOH", "H2O")
# A GPU, and the op library built with CUDA: the engines' device="cuda" paths can run.
CUDA_READY = torch.cuda.is_available() and "cuda=1" in torch.ops.metamlip.build_info().split(";")


def exported_energy_forces(
    model: torch.jit.ScriptModule, cutoff: float, numbers, positions, cell=None
) -> tuple[float, np.ndarray]:
    """(energy eV, forces [N, 3] eV/A) of an exported model; pairs from metamlip's op."""
    pos = torch.tensor(np.asarray(positions), dtype=torch.float64, requires_grad=True)
    cell_t = None if cell is None else torch.tensor(np.asarray(cell), dtype=torch.float64)
    pbc = None if cell is None else torch.ones(3, dtype=torch.bool)
    edge_index, shifts = build_pairs(pos, cutoff, cell_t, pbc)
    mask = torch.ones(len(numbers), dtype=torch.bool)
    energy = model(pos, torch.as_tensor(np.asarray(numbers)), edge_index, shifts, mask).sum()
    (gradient,) = torch.autograd.grad(energy, pos)
    return energy.item(), -gradient.numpy()


def python_energy_forces(
    potential: Potential, numbers, positions, cell=None, level: str = "test"
) -> tuple[float, np.ndarray]:
    """(energy eV, forces [N, 3] eV/A) of the Python model; periodic in 3D when cell is given."""
    pbc = None if cell is None else np.ones(3, bool)
    out = potential(batch_of([config_of(numbers, positions, cell, pbc, level)], potential))
    return out["energy"][0].item(), out["forces"].detach().numpy()


def ethanol_box() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two ethanol molecules in a small triclinic periodic cell (Angstrom, OpenMM's reduced
    form); one crosses the boundary."""
    a = molecule("CH3CH2OH")
    cell = np.array([[7.5, 0.0, 0.0], [1.2, 7.0, 0.0], [-0.8, 0.9, 7.2]])
    positions = np.concatenate([a.positions + [0.3, 0.2, 0.1], a.positions + [3.9, 3.6, 3.4]])
    return np.concatenate([a.numbers, a.numbers]), positions, cell


def molecular_box(side: float = 9.0, seed: int = 0) -> Atoms:
    """One each of MOLECULES, randomly rotated, in a cubic periodic box (Angstrom)."""
    rng = np.random.default_rng(seed)
    box = Atoms(cell=np.eye(3) * side, pbc=True)
    centres = [[0.25, 0.25, 0.25], [0.75, 0.75, 0.25], [0.75, 0.25, 0.75], [0.25, 0.75, 0.75]]
    for name, centre in zip(MOLECULES, centres):
        part = molecule(name)
        part.rotate(rng.uniform(0, 360), rng.normal(size=3), center="COP")
        part.positions += np.asarray(centre) * side - part.positions.mean(0)
        box += part
    return box


def topology_of(atoms: Atoms) -> openmm.app.Topology:
    """An OpenMM Topology with one residue per connected molecule of `atoms` (box from its cell
    when periodic)."""
    topology = openmm.app.Topology()
    chain = topology.addChain()
    residue = topology.addResidue("MOL", chain)
    for k, number in enumerate(atoms.numbers):
        topology.addAtom(f"A{k}", openmm.app.Element.getByAtomicNumber(int(number)), residue)
    if atoms.pbc.all():
        topology.setPeriodicBoxVectors([openmm.Vec3(*row) * 0.1 for row in atoms.cell.array])
    return topology
