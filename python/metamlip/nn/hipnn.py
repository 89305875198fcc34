"""HIP-NN: Hierarchically Interacting Particle Neural Network (Lubbers, Smith, Barros 2018).

Layer 0 is the one-hot species encoding (hippynn's convention: the first interaction layer
acts on it directly). Each interaction block is one interaction layer followed by
`n_atom_layers - 1` onsite (atom-wise) dense layers. A linear head after layer 0 and after
every block gives per-atom energies; the hierarchical energy is their sum.

Pair p = (pair_first i, pair_second j) carries z_j into the environment sum of atom i (the
receiver). tensor_order l > 0 makes it HIP-NN-TS (nn/tensor_sensitivity.py): the interaction
layers also sum the pairs' unit-vector tensors up to order l and add their norms. Given an
energy-atom mask, the last block keeps only the pairs received by masked-in atoms and computes
its output only for them (an engine's ghost atoms need their environments in the earlier blocks
only).
"""

from __future__ import annotations

from typing import Optional, Tuple

import torch
from torch import nn

from metamlip.nn.pairsums import envsum
from metamlip.nn.sensitivity import InverseGaussianSensitivity
from metamlip.nn.tensor_sensitivity import TENSOR_ORDERS, TensorInvariants, tensor_interaction


class InteractionLayer(nn.Module):
    """z'_i = sum_nu W_nu env_i[nu] + W_self z_i + b, env_i[nu, a] = sum_j s_nu(r_ij) z_j[a].

    tensor_order l > 0: the same weights act on the tensor environment sums, and the norms of
    the resulting vector (l >= 1) and quadrupole (l = 2) features are added (TensorInvariants).
    """

    def __init__(
        self,
        n_in: int,
        n_out: int,
        n_sensitivities: int,
        soft_min: float,
        soft_max: float,
        cutoff: float,
        implementation: str,
        tensor_order: int = 0,
    ) -> None:
        super().__init__()
        self.sensitivity = InverseGaussianSensitivity(n_sensitivities, soft_min, soft_max, cutoff)
        self.interaction_weights = nn.Parameter(torch.empty(n_sensitivities * n_in, n_out))
        nn.init.xavier_normal_(self.interaction_weights)
        self.self_interaction = nn.Linear(n_in, n_out)
        self.implementation = implementation
        self.tensor: Optional[TensorInvariants] = TensorInvariants(tensor_order, n_out) if tensor_order > 0 else None

    def forward(
        self,
        features: torch.Tensor,
        distances: torch.Tensor,
        pair_first: torch.Tensor,
        pair_second: torch.Tensor,
        receivers: Optional[torch.Tensor] = None,
        unit_vectors: Optional[torch.Tensor] = None,
    ) -> torch.Tensor:
        """features [N, n_in], distances [P] -> [N, n_out] (pre-activation).

        receivers [M] (atom indices): output only for these atoms, [M, n_out]; pair_first then
        holds positions in `receivers`, pair_second atom indices. unit_vectors [P, 3] (r_p / |r_p|):
        required when tensor_order > 0.
        """
        sense = self.sensitivity(distances, self.implementation == "cpp")
        self_part = self.self_interaction(features if receivers is None else features[receivers])
        n_out = self_part.shape[0]
        tensor = self.tensor
        if tensor is None:
            env = envsum(sense, features, pair_first, pair_second, self.implementation)
            return env[:n_out].reshape(n_out, self.interaction_weights.shape[0]) @ self.interaction_weights + self_part
        if unit_vectors is None:
            raise ValueError("HIP-NN-TS (tensor_order > 0) needs the pairs' unit vectors")
        basis = tensor.basis(unit_vectors)
        tensor_features = tensor_interaction(
            sense, basis, features, self.interaction_weights, pair_first, pair_second, self.implementation
        )
        return tensor(tensor_features[:n_out]) + self_part


class InteractionBlock(nn.Module):
    """Interaction layer + activation, then onsite dense layers with activation; `head` maps
    the block's output features to per-atom energies."""

    def __init__(
        self,
        n_in: int,
        n_features: int,
        n_sensitivities: int,
        n_atom_layers: int,
        soft_min: float,
        soft_max: float,
        cutoff: float,
        n_heads: int,
        implementation: str,
        tensor_order: int = 0,
    ) -> None:
        super().__init__()
        self.interaction = InteractionLayer(
            n_in, n_features, n_sensitivities, soft_min, soft_max, cutoff, implementation, tensor_order
        )
        self.onsite = nn.ModuleList(nn.Linear(n_features, n_features) for _ in range(n_atom_layers - 1))
        self.activation = nn.Softplus()
        self.head = nn.Linear(n_features, n_heads)

    def forward(
        self,
        features: torch.Tensor,
        distances: torch.Tensor,
        pair_first: torch.Tensor,
        pair_second: torch.Tensor,
        receivers: Optional[torch.Tensor] = None,
        unit_vectors: Optional[torch.Tensor] = None,
    ) -> torch.Tensor:
        """Output features [N, n_features] ([M, n_features] for receivers [M], see InteractionLayer)."""
        z = self.activation(self.interaction(features, distances, pair_first, pair_second, receivers, unit_vectors))
        for layer in self.onsite:
            z = self.activation(layer(z))
        return z


