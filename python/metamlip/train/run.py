"""From a Config to a trained model with metrics and plots in the output directory.

strategy scratch: train on one level. Any other strategy: pre-train on the source levels into
OUT/pretrain (or into OUT when no target level is given), then fine-tune on the target level
into OUT. With `init`, fine-tune that checkpoint directly.
"""

from __future__ import annotations

import glob
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from metamlip.atomic import atomic_path
from metamlip.data import Dataset, DataError, fit_self_energies, read_dataset, split_indices, validate_configuration
from metamlip.data.batching import GraphSet
from metamlip.meta import strategies
from metamlip.meta.tasks import source_levels, split_sources, split_target
from metamlip.nn.build import build_potential
from metamlip.nn.potential import Potential
from metamlip.train import distributed
from metamlip.train.config import Config, ConfigError, TrainingConfig
from metamlip.train.metrics import error_metrics, predict
from metamlip.train.plots import loss_curve_plot, parity_plot
from metamlip.train.trainer import Trainer


def read_data_files(files: list[str]) -> Dataset:
    """Read every file (glob patterns allowed); an entry "path::level" gives the level for
    frames that name none."""
    if not files:
        raise ConfigError("no training data: give --data FILE (or data.files in the config)")
    dataset = Dataset()
    for entry in files:
        pattern, _, level = str(entry).partition("::")
        paths = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]
        if not paths:
            raise DataError(f"{pattern}: no file matches")
        for path in paths:
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
    return strategies.energy_scale(dataset, species, {dataset[0].level: self_energies})


def write_json(path: Path, values: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(values, indent=2) + "\n")


def run_training(config: Config, resume: bool = False) -> dict[str, Any]:
    """Train (and/or pre-train) as the config says; returns the metrics written to metrics.json.

    Under torchrun the processes share the work (metamlip.train.distributed); rank 0 writes.
    """
    out_dir = Path(config.out)
    for path in (out_dir / "last.ckpt", out_dir / "pretrain" / "last.ckpt"):
        if path.exists() and not resume:
            raise ConfigError(f"{out_dir} already holds a training run: pass --resume to continue it or choose another --out")
    comm = distributed.setup(config.training.device)
    if comm.active and comm.is_main:
        print(f"data-parallel training on {comm.world} processes", flush=True)
    dataset = read_data_files(config.data.files)
    if config.init is not None:
        potential = strategies.load_init(config.init)
        return finetune(config, dataset, potential, out_dir, comm, resume)
    if config.strategy == "scratch":
        return train_scratch(config, dataset, out_dir, comm, resume)
    if config.data.level is None:  # pre-training only: the meta-model is the result
        species = sorted(config.model.species) if config.model.species else dataset.elements()
        _validate(dataset, species)
        sources = split_sources(dataset, source_levels(dataset, config.data), config.data)
        _, metrics = strategies.pretrain(config, sources, species, out_dir, comm, resume)
        if comm.is_main:
            write_json(out_dir / "metrics.json", metrics)
        return metrics
    pretrain_dir = out_dir / "pretrain"
    if (pretrain_dir / "metrics.json").exists():
        potential = strategies.load_potential(pretrain_dir / "model.ckpt")
    else:
        target = split_target(dataset, _target_config(dataset, config))
        species = sorted(config.model.species) if config.model.species else dataset.elements()
        _validate(dataset, species)
        exclude = (target.val + target.test) if config.data.exclude_target_geometries else None
        sources = split_sources(dataset, source_levels(dataset, config.data), config.data, exclude)
        potential, metrics = strategies.pretrain(config, sources, species, pretrain_dir, comm, resume)
        if comm.is_main:
            write_json(pretrain_dir / "metrics.json", metrics)
    return finetune(config, dataset, potential, out_dir, comm, resume)


def _validate(dataset: Dataset, species: list[int]) -> None:
    for c in dataset:
        validate_configuration(c, species)


def _target_config(dataset: Dataset, config: Config):
    _, level = select_level(dataset, config.data.level)
    config.data.level = level
    return config.data


def train_scratch(config: Config, dataset: Dataset, out_dir: Path, comm, resume: bool) -> dict[str, Any]:
    """Train one model on one level of theory."""
    dataset, level = select_level(dataset, config.data.level)
    species = sorted(config.model.species) if config.model.species else dataset.elements()
    _validate(dataset, species)
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
    )
    return train_target(config, potential, train, dataset.subset(val_idx), dataset.subset(test_idx), out_dir, comm, resume)


def finetune(config: Config, dataset: Dataset, potential: Potential, out_dir: Path, comm, resume: bool) -> dict[str, Any]:
    """Fine-tune `potential` on the target level's training split."""
    target = split_target(dataset, _target_config(dataset, config))
    config.model = type(config.model)(**strategies.architecture_of(potential))
    potential = strategies.add_target_level(potential.double(), target.level, target.train, config.finetune)
    return train_target(config, potential, target.train, target.val, target.test, out_dir, comm, resume)


def prepare_potential(potential: Potential, settings: TrainingConfig) -> Potential:
    """The potential in the training dtype, on the training device, with the chosen pair sums."""
    potential = potential.to(getattr(torch, settings.dtype)).to(settings.device)
    potential.hipnn.set_implementation(settings.implementation)
    return potential


def trainer_for(config: Config, potential: Potential, train: GraphSet, val: GraphSet, out_dir: Path, comm=distributed.SINGLE) -> Trainer:
    """The Trainer of a target-level run; fine-tuning (config.init or a pre-training strategy)
    adds the L2-SP anchor of config.finetune."""
    finetuning = config.init is not None or config.strategy != "scratch"
    anchor = config.finetune.l2sp if finetuning else 0.0
    return Trainer(potential, train, val, config.training, out_dir, config.to_dict(), comm, anchor=anchor)


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
        parity_plot(test_pred, out_dir / "parity.png", title=f"test set, {', '.join(potential.levels)}")
    else:
        parity_plot(predict(potential, val), out_dir / "parity.png", title="validation set")
    loss_curve_plot(trainer.state.log, out_dir / "loss_curve.png")
    write_json(out_dir / "metrics.json", metrics)
    return metrics
