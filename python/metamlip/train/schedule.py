"""Learning-rate schedule: linear warm-up, then reduce-on-plateau, cosine decay or a constant rate.

lr(step) = learning_rate * ramp(step) * decay, with ramp(step) = min(1, step / warmup_steps)
(step counted from 1, so the first step uses learning_rate / warmup_steps) and decay
- "plateau": multiplied by lr_factor whenever lr_patience validations in a row did not improve
  on the best validation loss (as torch's ReduceLROnPlateau), never below min_lr;
- "cosine": from 1 to min_lr / learning_rate along half a cosine over `total_steps` after warm-up;
- "constant": 1.
"""

from __future__ import annotations

import math
from typing import Any

import torch

SCHEDULES = ("plateau", "cosine", "constant")


class LearningRateSchedule:
    """Sets the optimiser's learning rate before each step (`set_step`) and after each
    validation (`validated`); its state goes into checkpoints."""

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        learning_rate: float,
        schedule: str = "plateau",
        warmup_steps: int = 0,
        lr_factor: float = 0.5,
        lr_patience: int = 8,
        min_lr: float = 1e-5,
        total_steps: int | None = None,
    ) -> None:
        if schedule not in SCHEDULES:
            raise ValueError(f"unknown learning-rate schedule {schedule!r} ({', '.join(SCHEDULES)})")
        if schedule == "cosine" and not total_steps:
            raise ValueError("the cosine schedule needs the total number of steps")
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.schedule = schedule
        self.warmup_steps = warmup_steps
        self.lr_factor = lr_factor
        self.lr_patience = lr_patience
        self.min_lr = min(min_lr, learning_rate)
        self.total_steps = total_steps
        self.plateau_scale = 1.0
        self.best = math.inf
        self.bad_validations = 0
        self.step = 0
        self._apply()

    def rate(self, step: int) -> float:
        """The learning rate of optimiser step `step` (1 = the first)."""
        ramp = min(1.0, step / self.warmup_steps) if self.warmup_steps > 0 else 1.0
        if self.schedule == "plateau":
            return max(self.learning_rate * self.plateau_scale, self.min_lr) * ramp
        if self.schedule == "cosine":
            span = max(self.total_steps - self.warmup_steps, 1)
            t = min(max(step - self.warmup_steps, 0) / span, 1.0)
            return (self.min_lr + (self.learning_rate - self.min_lr) * 0.5 * (1 + math.cos(math.pi * t))) * ramp
        return self.learning_rate * ramp

    def set_step(self, step: int) -> None:
        """Call before optimiser step `step` (1 = the first)."""
        self.step = step
        self._apply()

    def validated(self, loss: float) -> None:
        """Report a validation loss (plateau: may cut the rate)."""
        if loss < self.best:
            self.best, self.bad_validations = loss, 0
            return
        self.bad_validations += 1
        if self.schedule == "plateau" and self.bad_validations > self.lr_patience:
            self.plateau_scale *= self.lr_factor
            self.bad_validations = 0
            self._apply()

    def _apply(self) -> None:
        lr = self.rate(max(self.step, 1))
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def state_dict(self) -> dict[str, Any]:
        keys = ("plateau_scale", "best", "bad_validations", "step")
        return {k: getattr(self, k) for k in keys}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for key, value in state.items():
            setattr(self, key, value)
        self._apply()
