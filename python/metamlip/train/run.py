"""From a Config to a trained model with metrics and plots in the output directory."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from metamlip.atomic import atomic_path
from metamlip.data import Dataset, DataError, fit_self_energies, read_dataset, split_indices, validate_configuration
from metamlip.data.batching import GraphSet
from metamlip.data.self_energies import composition_matrix
from metamlip.nn.build import build_potential
from metamlip.nn.potential import Potential
from metamlip.train.config import Config, ConfigError
from metamlip.train.metrics import error_metrics, predict
from metamlip.train.plots import loss_curve_plot, parity_plot
from metamlip.train.trainer import Trainer


def read_data_files(files: list[str]) -> Dataset:
    """Read every file; an entry "path::level" gives the level for frames that name none."""
    if not files:
        raise ConfigError("no training data: give --data FILE (or data.files in the config)")
    dataset = Dataset()
    for entry in files:
        path, _, level = str(entry).partition("::")
        dataset = dataset + read_dataset(path, level or None)
    return dataset


def select_level(dataset: Dataset, level: str | None) -> tuple[Dataset, str]:
    levels = dataset.levels()
    if level is None:
        if len(levels) != 1:
            raise ConfigError(f"the data hold several levels of theory ({', '.join(levels)}): choose one with --level")
        level = levels[0]
    level = level.strip().lower()
    if level not in levels:
        raise ConfigError(f"level {level!r} is not in the data (levels present: {', '.join(levels)})")
    return dataset.select_level(level), level


def energy_scale(dataset: Dataset, species: list[int], self_energies: np.ndarray) -> float:
    """RMS force component (eV/A) if forces are known, else the std of residual energy per atom."""
    forces = [c.forces for c in dataset if c.forces is not None]
    if forces:
        return float(np.sqrt(np.mean(np.concatenate(forces) ** 2))) or 1.0
    counts = composition_matrix(dataset, species)
    residual = (np.array([c.energy for c in dataset]) - counts @ self_energies) / counts.sum(1)
    return float(residual.std()) or 1.0


def write_json(path: Path, values: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(values, indent=2) + "\n")


def run_training(config: Config, resume: bool = False) -> dict[str, Any]:
    """Train one model on one level of theory; returns the metrics written to metrics.json."""
    out_dir = Path(config.out)
    if out_dir.joinpath("last.ckpt").exists() and not resume:
        raise ConfigError(f"{out_dir} already holds a training run: pass --resume to continue it or choose another --out")
    dataset, level = select_level(read_data_files(config.data.files), config.data.level)
    species = sorted(config.model.species) if config.model.species else dataset.elements()
    for c in dataset:
        validate_configuration(c, species)
    train_idx, val_idx, test_idx = split_indices(
        len(dataset), config.data.n_train, config.data.n_val, config.data.n_test, config.data.split_seed
    )
    if len(val_idx) == 0:
        raise DataError("the validation set is empty: raise data.n_val")
    train = dataset.subset(train_idx)
    self_energies = fit_self_energies(train, species)[level]
    torch.manual_seed(config.training.seed)
    potential = build_potential(
        vars(config.model),
        species,
        [level],
        torch.from_numpy(self_energies)[None],
        energy_scale(train, species, self_energies),
    ).to(getattr(torch, config.training.dtype))
    potential.hipnn.set_implementation(config.training.implementation)
    cutoff = config.model.cutoff
    progress = config.training.progress
    train_set = GraphSet(train.configurations, cutoff, progress)
    val_set = GraphSet(dataset.subset(val_idx).configurations, cutoff, progress)
    trainer = Trainer(potential, train_set, val_set, config.training, out_dir, config.to_dict())
    potential = trainer.fit(resume=resume)
    return evaluate_run(potential, out_dir, val_set, GraphSet(dataset.subset(test_idx).configurations, cutoff), trainer)


def evaluate_run(potential: Potential, out_dir: Path, val: GraphSet, test: GraphSet, trainer: Trainer) -> dict[str, Any]:
    metrics: dict[str, Any] = {
        "validation": error_metrics(predict(potential, val)),
        "best_epoch": trainer.state.best_epoch,
        "epochs": trainer.state.epoch,
    }
    if len(test):
        test_pred = predict(potential, test)
        metrics["test"] = error_metrics(test_pred)
        parity_plot(test_pred, out_dir / "parity.png", title=f"test set, {', '.join(potential.levels)}")
    else:
        parity_plot(predict(potential, val), out_dir / "parity.png", title="validation set")
    loss_curve_plot(trainer.state.log, out_dir / "loss_curve.png")
    write_json(out_dir / "metrics.json", metrics)
    return metrics
