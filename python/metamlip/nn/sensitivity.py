"""HIP-NN sensitivity functions: Gaussians in inverse distance times a smooth cutoff."""

from __future__ import annotations

import math

import torch
from torch import nn

import metamlip.ops  # noqa: F401  (registers torch.ops.metamlip before any scripting)


def cosine_cutoff(distances: torch.Tensor, cutoff: float) -> torch.Tensor:
    """cos^2(pi r / 2 r_c) for r < r_c, else 0: value and slope vanish at r_c. [P] -> [P]."""
    inside = distances < cutoff
    value = torch.cos((0.5 * math.pi / cutoff) * distances).square()
    return torch.where(inside, value, torch.zeros_like(value))


class InverseGaussianSensitivity(nn.Module):
    """s_nu(r) = exp(-(1/r - mu_nu)^2 / (2 sigma_nu^2)) * cutoff(r), nu = 1..n_sensitivities.

    Centres mu (1/Angstrom) are spaced evenly in 1/r between 1/soft_max and 1/soft_min and are
    learned with the widths. Below soft_min the Gaussians decay (1/r moves past every centre):
    this is HIP-NN's soft inner cutoff. Above `cutoff` everything is exactly zero.
    """

    def __init__(self, n_sensitivities: int, soft_min: float, soft_max: float, cutoff: float) -> None:
        super().__init__()
        if not 0 < soft_min < soft_max <= cutoff:
            raise ValueError(
                f"sensitivity cutoffs must satisfy 0 < soft_min < soft_max <= cutoff, got "
                f"{soft_min}, {soft_max}, {cutoff}"
            )
        self.cutoff = cutoff
        centres = torch.linspace(1.0 / soft_max, 1.0 / soft_min, n_sensitivities)
        spacing = (1.0 / soft_min - 1.0 / soft_max) / max(n_sensitivities - 1, 1)
        self.mu = nn.Parameter(centres)
        self.sigma = nn.Parameter(torch.full((n_sensitivities,), spacing))

    def forward(self, distances: torch.Tensor, fused: bool = False) -> torch.Tensor:
        """distances [P] (Angstrom) -> sensitivities [P, n_sensitivities].

        fused: compute them in one pass of the op library (torch.ops.metamlip.sensitivity, CPU
        or CUDA kernel, like the pair sums of implementation "cpp") where that applies: fixed
        centres and widths (an exported model), which is differentiable once, with respect to
        the distances (forces, stress). Otherwise, and for training, the formula below, which is
        the reference.
        """
        if fused and not self.mu.requires_grad and not self.sigma.requires_grad:
            return torch.ops.metamlip.sensitivity(distances, self.mu, self.sigma, self.cutoff)
        inverse = 1.0 / distances.unsqueeze(1)
        exponent = 0.5 * ((inverse - self.mu) / self.sigma).square()
        # Exponents are capped at 60 (Gaussians below exp(-60) ~ 1e-26 stay there): exp of large
        # arguments and float32 subnormal results are ~20x slower on CPUs.
        gauss = torch.exp(-exponent.clamp(max=60.0))
        return gauss * cosine_cutoff(distances, self.cutoff).unsqueeze(1)
