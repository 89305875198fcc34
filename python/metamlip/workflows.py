"""`metamlip-train` from a Config to a trained model: the strategies put together.

strategy scratch: train on one level (metamlip.train.run). Any other strategy: pre-train on the
source levels into OUT/pretrain (or into OUT when no target level is given; metamlip.meta),
then fine-tune on the target level into OUT. With `init`, fine-tune that checkpoint directly:
the one-command fine-tune, with the split chosen by N where the user set none
(metamlip.train.finetune_split) and, when asked, the same architecture trained from scratch on
the same frames into OUT/scratch and compared with it on the test set.
This module sits above train and meta (data -> nn -> train -> meta -> workflows -> cli).
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

from metamlip import pretrained
from metamlip.atomic import clean_stale_temporaries
from metamlip.data import Dataset
from metamlip.data.batching import GraphSet
from metamlip.meta import strategies
from metamlip.meta.tasks import source_levels, split_sources, split_target
from metamlip.nn.checkpoint import load_potential
from metamlip.nn.potential import Potential
from metamlip.nn.repulsion import repulsion_from_config
from metamlip.train import distributed, finetune_split
from metamlip.train.config import Config, ConfigError
from metamlip.train.device import torch_device
from metamlip.train.metrics import predict
from metamlip.train.report import RunResult, write_comparison, write_metrics_csv
from metamlip.train.run import read_data_files, select_level, train_scratch, train_target, validate_all, write_json

RUN_FILES = ("last.ckpt", "pretrain/last.ckpt", "scratch/last.ckpt")
SCRATCH_DIR = "scratch"  # --compare-scratch: the run from scratch, inside OUT


def check_out_dir(out_dir: Path, resume: bool) -> None:
    """Refuse an --out that is a file, a new run over an old one, and --resume without a run."""
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError(f"--out {out_dir}: is a file, not a directory; choose another --out")
    has_run = any((out_dir / name).exists() for name in RUN_FILES)
    if has_run and not resume:
        raise ConfigError(f"{out_dir} already holds a training run: pass --resume to continue it or choose another --out")
    if resume and not has_run:
        raise ConfigError(f"--resume: {out_dir} holds no training run to continue (no last.ckpt); drop --resume to start one")


def run_training(config: Config, resume: bool = False, compare_scratch: bool = False) -> dict[str, Any]:
    """Train (and/or pre-train) as the config says; returns the metrics written to metrics.json
    (and metrics.csv). compare_scratch (with config.init only): also train from scratch and
    compare; the returned metrics then hold the printed table under "comparison".

    Under torchrun the processes share the work (metamlip.train.distributed); rank 0 writes.
    """
    if compare_scratch and config.init is None:
        raise ConfigError("--compare-scratch compares fine-tuning with training from scratch: give --init CKPT (or pretrained:NAME) to fine-tune")
    out_dir = Path(config.out)
    check_out_dir(out_dir, resume)
    metrics = _run(config, out_dir, resume, compare_scratch)
    if "validation" in metrics:
        write_metrics_csv(metrics, out_dir / "metrics.csv")
    return metrics


def _run(config: Config, out_dir: Path, resume: bool, compare_scratch: bool) -> dict[str, Any]:
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
        return finetune_init(config, dataset, out_dir, comm, resume, compare_scratch)
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
    """Fine-tune `potential` on the target level's training split. A model without core
    repulsion (one trained before it existed) gets one fitted on that split, unless
    model.repulsion is "none"; it is zero on every training configuration."""
    target = split_target(dataset, _target_config(dataset, config))
    if potential.repulsion is None:
        potential.repulsion = repulsion_from_config(config.model, potential.species, target.train.configurations)
    config.model = type(config.model)(**strategies.architecture_of(potential))
    potential = strategies.add_target_level(potential.double(), target.level, target.train, config.finetune)
    return train_target(config, potential, target.train, target.val, target.test, out_dir, comm, resume)


def finetune_init(config: Config, dataset: Dataset, out_dir: Path, comm, resume: bool, compare_scratch: bool) -> dict[str, Any]:
    """Fine-tune config.init on the target level, with the split chosen by N where the user set
    none (metamlip.train.finetune_split); with compare_scratch, then train the same architecture
    from scratch with the same split and settings into OUT/scratch."""
    config.init = pretrained.canonical_spec(config.init)  # the run records the model an alias meant
    potential = strategies.load_init(config.init)
    level = _target_config(dataset, config).level
    n_train = finetune_split.apply_split_defaults(config.data, len(dataset.select_level(level)), level)
    if comm.is_main:
        print(
            f"fine-tuning {config.init} on {level}: {n_train} training, {config.data.n_val} validation, "
            f"{config.data.n_test} test configurations",
            flush=True,
        )
    metrics = finetune(config, dataset, potential, out_dir, comm, resume)
    if not compare_scratch:
        return metrics
    scratch = config.model_copy(deep=True)  # same split, settings and (after finetune) architecture
    scratch.init, scratch.strategy, scratch.out = None, "scratch", str(out_dir / SCRATCH_DIR)
    scratch_dir = out_dir / SCRATCH_DIR
    if comm.is_main:
        print(f"training the same architecture from scratch on the same frames into {scratch_dir}", flush=True)
    scratch_metrics = train_scratch(scratch, dataset, scratch_dir, comm, resume and (scratch_dir / "last.ckpt").exists())
    if not comm.is_main:
        return metrics
    write_metrics_csv(scratch_metrics, scratch_dir / "metrics.csv")
    test = split_target(dataset, config.data).test
    results = [
        _result("fine-tuned", config.init, out_dir, test, n_train, metrics),
        _result("scratch", "scratch", scratch_dir, test, n_train, scratch_metrics),
    ]
    title = f"{level}, N = {n_train}: fine-tuned from {config.init} vs from scratch"
    return {**metrics, "comparison": write_comparison(results, out_dir, title)}


def _result(name: str, start: str, run_dir: Path, test: Dataset, n_train: int, metrics: dict[str, Any]) -> RunResult:
    """The best model of the run in run_dir evaluated on the test set, with its training log."""
    potential = load_potential(run_dir / "model.ckpt")
    with open(run_dir / "train_log.csv", newline="") as handle:
        log = [{k: float(v) if v else math.nan for k, v in row.items()} for row in csv.DictReader(handle)]
    predictions = predict(potential, GraphSet(test.configurations, potential.cutoff))
    return RunResult(name, start, predictions, log, n_train, metrics["best_epoch"])
