"""Single-level (or pooled) training loop with exact resume, early stopping and checkpoints."""

from __future__ import annotations

import copy
import csv
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from metamlip.atomic import atomic_path
from metamlip.data.batching import GraphSet
from metamlip.nn.checkpoint import read_checkpoint
from metamlip.nn.potential import Potential
from metamlip.train.checkpoint import save_checkpoint
from metamlip.train.config import TrainingConfig
from metamlip.train.distributed import SINGLE, Comm
from metamlip.train.interrupt import Interrupt, TrainingInterrupted
from metamlip.train.resume import check_resumable, data_fingerprint
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
    """Adam + reduce-on-plateau + early stopping on the validation loss.

    Only parameters with requires_grad are trained (fine-tuning may freeze the body). Files in
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
    ) -> None:
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
        self.scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            self.optimizer, factor=settings.lr_factor, patience=settings.lr_patience, min_lr=settings.min_lr
        )
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

    def _save_last(self) -> None:
        if not self.comm.is_main:
            return
        training_state = {
            "trainer": asdict(self.state),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
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
        self.best_model_state = state["best_model_state"]
        self.state = TrainState(**state["trainer"])

    def validation_loss(self) -> tuple[float, dict[str, float]]:
        return validation_loss(self.context, self.val_set)

    def train_step(self, indices: np.ndarray) -> float:
        return gradient_step(self.context, self.parameters, self.optimizer, self.train_set, indices)

    def fit(self, resume: bool = False) -> Potential:
        """Train until max_epochs or early stopping; returns the potential with the best weights."""
        s = self.settings
        if self.comm.is_main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
        if resume and self.last_path.exists():
            self.restore()
        n_batches = self._batches_per_epoch()
        show = s.progress and self.comm.is_main
        bar = tqdm(total=s.max_epochs, initial=self.state.epoch, desc="epochs", disable=not show)
        start_time = time.perf_counter()
        with Interrupt(enabled=not self.comm.active) as interrupt:
            while not self.state.stopped_early and self.state.epoch < s.max_epochs:
                order = epoch_order(len(self.train_set), s.seed, self.state.epoch, s.epoch_size)
                while self.state.step_in_epoch < n_batches:
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
                self._end_epoch(n_batches, time.perf_counter() - start_time)
                bar.update(1)
                last = self.state.log[-1]
                bar.set_postfix(train=f"{last['train_loss']:.3g}", val=f"{last['val_loss']:.3g}", lr=f"{last['learning_rate']:.1e}")
        bar.close()
        self._save_last()
        self.potential.load_state_dict(self.best_model_state)
        return self.potential

    def _end_epoch(self, n_batches: int, seconds: float) -> None:
        s = self.settings
        val_loss, parts = self.validation_loss()
        self.state.log.append(
            {
                "epoch": self.state.epoch,
                "step": self.state.global_step,
                "learning_rate": self.optimizer.param_groups[0]["lr"],
                "train_loss": self.state.epoch_loss_sum / n_batches,
                "val_loss": val_loss,
                "val_energy_mse": parts.get("energy_mse", float("nan")),
                "val_force_mse": parts.get("force_mse", float("nan")),
                "seconds": seconds,
            }
        )
        self.scheduler.step(val_loss)
        if val_loss < self.state.best_val:
            self.state.best_val = val_loss
            self.state.best_epoch = self.state.epoch
            self.state.bad_epochs = 0
            self.best_model_state = copy.deepcopy(self.potential.state_dict())
            if self.comm.is_main:
                save_checkpoint(self.best_path, self.potential, self.config, extra={"epoch": self.state.epoch, "data": self.fingerprint})
        else:
            self.state.bad_epochs += 1
            if self.state.bad_epochs >= s.patience:
                self.state.stopped_early = True
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
