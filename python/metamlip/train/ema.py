"""Exponential moving average (EMA) of the trained weights, used for validation and the saved model.

After each optimiser step the average moves towards the weights:
avg <- d * avg + (1 - d) * w with d = min(decay, (1 + n) / (10 + n)) at the n-th update, so the
first updates follow the weights closely (the warm-up torch-ema and MACE use).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator, Sequence

import torch


class WeightAverage:
    """EMA of `parameters` (the trained ones); `applied()` swaps the average in temporarily."""

    def __init__(self, parameters: Sequence[torch.nn.Parameter], decay: float) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"EMA decay must be in (0, 1), got {decay}")
        self.parameters = list(parameters)
        self.decay = decay
        self.updates = 0
        self.average = [p.detach().clone() for p in self.parameters]

    def current_decay(self) -> float:
        return min(self.decay, (1 + self.updates) / (10 + self.updates))

    @torch.no_grad()
    def update(self) -> None:
        """Move the average towards the current weights (call after every optimiser step)."""
        self.updates += 1
        weight = 1.0 - self.current_decay()
        for average, p in zip(self.average, self.parameters):
            average.lerp_(p.detach(), weight)

    @contextmanager
    def applied(self) -> Iterator[None]:
        """Inside the block the parameters hold the average; the trained weights come back after."""
        saved = [p.detach().clone() for p in self.parameters]
        with torch.no_grad():
            for p, average in zip(self.parameters, self.average):
                p.copy_(average)
        try:
            yield
        finally:
            with torch.no_grad():
                for p, value in zip(self.parameters, saved):
                    p.copy_(value)

    def state_dict(self) -> dict[str, Any]:
        return {"decay": self.decay, "updates": self.updates, "average": [a.clone() for a in self.average]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if len(state["average"]) != len(self.average):
            raise ValueError(f"EMA state holds {len(state['average'])} tensors, the model trains {len(self.average)}")
        self.decay = float(state["decay"])
        self.updates = int(state["updates"])
        with torch.no_grad():
            for average, value in zip(self.average, state["average"]):
                average.copy_(value)
