"""Single-level (or pooled) training loop with exact resume, early stopping and checkpoints."""

from __future__ import annotations

import contextlib
import copy
import csv
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from metamlip.atomic import atomic_path
from metamlip.data.batching import GraphSet
from metamlip.nn.checkpoint import read_checkpoint
from metamlip.nn.potential import Potential
from metamlip.train.checkpoint import save_checkpoint
from metamlip.train.config import TrainingConfig
from metamlip.train.distributed import SINGLE, Comm
from metamlip.train.anchor import WeightAnchor
from metamlip.train.ema import WeightAverage
from metamlip.train.interrupt import Interrupt, TrainingInterrupted
from metamlip.train.resume import check_resumable, data_fingerprint
from metamlip.train.schedule import LearningRateSchedule
from metamlip.train.steps import StepContext, gradient_step, make_optimizer, trainable_parameters, validation_loss

LOG_COLUMNS = ["epoch", "step", "learning_rate", "train_loss", "val_loss", "val_energy_mse", "val_force_mse", "seconds"]


@dataclass
class TrainState:
    """Where training stands; saved in every checkpoint so `--resume` continues exactly."""

    epoch: int = 0
    step_in_epoch: int = 0
    global_step: int = 0
    epoch_loss_sum: float = 0.0
    best_val: float = float("inf")
    best_epoch: int = -1
    best_step: int = 0
    bad_epochs: int = 0
    stopped_early: bool = False
    log: list[dict[str, float]] = field(default_factory=list)


