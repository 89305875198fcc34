"""openmm-ml potential `metamlip` (entry point group ``openmmml.potentials``):

    MLPotential("metamlip", modelPath="model.pt").createSystem(topology)
    MLPotential("metamlip", modelPath="model.pt").createMixedSystem(topology, mm_system, ml_atoms)

modelPath: an exported file (`metamlip-export`), a training checkpoint or ``pretrained:NAME``;
optional keywords backend ("torchforce" | "pythonforce", default: torchforce when openmmtorch
works), level and dtype (what a checkpoint is exported with), device (as in `create_force`:
where a pythonforce runs, "cpu" or "cuda"; a torchforce follows OpenMM's platform).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import openmm
import openmm.app
from openmmml.mlpotential import MLPotentialImpl, MLPotentialImplFactory

from metamlip.openmm.forces import create_force


class MetaMLIPPotentialImplFactory(MLPotentialImplFactory):
    """Creates `MetaMLIPPotentialImpl` for `MLPotential("metamlip", modelPath=...)`."""

    def createImpl(  # noqa: N802 (openmm-ml's method name)
        self,
        name: str,
        modelPath: str | None = None,  # noqa: N803 (openmm-ml's argument convention)
        backend: str | None = None,
        level: str | None = None,
        dtype: str | None = None,
        device: str | None = None,
        **args: Any,
    ) -> MLPotentialImpl:
        if modelPath is None:
            raise ValueError("MLPotential('metamlip') needs modelPath= (an exported model or a checkpoint)")
        if args:
            raise ValueError(f"MLPotential('metamlip'): unknown arguments {', '.join(sorted(args))}")
        return MetaMLIPPotentialImpl(modelPath, backend, level, dtype, device)


class MetaMLIPPotentialImpl(MLPotentialImpl):
    """Adds one metamlip force (see `metamlip.openmm.create_force`) to a System."""

    def __init__(
        self, model_path: str, backend: str | None, level: str | None, dtype: str | None, device: str | None = None
    ) -> None:
        self.model_path = model_path
        self.backend = backend
        self.level = level
        self.dtype = dtype
        self.device = device

    def getMLLongRange(self) -> bool:  # noqa: N802 (openmm-ml's method name)
        """HIP-NN is local (finite cutoff): mechanical embedding keeps MM long-range terms."""
        return False

    def addForces(  # noqa: N802 (openmm-ml's method name)
        self,
        topology: openmm.app.Topology,
        system: openmm.System,
        atoms: Iterable[int] | None,
        forceGroup: int,  # noqa: N803
        **args: Any,
    ) -> None:
        """Add the force on `atoms` (all atoms when None); periodic when the Topology has a box.
        A System with another number of particles than the Topology has atoms is refused."""
        force = create_force(
            self.model_path,
            topology,
            atoms=None if atoms is None else list(atoms),
            periodic=topology.getPeriodicBoxVectors() is not None,
            backend=self.backend,
            level=self.level,
            dtype=self.dtype,
            device=self.device,
            system=system,
        )
        force.setForceGroup(forceGroup)
        system.addForce(force)
