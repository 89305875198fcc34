"""The five ways to use data from other levels of theory, and fine-tuning to the target level.

- scratch:   no pre-training; train on the target level only.
- transfer:  pre-train on one source level (data.transfer_source), then fine-tune.
- joint:     pre-train on all source levels pooled, each with its own self energies, one head.
- multihead: shared body, one energy head per source level, trained jointly; fine-tuning adds
             a head for the target level (initialised as the mean of the others).
- reptile:   meta-train across the source levels (metamlip.meta.reptile), then fine-tune.

Fine-tuning (from any checkpoint) keeps species, cutoff, architecture and energy scale, adds
the target level with self energies fitted on its training data, and trains as a single-level
run (metamlip.train.trainer.Trainer).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from metamlip.data import Dataset, DataError, fit_self_energies, validate_configuration
from metamlip.data.batching import GraphSet
from metamlip.data.self_energies import composition_matrix, energy_scale
from metamlip.meta.reptile import ReptileTrainer
from metamlip.meta.tasks import SourceTask
from metamlip.nn.build import ARCHITECTURE_KEYS, build_potential
from metamlip.nn.checkpoint import load_potential
from metamlip.nn.potential import Potential
from metamlip.nn.repulsion import repulsion_from_config
from metamlip.pretrained import resolve
from metamlip.train.config import Config, ConfigError, FinetuneConfig
from metamlip.train.distributed import SINGLE, Comm
from metamlip.train.metrics import error_metrics, predict
from metamlip.train.trainer import Trainer


def fresh_potential(config: Config, train: Dataset, levels: list[str], species: list[int], n_heads: int = 1) -> Potential:
    """A new model for `levels`: self energies fitted per level on `train`, seeded weights,
    the core repulsion fitted on `train`."""
    repulsion = repulsion_from_config(config.model, species, train.configurations)
    fitted = fit_self_energies(train, species)
    self_energies = torch.from_numpy(np.stack([fitted[level] for level in levels]))
    torch.manual_seed(config.training.seed if config.strategy == "scratch" else config.pretrain.seed)
    potential = build_potential(
        config.model.model_dump(),
        species,
        levels,
        self_energies,
        energy_scale(train, species, {level: fitted[level] for level in levels}),
        n_heads=n_heads,
        head_of_level=list(range(len(levels))) if n_heads > 1 else None,
        repulsion=repulsion,
    )
    return potential


def pretrain_levels(config: Config, sources: dict[str, SourceTask]) -> list[str]:
    if config.strategy != "transfer":
        return list(sources)
    chosen = config.data.transfer_source or next(iter(sources))
    chosen = chosen.strip().lower()
    if chosen not in sources:
        raise ConfigError(f"data.transfer_source {chosen!r} is not a source level ({', '.join(sources)})")
    return [chosen]


def pretrain(
    config: Config,
    sources: dict[str, SourceTask],
    species: list[int],
    out_dir: str | Path,
    comm: Comm = SINGLE,
    resume: bool = False,
) -> tuple[Potential, dict[str, Any]]:
    """Pre-train with config.strategy on `sources`; writes model.ckpt and metrics.json
    (validation errors per level) to out_dir. Returns the model and its metrics."""
    if config.strategy == "scratch":
        raise ConfigError("strategy 'scratch' has no pre-training")
    out_dir = Path(out_dir)
    levels = pretrain_levels(config, sources)
    train = Dataset(c for level in levels for c in sources[level].train)
    val = {level: sources[level].val for level in levels}
    if any(len(v) == 0 for v in val.values()):
        raise DataError("a source level has no validation configurations: raise data.source_n_val")
    n_heads = len(levels) if config.strategy == "multihead" else 1
    settings = config.pretrain
    potential = fresh_potential(config, train, levels, species, n_heads).to(getattr(torch, settings.dtype))
    potential = potential.to(settings.device)
    potential.hipnn.set_implementation(settings.implementation)
    cutoff, progress = config.model.cutoff, settings.progress and comm.is_main
    if config.strategy == "reptile":
        tasks = {level: GraphSet(sources[level].train.configurations, cutoff, progress) for level in levels}
        val_sets = {level: GraphSet(v.configurations, cutoff, progress) for level, v in val.items()}
        trainer = ReptileTrainer(potential, tasks, val_sets, settings, config.reptile, out_dir, config.to_dict(), comm)
        potential = trainer.fit(resume=resume)
        extra = {"outer_steps": trainer.state.outer_step}
    else:
        pooled_val = Dataset(c for v in val.values() for c in v)
        trainer = Trainer(
            potential,
            GraphSet(train.configurations, cutoff, progress),
            GraphSet(pooled_val.configurations, cutoff, progress),
            settings,
            out_dir,
            config.to_dict(),
            comm,
        )
        potential = trainer.fit(resume=resume)
        extra = {"best_epoch": trainer.state.best_epoch, "epochs": trainer.state.epoch}
    metrics = {
        "strategy": config.strategy,
        "levels": levels,
        "validation": error_metrics(predict(potential, GraphSet(Dataset(c for v in val.values() for c in v).configurations, cutoff))),
        **extra,
    }
    return potential, metrics


def load_init(spec: str) -> Potential:
    """The model of a checkpoint file or of ``pretrained:NAME``."""
    return load_potential(resolve(spec))


def _mean_head(potential: Potential) -> None:
    """Set the last head of every output layer to the mean of the other heads."""
    hipnn = potential.hipnn
    with torch.no_grad():
        for head in [hipnn.input_head] + [block.head for block in hipnn.blocks]:
            head.weight[-1] = head.weight[:-1].mean(0)
            head.bias[-1] = head.bias[:-1].mean(0)


def add_target_level(potential: Potential, level: str, train: Dataset, settings: FinetuneConfig) -> Potential:
    """Prepare a pre-trained model for fine-tuning on `level` (in place; returns it).

    A level the model already knows keeps its head and self energies. A new level gets a new
    head if settings.new_head (default: only for multi-head models) and self energies fitted on
    `train`: "data" fits E ~ sum_Z n_Z e_Z; "residual" fits the part the network does not
    predict, E - E_network ~ sum_Z n_Z e_Z, so that fine-tuning starts from the pre-trained
    network's energy differences.
    """
    for c in train:
        validate_configuration(c, potential.species)
    if level not in potential.levels:
        multi = potential.hipnn.n_heads > 1
        new_head = settings.new_head if settings.new_head is not None else multi
        zeros = torch.zeros(len(potential.species), dtype=torch.float64)
        index = potential.add_level(level, zeros, new_head=new_head)
        if new_head and multi:
            _mean_head(potential)
        energies = np.array([c.energy for c in train], dtype=np.float64)
        if settings.self_energies == "residual":
            with torch.enable_grad():
                network = predict(potential, GraphSet(train.configurations, potential.cutoff), level=level).energy_pred
            energies = energies - network
        counts = composition_matrix(train, potential.species)
        fitted, *_ = np.linalg.lstsq(counts, energies, rcond=None)
        potential.self_energies[index] = torch.from_numpy(fitted).to(potential.self_energies)
    return potential


def architecture_of(potential: Potential) -> dict[str, Any]:
    """The model section of a config that describes `potential`."""
    repulsion = potential.repulsion
    shape = (
        {"repulsion": "none"}
        if repulsion is None
        else {
            "repulsion": "zbl",
            "repulsion_inner": repulsion.inner_fraction,
            "repulsion_outer": repulsion.outer_fraction,
            "repulsion_max_outer": repulsion.covalent_cap,
        }
    )
    return {**{k: potential.architecture[k] for k in ARCHITECTURE_KEYS}, "species": list(potential.species), **shape}