def epoch_order(n: int, seed: int, epoch: int, size: int | None = None) -> np.ndarray:
    """The shuffled order of training configurations in `epoch` (a function of seed and epoch).

    size: configurations per epoch (None = n); more than n concatenates shuffled passes.
    """
    rng = np.random.default_rng([seed, epoch])
    if size is None:
        return rng.permutation(n)
    passes = -(-size // n)
    return np.concatenate([rng.permutation(n) for _ in range(passes)])[:size]


class Trainer:
    """Adam + learning-rate schedule (metamlip.train.schedule) + optional EMA of the weights
    (metamlip.train.ema; validation and the saved model use the average) + early stopping on
    the validation loss, counted in epochs (`patience`) or optimiser steps (`patience_steps`).

    Only parameters with requires_grad are trained (fine-tuning may freeze the body, or train
    the heads alone for its first `head_steps` steps). Files in
    out_dir: last.ckpt (full state, every `checkpoint_every` steps and each epoch), model.ckpt
    (best validation model), train_log.csv. Under torchrun each batch is split across the
    processes (see metamlip.train.steps); only rank 0 writes files.
    """

    def __init__(
        self,
        potential: Potential,
        train: GraphSet,
        val: GraphSet,
        settings: TrainingConfig,
        out_dir: str | Path,
        config: dict[str, Any],
        comm: Comm = SINGLE,
        anchor: float = 0.0,
        head_steps: int = 0,
    ) -> None:
        """anchor: L2-SP strength towards the starting weights (fine-tuning; metamlip.train.anchor).
        head_steps: the first optimiser steps train only the energy heads (the body's gradients
        are dropped), the later ones every trained weight (fine-tuning: heads first, then all;
        a step count beyond max_steps trains the heads alone)."""
        self.potential = potential
        self.train_set = train
        self.val_set = val
        self.settings = settings
        self.out_dir = Path(out_dir)
        self.config = config
        self.comm = comm
        self.context = StepContext(potential, settings, comm)
        potential.to(self.context.device)
        self.fingerprint = data_fingerprint(train.configs, val.configs)
        self.parameters = trainable_parameters(potential)
        self.optimizer = make_optimizer("adam", self.parameters, settings.learning_rate)
        self.scheduler = LearningRateSchedule(
            self.optimizer,
            settings.learning_rate,
            settings.schedule,
            settings.warmup_steps,
            settings.lr_factor,
            settings.lr_patience,
            settings.min_lr,
            self._total_steps(),
        )
        self.average = WeightAverage(self.parameters, settings.ema_decay) if settings.ema_decay else None
        if anchor > 0:
            WeightAnchor(self.parameters, anchor).attach(self.optimizer)
        heads = {id(p) for p in potential.hipnn.head_parameters()}
        self.body = [p for p in self.parameters if id(p) not in heads]
        self.head_steps = head_steps
        self.state = TrainState()
        self.best_model_state = copy.deepcopy(potential.state_dict())

    @property
    def last_path(self) -> Path:
        return self.out_dir / "last.ckpt"

    @property
    def best_path(self) -> Path:
        return self.out_dir / "model.ckpt"

    def _epoch_length(self) -> int:
        return self.settings.epoch_size or len(self.train_set)

    def _batches_per_epoch(self) -> int:
        return -(-self._epoch_length() // self.settings.batch_size)

    def _total_steps(self) -> int:
        """The step budget: max_steps, or max_epochs whole epochs if that is fewer."""
        s = self.settings
        limits = [s.max_steps, None if s.max_epochs is None else s.max_epochs * self._batches_per_epoch()]
        return min(limit for limit in limits if limit is not None)

    def _max_epochs(self) -> int:
        return self.settings.max_epochs or -(-self._total_steps() // self._batches_per_epoch())

    def _out_of_steps(self) -> bool:
        return self.settings.max_steps is not None and self.state.global_step >= self.settings.max_steps

    def _save_last(self) -> None:
        if not self.comm.is_main:
            return
        training_state = {
            "trainer": asdict(self.state),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "ema": self.average.state_dict() if self.average else None,
            "best_model_state": self.best_model_state,
        }
        save_checkpoint(self.last_path, self.potential, self.config, training_state, extra={"data": self.fingerprint})

    def restore(self) -> None:
        """Continue from last.ckpt in out_dir (same parameters as an uninterrupted run); refuses
        a checkpoint written with another config or other data (metamlip.train.resume)."""
        payload = read_checkpoint(self.last_path)
        check_resumable(self.last_path, payload, self.config, self.fingerprint)
        state = payload["training_state"]
        self.potential.load_state_dict(payload["model"]["state_dict"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if self.average is not None and state.get("ema") is not None:
            self.average.load_state_dict(state["ema"])
        self.best_model_state = state["best_model_state"]
        self.state = TrainState(**state["trainer"])

    def validation_loss(self) -> tuple[float, dict[str, float]]:
        return validation_loss(self.context, self.val_set)

    def train_step(self, indices: np.ndarray) -> float:
        self.scheduler.set_step(self.state.global_step + 1)
        frozen = self.body if self.state.global_step < self.head_steps else ()
        loss = gradient_step(self.context, self.parameters, self.optimizer, self.train_set, indices, frozen=frozen)
        if self.average is not None:
            self.average.update()
        return loss

    def fit(self, resume: bool = False) -> Potential:
        """Train until max_epochs, max_steps or early stopping; returns the potential with the best weights."""
        s = self.settings
        if self.comm.is_main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
        if resume and self.last_path.exists():
            self.restore()
        n_batches = self._batches_per_epoch()
        show = s.progress and self.comm.is_main
        bar = tqdm(total=self._max_epochs(), initial=self.state.epoch, desc="epochs", disable=not show)
        start_time = time.perf_counter()
        with Interrupt(enabled=not self.comm.active) as interrupt:
            while not self.state.stopped_early and self.state.epoch < self._max_epochs():
                order = epoch_order(len(self.train_set), s.seed, self.state.epoch, s.epoch_size)
                while self.state.step_in_epoch < n_batches and not self._out_of_steps():
                    k = self.state.step_in_epoch
                    self.state.epoch_loss_sum += self.train_step(order[k * s.batch_size : (k + 1) * s.batch_size])
                    self.state.step_in_epoch += 1
                    self.state.global_step += 1
                    if self.state.global_step % s.checkpoint_every == 0:
                        self._save_last()
                    if interrupt.requested:
                        bar.close()
                        self._save_last()
                        raise TrainingInterrupted(self.last_path)
                self._end_epoch(self.state.step_in_epoch, time.perf_counter() - start_time)
                bar.update(1)
                last = self.state.log[-1]
                bar.set_postfix(train=f"{last['train_loss']:.3g}", val=f"{last['val_loss']:.3g}", lr=f"{last['learning_rate']:.1e}")
        bar.close()
        self._save_last()
        self.potential.load_state_dict(self.best_model_state)
        return self.potential

    def _end_epoch(self, n_batches: int, seconds: float) -> None:
        s = self.settings
        with self.average.applied() if self.average else contextlib.nullcontext():
            val_loss, parts = self.validation_loss()
            improved = val_loss < self.state.best_val
            if improved:
                self.best_model_state = copy.deepcopy(self.potential.state_dict())
                if self.comm.is_main:
                    save_checkpoint(self.best_path, self.potential, self.config, extra={"epoch": self.state.epoch, "data": self.fingerprint})
        self.state.log.append(
            {
                "epoch": self.state.epoch,
                "step": self.state.global_step,
                "learning_rate": self.optimizer.param_groups[0]["lr"],
                "train_loss": self.state.epoch_loss_sum / max(n_batches, 1),
                "val_loss": val_loss,
                "val_energy_mse": parts.get("energy_mse", float("nan")),
                "val_force_mse": parts.get("force_mse", float("nan")),
                "seconds": seconds,
            }
        )
        self.scheduler.validated(val_loss)
        if improved:
            self.state.best_val = val_loss
            self.state.best_epoch = self.state.epoch
            self.state.best_step = self.state.global_step
            self.state.bad_epochs = 0
        else:
            self.state.bad_epochs += 1
            if s.patience_steps is not None:
                self.state.stopped_early = self.state.global_step - self.state.best_step >= s.patience_steps
            else:
                self.state.stopped_early = self.state.bad_epochs >= s.patience
        self.state.stopped_early = self.state.stopped_early or self._out_of_steps()
        self.state.epoch += 1
        self.state.step_in_epoch = 0
        self.state.epoch_loss_sum = 0.0
        self._write_log()
        self._save_last()

    def _write_log(self) -> None:
        if self.comm.is_main:
            write_csv(self.out_dir / "train_log.csv", self.state.log, LOG_COLUMNS)


def write_csv(path: Path, rows: list[dict[str, Any]], columns: list[str]) -> None:
    """Atomically write rows (dicts) as CSV with the given columns."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns)
            writer.writeheader()
            writer.writerows(rows)
