"""`metamlip-train` from a Config to a trained model: the strategies put together.

strategy scratch: train on one level (metamlip.train.run). Any other strategy: pre-train on the
source levels into OUT/pretrain (or into OUT when no target level is given; metamlip.meta),
then fine-tune on the target level into OUT. With `init`, fine-tune that checkpoint directly.
This module sits above train and meta (data -> nn -> train -> meta -> workflows -> cli).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from metamlip.atomic import clean_stale_temporaries
from metamlip.data import Dataset
from metamlip.meta import strategies
from metamlip.meta.tasks import source_levels, split_sources, split_target
from metamlip.nn.potential import Potential
from metamlip.train import distributed
from metamlip.train.config import Config, ConfigError
from metamlip.train.device import torch_device
from metamlip.train.run import read_data_files, select_level, train_scratch, train_target, validate_all, write_json

RUN_FILES = ("last.ckpt", "pretrain/last.ckpt")


def check_out_dir(out_dir: Path, resume: bool) -> None:
    """Refuse an --out that is a file, a new run over an old one, and --resume without a run."""
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError(f"--out {out_dir}: is a file, not a directory; choose another --out")
    has_run = any((out_dir / name).exists() for name in RUN_FILES)
    if has_run and not resume:
        raise ConfigError(f"{out_dir} already holds a training run: pass --resume to continue it or choose another --out")
    if resume and not has_run:
        raise ConfigError(f"--resume: {out_dir} holds no training run to continue (no last.ckpt); drop --resume to start one")


def run_training(config: Config, resume: bool = False) -> dict[str, Any]:
    """Train (and/or pre-train) as the config says; returns the metrics written to metrics.json.

    Under torchrun the processes share the work (metamlip.train.distributed); rank 0 writes.
    """
    out_dir = Path(config.out)
    check_out_dir(out_dir, resume)
    torch_device(config.training.device, "training.device")
    if config.strategy != "scratch" and config.init is None:
        torch_device(config.pretrain.device, "pretrain.device")
    comm = distributed.setup(config.training.device)
    if comm.is_main:
        clean_stale_temporaries(out_dir)
    if comm.active and comm.is_main:
        print(f"data-parallel training on {comm.world} processes", flush=True)
    dataset = read_data_files(config.data.files, config.data.level)
    if config.init is not None:
        potential = strategies.load_init(config.init)
        return finetune(config, dataset, potential, out_dir, comm, resume)
    if config.strategy == "scratch":
        return train_scratch(config, dataset, out_dir, comm, resume)
    if config.data.level is None:  # pre-training only: the meta-model is the result
        species = sorted(config.model.species) if config.model.species else dataset.elements()
        validate_all(dataset, species)
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
        validate_all(dataset, species)
        exclude = (target.val + target.test) if config.data.exclude_target_geometries else None
        sources = split_sources(dataset, source_levels(dataset, config.data), config.data, exclude)
        potential, metrics = strategies.pretrain(config, sources, species, pretrain_dir, comm, resume)
        if comm.is_main:
            write_json(pretrain_dir / "metrics.json", metrics)
    return finetune(config, dataset, potential, out_dir, comm, resume)


def _target_config(dataset: Dataset, config: Config):
    _, level = select_level(dataset, config.data.level)
    config.data.level = level
    return config.data


def finetune(config: Config, dataset: Dataset, potential: Potential, out_dir: Path, comm, resume: bool) -> dict[str, Any]:
    """Fine-tune `potential` on the target level's training split."""
    target = split_target(dataset, _target_config(dataset, config))
    config.model = type(config.model)(**strategies.architecture_of(potential))
    potential = strategies.add_target_level(potential.double(), target.level, target.train, config.finetune)
    return train_target(config, potential, target.train, target.val, target.test, out_dir, comm, resume)
