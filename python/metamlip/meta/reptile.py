"""Reptile across levels of theory (Nichol, Achiam, Schulman 2018; Allen et al. 2024).

Each level of theory is a task. One outer step, with meta-parameters theta:

    for each task tau of the meta-batch:  phi <- theta; k optimiser steps on batches of tau only
    theta <- theta + epsilon * mean_tau(phi_tau - theta)

epsilon follows `outer_schedule` from `outer_lr` to `outer_lr_end`. The inner optimiser's state
is either reset for every task ("reset") or carried across outer steps ("carry": each task of a
meta-batch starts from the same carried state, which then becomes their mean), so that k = 1,
epsilon = 1 and one task per step is exactly plain Adam/SGD on the sequence of tasks.

Tasks and batches are functions of (seed, outer step, slot in the meta-batch), so a run resumed
from last.ckpt continues exactly. Under torchrun, process r runs the slots j with
j % world == r and the updates are summed across processes.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from metamlip.data.batching import GraphSet
from metamlip.nn.checkpoint import read_checkpoint
from metamlip.nn.potential import Potential
from metamlip.train.checkpoint import save_checkpoint
from metamlip.train.config import ReptileConfig, TrainingConfig
from metamlip.train.distributed import SINGLE, Comm
from metamlip.train.interrupt import Interrupt, TrainingInterrupted
from metamlip.train.resume import check_resumable, data_fingerprint
from metamlip.train.steps import StepContext, gradient_step, make_optimizer, trainable_parameters, validation_loss
from metamlip.train.trainer import write_csv


def epsilon(settings: ReptileConfig, step: int) -> float:
    """Outer learning rate at outer step `step` (0-based)."""
    start, end = settings.outer_lr, settings.outer_lr_end
    fraction = step / max(settings.outer_steps - 1, 1)
    if settings.outer_schedule == "constant":
        return start
    if settings.outer_schedule == "cosine":
        return end + (start - end) * 0.5 * (1 + math.cos(math.pi * fraction))
    return start + (end - start) * fraction


def sample_tasks(n_tasks: int, meta_batch_size: int, seed: int, step: int, mode: str) -> list[int]:
    """Task indices of outer step `step`: distinct within a meta-batch."""
    m = min(meta_batch_size, n_tasks)
    if mode == "cycle":
        return [(step * m + j) % n_tasks for j in range(m)]
    return [int(t) for t in np.random.default_rng([seed, 1, step]).choice(n_tasks, size=m, replace=False)]


def inner_batch(n: int, batch_size: int, seed: int, step: int, slot: int, inner: int) -> np.ndarray:
    """Configurations of inner step `inner` of the task in `slot` at outer step `step`."""
    return np.random.default_rng([seed, 2, step, slot, inner]).choice(n, size=min(batch_size, n), replace=False)


@dataclass
class ReptileState:
    outer_step: int = 0
    loss_sum: float = 0.0  # inner-step losses since the last log row
    loss_count: int = 0
    seconds: float = 0.0
    log: list[dict[str, float]] = field(default_factory=list)


class ReptileTrainer:
    """Meta-trains `potential` (one energy head, per-level self energies) on `tasks`.

    tasks / val: {level: GraphSet}; settings: batch size, loss weights, clipping, seed, dtype,
    checkpoint_every (in outer steps) and progress of the inner steps; reptile: the outer loop.
    Writes last.ckpt (resumable), model.ckpt (final meta-parameters) and train_log.csv.
    """

    def __init__(
        self,
        potential: Potential,
        tasks: dict[str, GraphSet],
        val: dict[str, GraphSet],
        settings: TrainingConfig,
        reptile: ReptileConfig,
        out_dir: str | Path,
        config: dict[str, Any],
        comm: Comm = SINGLE,
    ) -> None:
        if potential.hipnn.n_heads != 1:
            raise ValueError("Reptile meta-trains a single-head model")
        self.potential = potential
        self.levels = list(tasks)
        self.tasks = tasks
        self.val = val
        self.settings = settings
        self.reptile = reptile
        self.out_dir = Path(out_dir)
        self.config = config
        self.comm = comm
        self.context = StepContext(potential, settings, comm)
        potential.to(self.context.device)
        self.fingerprint = data_fingerprint(*(t.configs for t in tasks.values()), *(v.configs for v in val.values()))
        self.parameters = trainable_parameters(potential)
        self.optimizer = make_optimizer(reptile.inner_optimizer, self.parameters, reptile.inner_lr)
        self.state = ReptileState()

    @property
    def last_path(self) -> Path:
        return self.out_dir / "last.ckpt"

    def task_plan(self, step: int) -> list[str]:
        """Levels of the meta-batch of outer step `step`."""
        r = self.reptile
        picks = sample_tasks(len(self.levels), r.meta_batch_size, self.settings.seed, step, r.task_sampling)
        return [self.levels[t] for t in picks]

    # --- the inner optimiser's carried state (Adam moments; SGD without momentum has none)
    def _state_tensors(self) -> list[torch.Tensor]:
        if self.reptile.inner_optimizer != "adam":
            return []
        out = []
        for p in self.parameters:
            state = self.optimizer.state[p]
            if not state:
                state["step"] = torch.tensor(0.0)
                state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            out += [state["exp_avg"], state["exp_avg_sq"]]
        return out

    def _set_steps(self, value: float) -> None:
        for p in self.parameters:
            if "step" in self.optimizer.state[p]:
                self.optimizer.state[p]["step"].fill_(value)

    def _step_count(self) -> float:
        states = [self.optimizer.state[p] for p in self.parameters]
        return float(states[0]["step"]) if states and "step" in states[0] else 0.0

    def outer_step(self) -> float:
        """One outer step; returns the mean inner loss of this process's tasks."""
        r, s, comm = self.reptile, self.settings, self.comm
        step = self.state.outer_step
        plan = self.task_plan(step)
        mine = [j for j in range(len(plan)) if j % comm.world == comm.rank]
        carry = r.inner_state == "carry"
        average_state = carry and (len(plan) > 1 or comm.active)
        params = self.parameters
        theta = [p.detach().clone() for p in params]
        delta = [torch.zeros_like(p) for p in params]
        if average_state:
            start_state = [t.clone() for t in self._state_tensors()]
            start_step = self._step_count()
            state_sum = [torch.zeros_like(t) for t in start_state]
        losses = []
        with torch.no_grad():
            first = True
            for j in mine:
                if not first:
                    torch._foreach_copy_([p.data for p in params], theta)
                if not carry:
                    self.optimizer.state.clear()
                elif average_state:
                    torch._foreach_copy_(self._state_tensors(), start_state)
                    self._set_steps(start_step)
                first = False
                data = self.tasks[plan[j]]
                with torch.enable_grad():
                    for inner in range(r.inner_steps):
                        indices = inner_batch(len(data), s.batch_size, s.seed, step, j, inner)
                        losses.append(gradient_step(self.context, params, self.optimizer, data, indices, distributed=False))
                torch._foreach_add_(delta, torch._foreach_sub([p.data for p in params], theta))
                if average_state:
                    torch._foreach_add_(state_sum, self._state_tensors())
            comm.all_reduce_sum(delta)
            scale = epsilon(r, step) / len(plan)
            torch._foreach_add_(theta, delta, alpha=scale)
            torch._foreach_copy_([p.data for p in params], theta)
            if average_state:
                comm.all_reduce_sum(state_sum)
                torch._foreach_mul_(state_sum, 1.0 / len(plan))
                torch._foreach_copy_(self._state_tensors(), state_sum)
                self._set_steps(start_step + r.inner_steps)
        loss_sum, loss_count = comm.sum_floats(sum(losses), len(losses))
        self.state.loss_sum += loss_sum
        self.state.loss_count += int(loss_count)
        self.state.outer_step += 1
        return loss_sum / max(loss_count, 1)

    def validate(self) -> dict[str, float]:
        """Validation loss of the meta-parameters on each level (no adaptation)."""
        return {level: validation_loss(self.context, data)[0] for level, data in self.val.items()}

    def _log_row(self) -> None:
        val = self.validate()
        row = {
            "outer_step": self.state.outer_step,
            "epsilon": epsilon(self.reptile, max(self.state.outer_step - 1, 0)),
            "train_loss": self.state.loss_sum / max(self.state.loss_count, 1),
            "val_loss": float(np.mean(list(val.values()))) if val else float("nan"),
            **{f"val_loss[{level}]": value for level, value in val.items()},
            "seconds": self.state.seconds,
        }
        self.state.log.append(row)
        self.state.loss_sum, self.state.loss_count = 0.0, 0
        if self.comm.is_main:
            write_csv(self.out_dir / "train_log.csv", self.state.log, list(row))

    def _save_last(self) -> None:
        if self.comm.is_main:
            training_state = {"reptile": asdict(self.state), "optimizer": self.optimizer.state_dict()}
            save_checkpoint(self.last_path, self.potential, self.config, training_state, extra={"data": self.fingerprint})

    def restore(self) -> None:
        payload = read_checkpoint(self.last_path)
        check_resumable(self.last_path, payload, self.config, self.fingerprint)
        state = payload["training_state"]
        if "reptile" not in state:
            raise ValueError(f"{self.last_path}: not a Reptile checkpoint")
        self.potential.load_state_dict(payload["model"]["state_dict"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.state = ReptileState(**state["reptile"])

    def fit(self, resume: bool = False) -> Potential:
        r = self.reptile
        if self.comm.is_main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
        if resume and self.last_path.exists():
            self.restore()
        show = self.settings.progress and self.comm.is_main
        bar = tqdm(total=r.outer_steps, initial=self.state.outer_step, desc="reptile", disable=not show)
        with Interrupt(enabled=not self.comm.active) as interrupt:
            while self.state.outer_step < r.outer_steps:
                start = time.perf_counter()
                loss = self.outer_step()
                self.state.seconds += time.perf_counter() - start
                bar.update(1)
                done = self.state.outer_step
                if done % r.eval_every == 0 or done == r.outer_steps:
                    self._log_row()
                    bar.set_postfix(inner=f"{loss:.3g}", val=f"{self.state.log[-1]['val_loss']:.3g}")
                if done % self.settings.checkpoint_every == 0 or interrupt.requested:
                    self._save_last()
                if interrupt.requested:
                    bar.close()
                    raise TrainingInterrupted(self.last_path)
        bar.close()
        self._save_last()
        if self.comm.is_main:
            save_checkpoint(
                self.out_dir / "model.ckpt", self.potential, self.config, extra={"outer_step": self.state.outer_step, "data": self.fingerprint}
            )
        return self.potential
