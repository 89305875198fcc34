"""HIP-NN-TS: tensor sensitivities (Chigaev, Smith, Anaya, Lubbers, Barros, J. Chem. Phys. 158,
184108 (2023); hippynn's HipnnVec, l = 1, and HipnnQuad, l = 2).

A pair p = (i, j) with unit vector u_p = r_p / |r_p| contributes its sensitivities s_p[nu] times
each Cartesian component of the tensors of u_p up to order l (the *tensor basis*, C components):

    l = 0: 1                                                              C = 1
    l = 1: 1, u_x, u_y, u_z                                               C = 4
    l = 2: ... and the traceless symmetric u u^T - |u|^2 I / 3 by its
           upper components xx, xy, xz, yy, yz (zz = -xx - yy)             C = 9

The environment sum runs over these C * S stacked sensitivities, env[i, c, nu, f]; the
interaction weights W (shared by every component, as in hippynn) give tensor features
t[i, c, o] = sum_{nu, f} env[i, c, nu, f] W[nu f, o] (`tensor_interaction`). The C++ path
computes the same as sum_p basis[p, c] sum_nu s_p[nu] V[j_p, nu, o] with V = z W summed first
(torch.ops.metamlip.tensorsum: (S + C) O operations per pair instead of C S F). Their rotation
invariants are added:

    out[i, o] = t[i, 0, o] + a_o sqrt(|t_vector[i, :, o]|^2 + eps) + b_o sqrt(|t_quad[i, :, :, o]|_F^2 + eps)

with learned scales a (l >= 1) and b (l = 2) and eps = cusp_reg (hippynn's 1e-6: keeps the norm's
gradient finite where a tensor feature vanishes). Shapes: P pairs, N atoms, S sensitivities,
F features in, O features out.
"""

from __future__ import annotations

import torch
from torch import nn

from metamlip.nn.pairsums import envsum_reference

TENSOR_ORDERS = (0, 1, 2)
N_COMPONENTS = (1, 4, 9)  # tensor basis size C for l = 0, 1, 2


def tensor_basis(unit_vectors: torch.Tensor, order: int) -> torch.Tensor:
    """[P, 3] unit vectors -> [P, C]: (1 | u_x, u_y, u_z | Q_xx, Q_xy, Q_xz, Q_yy, Q_yz)."""
    ones = torch.ones_like(unit_vectors[:, :1])
    if order == 0:
        return ones
    if order == 1:
        return torch.cat([ones, unit_vectors], 1)
    x, y, z = unit_vectors[:, 0], unit_vectors[:, 1], unit_vectors[:, 2]
    third = (x * x + y * y + z * z) / 3.0
    quadrupole = torch.stack([x * x - third, x * y, x * z, y * y - third, y * z], 1)
    return torch.cat([ones, unit_vectors, quadrupole], 1)


def tensor_envsum(
    sense: torch.Tensor, basis: torch.Tensor, features: torch.Tensor, pair_first: torch.Tensor, pair_second: torch.Tensor
) -> torch.Tensor:
    """env[i, c, s, f] = sum over pairs p = (i, j) of basis[p, c] * sense[p, s] * features[j, f].

    sense [P, S], basis [P, C], features [N, F] -> [N, C, S, F] (N = features.shape[0]): the
    plain-PyTorch environment sum over the stacked sensitivities basis[p, c] * sense[p, s].
    """
    n_pairs, n_sense = sense.shape
    stacked = (basis.unsqueeze(2) * sense.unsqueeze(1)).reshape(n_pairs, basis.shape[1] * n_sense)
    env = envsum_reference(stacked, features, pair_first, pair_second)
    return env.reshape(features.shape[0], basis.shape[1], n_sense, features.shape[1])


