"""L2-SP: regularisation of fine-tuned weights towards the pre-trained ones (Li et al., ICML 2018).

The loss gains (strength / 2) * sum_w (w - w0)^2 over the trained weights w (w0: their values
when fine-tuning starts); its gradient strength * (w - w0) is added to each weight's gradient
just before every optimiser step (an optimiser pre-step hook, after gradient clipping).
"""

from __future__ import annotations

from typing import Sequence

import torch


class WeightAnchor:
    """Pulls `parameters` towards their current values with the given strength (1/(eV/A)^2 units of the loss)."""

    def __init__(self, parameters: Sequence[torch.nn.Parameter], strength: float) -> None:
        if strength < 0:
            raise ValueError(f"L2-SP strength must be >= 0, got {strength}")
        self.parameters = list(parameters)
        self.strength = strength
        self.reference = [p.detach().clone() for p in self.parameters]

    @torch.no_grad()
    def add_gradient(self) -> None:
        """grad += strength * (w - w0) for every parameter with a gradient."""
        for p, w0 in zip(self.parameters, self.reference):
            if p.grad is not None:
                p.grad.add_(p.detach() - w0, alpha=self.strength)

    def penalty(self) -> float:
        """(strength / 2) * sum (w - w0)^2, the term this adds to the loss."""
        return 0.5 * self.strength * sum(float((p.detach() - w0).square().sum()) for p, w0 in zip(self.parameters, self.reference))

    def attach(self, optimizer: torch.optim.Optimizer) -> "WeightAnchor":
        optimizer.register_step_pre_hook(lambda *_: self.add_gradient())
        return self
