"""HIP-NN pair sums (hippynn's envsum / sensesum / featsum).

Shapes: P pairs (pair_first i, pair_second j), N atoms, S sensitivities, F features.
The ``*_reference`` functions are plain PyTorch and define the sums; the C++ ops
``torch.ops.metamlip.{envsum,sensesum,featsum}`` (OpenMP on CPU) compute the same, with first
and second derivatives written in C++ with the same three ops (sensesum and featsum are
envsum's derivatives). `envsum` picks one of the two for the model. Every function here can be
compiled with ``torch.jit.script``.
"""

from __future__ import annotations

import torch

import metamlip.ops  # noqa: F401  (registers torch.ops.metamlip before any scripting)


def envsum_reference(
    sense: torch.Tensor, features: torch.Tensor, pair_first: torch.Tensor, pair_second: torch.Tensor
) -> torch.Tensor:
    """env[i, s, f] = sum over pairs p=(i, j) of sense[p, s] * features[j, f].  -> [N, S, F]."""
    n_atoms = features.shape[0]
    pair_env = sense.unsqueeze(2) * features[pair_second].unsqueeze(1)  # [P, S, F]
    env = torch.zeros(
        (n_atoms, sense.shape[1], features.shape[1]), dtype=features.dtype, device=features.device
    )
    return env.index_add(0, pair_first, pair_env)


def sensesum_reference(
    env_grad: torch.Tensor, features: torch.Tensor, pair_first: torch.Tensor, pair_second: torch.Tensor
) -> torch.Tensor:
    """g[p, s] = sum_f env_grad[i_p, s, f] * features[j_p, f].  -> [P, S]."""
    return (env_grad[pair_first] * features[pair_second].unsqueeze(1)).sum(2)


def featsum_reference(
    env_grad: torch.Tensor, sense: torch.Tensor, pair_first: torch.Tensor, pair_second: torch.Tensor
) -> torch.Tensor:
    """h[j, f] = sum over pairs p with second index j of sum_s env_grad[i_p, s, f] * sense[p, s].

    -> [N, F] with N = env_grad.shape[0].
    """
    pair_feat = (env_grad[pair_first] * sense.unsqueeze(2)).sum(1)  # [P, F]
    out = torch.zeros(
        (env_grad.shape[0], env_grad.shape[2]), dtype=env_grad.dtype, device=env_grad.device
    )
    return out.index_add(0, pair_second, pair_feat)


def envsum(
    sense: torch.Tensor,
    features: torch.Tensor,
    pair_first: torch.Tensor,
    pair_second: torch.Tensor,
    implementation: str = "torch",
) -> torch.Tensor:
    """Environment sum [N, S, F]; implementation "torch" (reference) or "cpp" (C++ op)."""
    if implementation == "cpp":
        return torch.ops.metamlip.envsum(sense, features, pair_first, pair_second)
    if implementation == "torch":
        return envsum_reference(sense, features, pair_first, pair_second)
    raise ValueError("envsum: unknown implementation " + implementation + " (known: 'torch', 'cpp')")
