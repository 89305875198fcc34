"""OpenMM forces from an exported metamlip model: openmmtorch.TorchForce or openmm.PythonForce.

Both backends evaluate the same TorchScript module (`OpenMMModel`): positions in nm (and box
vectors in nm when periodic) -> neighbour list with metamlip's op -> exported model -> energy
in kJ/mol; forces are -dE/dx by autograd.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Sequence
from typing import Any, List, Optional

import numpy as np
import openmm
import openmm.app
import torch
from ase.data import chemical_symbols
from torch import nn

from metamlip.deploy.device import DeviceError, load_on, module_bytes, resolve_device
from metamlip.deploy.load import ModelSource, load_model
from metamlip.deploy.pairs import build_pairs, check_pairs, model_error
from metamlip.openmm._openmmtorch import import_openmmtorch, openmmtorch_problem

# 1 eV in kJ/mol (exact SI values of e and N_A); 1 nm = 10 Angstrom.
EV_TO_KJ_PER_MOL = 1.602176634e-19 * 6.02214076e23 / 1000.0
ANGSTROM_PER_NM = 10.0
BACKENDS = ("torchforce", "pythonforce")

log = logging.getLogger(__name__)
_CPU = torch.device("cpu")


class OpenMMModel(nn.Module):
    """Energy (kJ/mol, float64 scalar) of the ML atoms from OpenMM's positions [n_inputs, 3]
    (nm) and, when periodic, box vectors [3, 3] (nm, rows), on the positions' device.

    model: an exported model (engine interface) on the CPU; model_cuda: the same model loaded
    onto GPU cuda_index (None: CUDA positions are refused). The exported model is frozen, so Module.to
    cannot move its weights: a TorchForce on OpenMM's CUDA platform (openmmtorch passes CUDA
    tensors) runs model_cuda. atomic_numbers: [n_ml] of the ML atoms; atoms: their particle
    indices, or None when every particle passed in is an ML atom; n_inputs: the number of
    particles passed in; particle_ids: [n_ml] the particle index of each ML atom, named when two
    atoms overlap (None: same as atoms, or 0..n_ml-1).
    """

    def __init__(
        self,
        model: torch.jit.ScriptModule,
        atomic_numbers: Sequence[int],
        atoms: Optional[Sequence[int]],
        periodic: bool,
        cutoff: float,
        n_inputs: int,
        model_cuda: Optional[torch.jit.ScriptModule] = None,
        cuda_index: int = 0,
        particle_ids: Optional[Sequence[int]] = None,
    ) -> None:
        super().__init__()
        self.model = model
        self.has_cuda = model_cuda is not None
        # (a module attribute cannot be None in TorchScript: without a GPU copy the CPU model
        # stands in, and has_cuda refuses CUDA positions)
        self.model_cuda = model_cuda if model_cuda is not None else model
        self.cuda_index = int(cuda_index)
        self.periodic = periodic
        self.cutoff = float(cutoff)
        self.subset = atoms is not None
        self.n_inputs = int(n_inputs)
        self.angstrom_per_nm = ANGSTROM_PER_NM
        self.kj_per_mol_per_ev = EV_TO_KJ_PER_MOL
        self.register_buffer("atomic_numbers", torch.tensor(list(atomic_numbers), dtype=torch.int64))
        self.register_buffer("atoms", torch.tensor(list(atoms) if atoms is not None else [], dtype=torch.int64))
        ids = particle_ids if particle_ids is not None else (atoms if atoms is not None else range(len(atomic_numbers)))
        self.register_buffer("particle_ids", torch.tensor(list(ids), dtype=torch.int64))
        self.register_buffer("energy_mask", torch.ones(len(atomic_numbers), dtype=torch.bool))
        self.register_buffer("pbc", torch.full((3,), periodic, dtype=torch.bool))

    def forward(self, positions: torch.Tensor, boxvectors: Optional[torch.Tensor] = None) -> torch.Tensor:
        if positions.shape[0] != self.n_inputs:
            raise RuntimeError(
                "metamlip: OpenMM passed " + str(positions.shape[0]) + " particles but the force was created "
                "for " + str(self.n_inputs) + " (the Topology or atomic numbers given to create_force must "
                "describe the System the force is added to)"
            )
        device = positions.device
        if positions.is_cuda:
            if not self.has_cuda:
                raise RuntimeError(
                    "metamlip: this force has no GPU copy of the model (create_force ran with device='cpu', "
                    "or where torch saw no CUDA GPU); create it with device='cuda' to run on OpenMM's CUDA platform"
                )
            device = torch.device("cuda", self.cuda_index)
            if boxvectors is not None:
                boxvectors = boxvectors.to(device)
        positions = positions.to(device)
        if self.subset:
            positions = positions.index_select(0, self.atoms.to(device))
        positions = positions * self.angstrom_per_nm
        cell: Optional[torch.Tensor] = None
        pbc: Optional[torch.Tensor] = None
        if self.periodic:
            if boxvectors is None:
                raise RuntimeError("metamlip: a periodic OpenMMModel needs box vectors")
            cell = boxvectors.to(positions.dtype) * self.angstrom_per_nm
            pbc = self.pbc.to(device)
        edge_index, shifts = build_pairs(positions, self.cutoff, cell, pbc)
        check_pairs(positions, edge_index, shifts, self.particle_ids.to(device))
        numbers = self.atomic_numbers.to(device)
        mask = self.energy_mask.to(device)
        if positions.is_cuda:
            energies = self.model_cuda(positions, numbers, edge_index, shifts, mask)
        else:
            energies = self.model(positions, numbers, edge_index, shifts, mask)
        return energies.sum() * self.kj_per_mol_per_ev


class PythonForceComputation:
    """The callback of an openmm.PythonForce: State -> (energy kJ/mol, forces kJ/mol/nm), the
    model evaluated on `device`.

    Picklable (the module travels as TorchScript bytes), so Systems holding it can be copied
    and serialized.
    """

    def __init__(self, module: torch.jit.ScriptModule, periodic: bool, device: torch.device = _CPU) -> None:
        self.module = module
        self.periodic = periodic
        self.device = device

    def __call__(self, state: openmm.State) -> tuple[float, np.ndarray]:
        positions = _to_tensor(state.getPositions(asNumpy=True), self.device).requires_grad_(True)
        box: Optional[torch.Tensor] = None
        if self.periodic:
            box = _to_tensor(state.getPeriodicBoxVectors(asNumpy=True), self.device)
        try:
            energy = self.module(positions, box)
        except torch.jit.Error as error:
            raise model_error(error) from None
        (gradient,) = torch.autograd.grad(energy, positions)
        return float(energy.detach()), -gradient.cpu().numpy()

    def __reduce__(self) -> tuple[Any, ...]:
        return (_restore_computation, (module_bytes(self.module), self.periodic, str(self.device)))


def _to_tensor(quantity: Any, device: torch.device) -> torch.Tensor:
    """An OpenMM array quantity (nm) as a float64 tensor on `device`."""
    return torch.from_numpy(np.asarray(quantity._value, dtype=np.float64)).to(device)


def _restore_computation(data: bytes, periodic: bool, device: str = "cpu") -> PythonForceComputation:
    import metamlip.ops  # noqa: F401  (registers torch.ops.metamlip before loading)

    return PythonForceComputation(torch.jit.load(io.BytesIO(data)), periodic, torch.device(device))


def _atomic_numbers(elements: openmm.app.Topology | Sequence[int]) -> list[int]:
    if isinstance(elements, openmm.app.Topology):
        numbers = []
        for atom in elements.atoms():
            if atom.element is None:
                raise ValueError(f"atom {atom.index} ({atom.name}) has no element: it cannot be modelled by metamlip")
            numbers.append(atom.element.atomic_number)
        return numbers
    return [int(z) for z in elements]


def choose_backend(backend: str | None) -> str:
    """The backend to use: the one asked for, or torchforce when openmmtorch works here (else
    pythonforce, with a one-line notice)."""
    if backend is not None:
        if backend not in BACKENDS:
            raise ValueError(f"unknown backend {backend!r} (known: {', '.join(BACKENDS)})")
        return backend
    problem = openmmtorch_problem()
    if problem is None:
        return "torchforce"
    log.warning("metamlip: using openmm.PythonForce because %s", problem)
    return "pythonforce"


def create_force(
    model: ModelSource,
    elements: openmm.app.Topology | Sequence[int],
    atoms: Sequence[int] | None = None,
    periodic: bool | None = None,
    backend: str | None = None,
    level: str | None = None,
    dtype: str | None = None,
    device: str | None = None,
    system: openmm.System | None = None,
) -> openmm.Force:
    """An OpenMM Force computing the metamlip energy of `atoms` (all particles when None).

    model: an exported file (`metamlip-export`), a training checkpoint (or ``pretrained:NAME``)
    or a Potential (level/dtype choose what a checkpoint is exported with); elements: the
    System's Topology or the atomic number of every particle; periodic: use the box vectors
    (default: whether the Topology has them); backend: "torchforce" (openmmtorch) or
    "pythonforce"; None picks torchforce when openmmtorch works with the running torch.
    device: with pythonforce, where the model runs ("cpu" default, "cuda", "cuda:K"); with
    torchforce, OpenMM's platform decides (CUDA platform: the model runs on the GPU on
    openmmtorch's CUDA tensors; CPU and Reference: on the CPU): "cuda" requires a GPU copy of
    the model (made by default when torch sees a GPU), "cpu" omits it. system: the System the
    force will be added to, checked to have one particle per atom of `elements`.
    """
    numbers = _atomic_numbers(elements)
    if system is not None and system.getNumParticles() != len(numbers):
        what = "the Topology" if isinstance(elements, openmm.app.Topology) else "elements"
        raise ValueError(
            f"the System has {system.getNumParticles()} particles but {what} has {len(numbers)} atoms: "
            "give the Topology (or atomic numbers) the System was created from"
        )
    if periodic is None:
        periodic = isinstance(elements, openmm.app.Topology) and elements.getPeriodicBoxVectors() is not None
    selected = list(range(len(numbers))) if atoms is None else [int(a) for a in atoms]
    if len(set(selected)) != len(selected) or any(not 0 <= a < len(numbers) for a in selected):
        raise ValueError(f"atoms must be distinct particle indices in [0, {len(numbers)})")
    scripted, metadata = load_model(model, level, dtype)
    supported = set(metadata["atomic_numbers"])
    for a in selected:
        if numbers[a] not in supported:
            raise ValueError(
                f"particle {a} is element {chemical_symbols[numbers[a]]}, which the model does not "
                f"support (supported: {', '.join(metadata['elements'])})"
            )
    backend = choose_backend(backend)
    ml_numbers = [numbers[a] for a in selected]
    if backend == "torchforce":
        openmmtorch = import_openmmtorch()
        gpu = _torchforce_gpu(device, metadata)
        model_cuda = None if gpu is None else load_on(module_bytes(scripted), gpu)
        subset: List[int] | None = None if atoms is None else selected
        module = torch.jit.script(
            OpenMMModel(scripted, ml_numbers, subset, periodic, metadata["cutoff"], len(numbers), model_cuda, _index(gpu))
        )
        force = openmmtorch.TorchForce(module)
        force.setUsesPeriodicBoundaryConditions(periodic)
    else:
        run_on = resolve_device(device or "cpu", metadata)
        model_cuda = None if run_on.type == "cpu" else load_on(module_bytes(scripted), run_on)
        # PythonForce hands the computation only the selected particles.
        module = torch.jit.script(
            OpenMMModel(
                scripted, ml_numbers, None, periodic, metadata["cutoff"], len(selected), model_cuda, _index(run_on), selected
            )
        ).to(run_on)
        force = openmm.PythonForce(PythonForceComputation(module, periodic, run_on))
        force.setUsesPeriodicBoundaryConditions(periodic)
        if atoms is not None:
            force.setParticles(selected)
    force.setName(f"metamlip ({metadata['level']})")
    return force


def _torchforce_gpu(device: str | None, metadata: dict[str, Any]) -> torch.device | None:
    """The GPU to give a TorchForce's model a copy on: the one asked for, by default the current
    one when torch sees a GPU and the op library has CUDA; None for none."""
    if device is None:
        try:
            return resolve_device("cuda", metadata)
        except DeviceError:
            return None
    resolved = resolve_device(device, metadata)
    return resolved if resolved.type == "cuda" else None


def _index(device: torch.device | None) -> int:
    if device is None or device.type != "cuda":
        return 0
    return device.index if device.index is not None else torch.cuda.current_device()
