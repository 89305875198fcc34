"""OpenMM integration: `create_force` (TorchForce or PythonForce) and the openmm-ml potential
`MLPotential('metamlip', modelPath=...)` (see `metamlip.openmm.potential`)."""

from metamlip.openmm._openmmtorch import OpenMMTorchUnavailable, openmmtorch_problem
from metamlip.openmm.forces import BACKENDS, EV_TO_KJ_PER_MOL, OpenMMModel, create_force

__all__ = [
    "BACKENDS",
    "EV_TO_KJ_PER_MOL",
    "OpenMMModel",
    "OpenMMTorchUnavailable",
    "create_force",
    "openmmtorch_problem",
]