def tensorsum_reference(
    sense: torch.Tensor, basis: torch.Tensor, values: torch.Tensor, pair_first: torch.Tensor, pair_second: torch.Tensor
) -> torch.Tensor:
    """out[i, c, o] = sum over pairs p = (i, j) of basis[p, c] * sum_s sense[p, s] * values[j, s, o].

    sense [P, S], basis [P, C], values [N, S, O] -> [N, C, O]; what torch.ops.metamlip.tensorsum
    computes (its three derivatives, tensorsum_sense / _basis / _values, follow by autograd).
    """
    per_pair = (sense.unsqueeze(2) * values[pair_second]).sum(1)  # [P, O]
    out = torch.zeros(
        (values.shape[0], basis.shape[1], values.shape[2]), dtype=values.dtype, device=values.device
    )
    return out.index_add(0, pair_first, basis.unsqueeze(2) * per_pair.unsqueeze(1))


def tensor_interaction(
    sense: torch.Tensor,
    basis: torch.Tensor,
    features: torch.Tensor,
    weights: torch.Tensor,
    pair_first: torch.Tensor,
    pair_second: torch.Tensor,
    implementation: str = "torch",
) -> torch.Tensor:
    """Tensor features t[i, c, o] = sum_{s, f} env[i, c, s, f] weights[s F + f, o]  -> [N, C, O].

    sense [P, S], basis [P, C], features [N, F], weights [S * F, O]. "torch": the tensor
    environment sum (the definition); "cpp": torch.ops.metamlip.tensorsum of the values
    features @ weights (the same sums in another order).
    """
    n_atoms, n_features = features.shape
    n_sense = sense.shape[1]
    n_out = weights.shape[1]
    if implementation == "cpp":
        per_sense = weights.reshape(n_sense, n_features, n_out).transpose(0, 1).reshape(n_features, n_sense * n_out)
        values = (features @ per_sense).reshape(n_atoms, n_sense, n_out)
        return torch.ops.metamlip.tensorsum(sense, basis, values, pair_first, pair_second)
    if implementation == "torch":
        env = tensor_envsum(sense, basis, features, pair_first, pair_second)
        n_components = basis.shape[1]
        return (env.reshape(n_atoms * n_components, n_sense * n_features) @ weights).reshape(n_atoms, n_components, n_out)
    raise ValueError("tensor_interaction: unknown implementation " + implementation + " (known: 'torch', 'cpp')")


class TensorInvariants(nn.Module):
    """The learned scales of the tensor norms of one interaction layer (l = 1 or 2).

    scales [l, O]: row 0 multiplies the vector norms, row 1 (l = 2) the quadrupole norms;
    initialised N(0, 1) as in hippynn.
    """

    def __init__(self, order: int, n_out: int, cusp_reg: float = 1e-6) -> None:
        super().__init__()
        if order not in (1, 2):
            raise ValueError(f"tensor order must be 1 or 2 here, got {order}")
        self.order = order
        self.n_components = N_COMPONENTS[order]
        self.cusp_reg = float(cusp_reg)
        self.scales = nn.Parameter(torch.randn(order, n_out))

    def basis(self, unit_vectors: torch.Tensor) -> torch.Tensor:
        """[P, 3] -> [P, C] (see tensor_basis)."""
        return tensor_basis(unit_vectors, self.order)

    def forward(self, tensor_features: torch.Tensor) -> torch.Tensor:
        """tensor_features [M, C, O] -> invariant features [M, O] (scalar + scaled norms)."""
        scalar = tensor_features[:, 0]
        vector = tensor_features[:, 1:4]
        out = scalar + torch.sqrt(vector.square().sum(1) + self.cusp_reg) * self.scales[0]
        if self.order == 2:
            q = tensor_features[:, 4:9]
            # |Q|_F^2 of the traceless symmetric Q from its components xx, xy, xz, yy, yz
            frobenius = 2.0 * (q.square().sum(1) + q[:, 0] * q[:, 3])
            out = out + torch.sqrt(frobenius + self.cusp_reg) * self.scales[1]
        return out
