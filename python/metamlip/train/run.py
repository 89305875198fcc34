"""Single-level training runs: reading the data files, training from scratch on one level,
training a prepared model on a target level, and the run's metrics and plots.

The strategies that use other levels (pre-training, fine-tuning) are put together above this
layer, in metamlip.workflows.
"""

from __future__ import annotations

import glob
import sys
import json
from pathlib import Path
from typing import Any

import torch

from metamlip.atomic import atomic_path
from metamlip.data import Dataset, DataError, fit_self_energies, read_dataset, split_indices, validate_configuration
from metamlip.data.batching import GraphSet
from metamlip.data.self_energies import energy_scale
from metamlip.nn.build import build_potential
from metamlip.nn.potential import Potential
from metamlip.nn.repulsion import repulsion_from_config
from metamlip.train.config import Config, ConfigError, TrainingConfig
from metamlip.train.distributed import SINGLE
from metamlip.train.metrics import error_metrics, predict
from metamlip.train.plots import loss_curve_plot, parity_plot
from metamlip.train.trainer import Trainer


def read_data_files(files: list[str], level: str | None = None) -> Dataset:
    """Read every file (glob patterns allowed). Frames that name no level of theory get the
    entry's level ("path::level"), else `level` (e.g. --level); an empty file is an error."""
    if not files:
        raise ConfigError("no training data: give --data FILE (or data.files in the config)")
    dataset = Dataset()
    for entry in files:
        pattern, _, entry_level = str(entry).partition("::")
        paths = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]
        if not paths:
            raise DataError(f"{pattern}: no file matches")
        for path in paths:
            part = read_dataset(path, entry_level or level or None)
            if not len(part):
                raise DataError(f"{path}: the file holds no configurations")
            dataset = dataset + part
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


def write_json(path: Path, values: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(values, indent=2) + "\n")


def validate_all(dataset: Dataset, species: list[int]) -> None:
    for c in dataset:
        validate_configuration(c, species)


def train_scratch(config: Config, dataset: Dataset, out_dir: Path, comm, resume: bool) -> dict[str, Any]:
    """Train one model on one level of theory."""
    dataset, level = select_level(dataset, config.data.level)
    config.data.level = level  # the config saved with the run names the level it was trained on
    species = sorted(config.model.species) if config.model.species else dataset.elements()
    validate_all(dataset, species)
    train_idx, val_idx, test_idx = split_indices(
        len(dataset), config.data.n_train, config.data.n_val, config.data.n_test, config.data.split_seed
    )
    if len(val_idx) == 0:
        raise DataError("the validation set is empty: raise data.n_val")
    train = dataset.subset(train_idx)
    repulsion = repulsion_from_config(config.model, species, train.configurations)
    self_energies = fit_self_energies(train, species)[level]
    torch.manual_seed(config.training.seed)
    potential = build_potential(
        config.model.model_dump(),
        species,
        [level],
        torch.from_numpy(self_energies)[None],
        energy_scale(train, species, {level: self_energies}),
        repulsion=repulsion,
    )
    return train_target(config, potential, train, dataset.subset(val_idx), dataset.subset(test_idx), out_dir, comm, resume)


def prepare_potential(potential: Potential, settings: TrainingConfig) -> Potential:
    """The potential in the training dtype, on the training device, with the chosen pair sums."""
    potential = potential.to(getattr(torch, settings.dtype)).to(settings.device)
    potential.hipnn.set_implementation(settings.implementation)
    return potential


def trainer_for(config: Config, potential: Potential, train: GraphSet, val: GraphSet, out_dir: Path, comm=SINGLE) -> Trainer:
    """The Trainer of a target-level run; fine-tuning (config.init or a pre-training strategy)
    takes the rate, step budget, L2-SP pull and heads-first steps of config.finetune
    (freeze_body: the heads alone for every step)."""
    finetuning = config.init is not None or config.strategy != "scratch"
    f = config.finetune
    head_steps = (sys.maxsize if f.freeze_body else f.head_steps) if finetuning else 0
    return Trainer(
        potential, train, val, training_settings(config, finetuning), out_dir, config.to_dict(), comm,
        anchor=f.l2sp if finetuning else 0.0, head_steps=head_steps,
    )


def training_settings(config: Config, finetuning: bool) -> TrainingConfig:
    """config.training, with the fine-tuning rate and step budget of config.finetune when fine-tuning."""
    f = config.finetune
    if not finetuning:
        return config.training
    update = {k: v for k, v in (("learning_rate", f.learning_rate), ("max_steps", f.max_steps)) if v is not None}
    return config.training.model_copy(update=update)


def train_target(
    config: Config, potential: Potential, train: Dataset, val: Dataset, test: Dataset, out_dir: Path, comm, resume: bool
) -> dict[str, Any]:
    settings = config.training
    potential = prepare_potential(potential, settings)
    cutoff, progress = potential.cutoff, settings.progress and comm.is_main
    train_set = GraphSet(train.configurations, cutoff, progress)
    val_set = GraphSet(val.configurations, cutoff, progress)
    trainer = trainer_for(config, potential, train_set, val_set, out_dir, comm)
    potential = trainer.fit(resume=resume)
    if not comm.is_main:
        return {}
    return evaluate_run(potential, out_dir, val_set, GraphSet(test.configurations, cutoff), trainer)


def evaluate_run(potential: Potential, out_dir: Path, val: GraphSet, test: GraphSet, trainer: Trainer) -> dict[str, Any]:
    metrics: dict[str, Any] = {
        "validation": error_metrics(predict(potential, val)),
        "best_epoch": trainer.state.best_epoch,
        "epochs": trainer.state.epoch,
    }
    if len(test):
        test_pred = predict(potential, test)
        metrics["test"] = error_metrics(test_pred)
        parity_plot(test_pred, out_dir / "parity.png", title="test set")
    else:
        parity_plot(predict(potential, val), out_dir / "parity.png", title="validation set")
    loss_curve_plot(trainer.state.log, out_dir / "loss_curve.png")
    write_json(out_dir / "metrics.json", metrics)
    return metrics
