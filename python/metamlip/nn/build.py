"""Building a Potential from its architecture and turning it into / from a plain dict."""

from __future__ import annotations

from typing import Any

import torch

from metamlip.nn.hipnn import HIPNN
from metamlip.nn.potential import Potential
from metamlip.nn.repulsion import ZBLRepulsion, repulsion_from_spec, repulsion_spec

ARCHITECTURE_KEYS = (
    "n_features",
    "n_sensitivities",
    "n_interactions",
    "n_atom_layers",
    "cutoff",
    "soft_min",
    "soft_max",
    "tensor_order",
)
# Keys added after the first checkpoints were written, with the value those checkpoints mean.
ARCHITECTURE_DEFAULTS = {"tensor_order": 0}


def build_potential(
    architecture: dict[str, Any],
    species: list[int],
    levels: list[str],
    self_energies: torch.Tensor,
    energy_scale: float = 1.0,
    n_heads: int = 1,
    head_of_level: list[int] | None = None,
    repulsion: ZBLRepulsion | None = None,
) -> Potential:
    """A fresh Potential; architecture holds the ARCHITECTURE_KEYS of HIPNN (those in
    ARCHITECTURE_DEFAULTS may be missing)."""
    values = {**ARCHITECTURE_DEFAULTS, **architecture}
    values = {k: values[k] for k in ARCHITECTURE_KEYS}
    hipnn = HIPNN(len(species), n_heads=n_heads, **values)
    potential = Potential(hipnn, species, levels, self_energies, energy_scale, head_of_level, repulsion)
    potential.architecture = values
    return potential


def potential_to_dict(potential: Potential) -> dict[str, Any]:
    """Everything needed to rebuild the potential (tensors on CPU)."""
    return {
        "architecture": dict(potential.architecture),
        "species": list(potential.species),
        "levels": list(potential.levels),
        "n_heads": potential.hipnn.n_heads,
        "repulsion": repulsion_spec(potential.repulsion),
        "state_dict": {k: v.detach().cpu() for k, v in potential.state_dict().items()},
    }


def potential_from_dict(values: dict[str, Any]) -> Potential:
    """The inverse of potential_to_dict. Dicts written before the core repulsion existed have no
    `repulsion` entry: those models load without one, unchanged."""
    state = values["state_dict"]
    potential = build_potential(
        values["architecture"],
        values["species"],
        values["levels"],
        state["self_energies"],
        float(state["energy_scale"]),
        values["n_heads"],
        state["head_of_level"].tolist(),
        repulsion_from_spec(values["species"], values.get("repulsion")),
    )
    potential.load_state_dict(state)
    dtype = state["hipnn.input_head.weight"].dtype
    return potential.to(dtype)