class HIPNN(nn.Module):
    """Per-atom energies from species and pair distances.

    n_heads > 1 gives one energy output per head (multi-head training across levels).
    implementation: pair sums on the C++ ops ("cpp", the default) or the plain-PyTorch
    reference ("torch"); both give the same values and derivatives. tensor_order: 0 (HIP-NN),
    1 or 2 (HIP-NN-TS with vector / vector and quadrupole sensitivities).
    """

    def __init__(
        self,
        n_species: int,
        n_features: int = 64,
        n_sensitivities: int = 20,
        n_interactions: int = 2,
        n_atom_layers: int = 3,
        cutoff: float = 5.0,
        soft_min: float = 0.75,
        soft_max: float | None = None,
        n_heads: int = 1,
        implementation: str = "cpp",
        tensor_order: int = 0,
    ) -> None:
        super().__init__()
        if tensor_order not in TENSOR_ORDERS:
            raise ValueError(f"tensor_order must be one of {TENSOR_ORDERS}, got {tensor_order!r}")
        soft_max = soft_max if soft_max is not None else 0.8 * cutoff
        self.n_species = n_species
        self.tensor_order = tensor_order
        self.cutoff = cutoff
        self.n_interactions = n_interactions
        widths = [n_species] + [n_features] * n_interactions
        self.blocks = nn.ModuleList(
            InteractionBlock(
                widths[k],
                n_features,
                n_sensitivities,
                n_atom_layers,
                soft_min,
                soft_max,
                cutoff,
                n_heads,
                implementation,
                tensor_order,
            )
            for k in range(n_interactions)
        )
        self.input_head = nn.Linear(n_species, n_heads)

    def forward(
        self,
        species: torch.Tensor,
        distances: torch.Tensor,
        pair_first: torch.Tensor,
        pair_second: torch.Tensor,
        energy_atom_mask: Optional[torch.Tensor] = None,
        unit_vectors: Optional[torch.Tensor] = None,
    ) -> torch.Tensor:
        """species [N] (index into the model's species), distances [P] -> energies [N, n_heads].

        Energies are in the model's internal scale (see Potential.energy_scale).
        energy_atom_mask [N] bool: only these atoms' energies are wanted; the last block then
        runs for them alone, and the rows where the mask is False are not energies.
        unit_vectors [P, 3]: the pairs' directions r_p / |r_p| (needed when tensor_order > 0).
        """
        dtype = distances.dtype
        z = nn.functional.one_hot(species, self.n_species).to(dtype)
        energy = self.input_head(z)
        last = len(self.blocks) - 1
        for k, block in enumerate(self.blocks):
            if k == last and energy_atom_mask is not None:
                receivers, keep, kept_first = received_pairs(energy_atom_mask, pair_first)
                kept_vectors: Optional[torch.Tensor] = None
                if unit_vectors is not None:
                    kept_vectors = unit_vectors[keep]
                z = block(z, distances[keep], kept_first, pair_second[keep], receivers, kept_vectors)
                energy = energy.index_add(0, receivers, block.head(z))
            else:
                z = block(z, distances, pair_first, pair_second, None, unit_vectors)
                energy = energy + block.head(z)
        return energy

    def set_implementation(self, implementation: str) -> None:
        """Switch the pair sums between "torch" (reference) and "cpp" (op library)."""
        for block in self.blocks:
            block.interaction.implementation = implementation

    def add_heads(self, n_new: int) -> None:
        """Append `n_new` energy outputs to every head (initialised as copies of head 0)."""
        self.input_head = _widened(self.input_head, n_new)
        for block in self.blocks:
            block.head = _widened(block.head, n_new)

    @property
    def n_heads(self) -> int:
        return self.input_head.out_features

    def head_parameters(self) -> list[nn.Parameter]:
        """The weights and biases of the linear energy heads (the rest is the body)."""
        return [p for head in [self.input_head] + [block.head for block in self.blocks] for p in head.parameters()]


def received_pairs(mask: torch.Tensor, pair_first: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(receivers [M] = atoms where mask [N] is True, keep [P] bool = the pairs they receive,
    and those pairs' pair_first renumbered to positions in receivers). Pair order kept."""
    receivers = mask.nonzero().squeeze(1)
    position = torch.cumsum(mask.to(torch.int64), 0) - 1
    keep = mask[pair_first]
    return receivers, keep, position[pair_first[keep]]


def _widened(head: nn.Linear, n_new: int) -> nn.Linear:
    """A copy of `head` with `n_new` extra outputs, each initialised as a copy of output 0."""
    new = nn.Linear(head.in_features, head.out_features + n_new).to(head.weight)
    with torch.no_grad():
        new.weight[: head.out_features] = head.weight
        new.bias[: head.out_features] = head.bias
        new.weight[head.out_features :] = head.weight[0]
        new.bias[head.out_features :] = head.bias[0]
    return new
