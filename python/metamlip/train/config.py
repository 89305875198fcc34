"""Training configuration: a YAML file (schema in README.md) plus command-line overrides."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from metamlip.train.schedule import SCHEDULES

STRATEGIES = ("scratch", "transfer", "joint", "multihead", "reptile")


class ConfigError(ValueError):
    """A configuration key is unknown or has an invalid value (the message names the key)."""


@dataclass
class DataConfig:
    files: list[str] = field(default_factory=list)  # paths or globs; "path::level" gives a default level
    level: str | None = None  # target level; None = the only level present (or pre-train only)
    n_train: int | None = None  # None = all remaining after validation and test
    n_val: float = 0.1  # count, or fraction when < 1
    n_test: float = 0.1  # count, or fraction when < 1
    split_seed: int = 0
    source_levels: list[str] | None = None  # pre-training levels; None = every level but `level`
    transfer_source: str | None = None  # the source of `transfer`; None = the first source level
    source_n_val: float = 0.1  # validation part of each source level during pre-training
    exclude_target_geometries: bool = True  # keep target validation/test geometries out of pre-training


@dataclass
class ModelConfig:
    n_features: int = 64
    n_sensitivities: int = 20
    n_interactions: int = 2
    n_atom_layers: int = 3
    cutoff: float = 5.0  # Angstrom
    soft_min: float = 0.75  # Angstrom
    soft_max: float = 4.0  # Angstrom
    species: list[int] | None = None  # atomic numbers; None = the elements in the data


@dataclass
class TrainingConfig:
    seed: int = 0
    dtype: str = "float32"
    batch_size: int = 16
    learning_rate: float = 1e-3
    max_epochs: int = 300
    epoch_size: int | None = None  # configurations per epoch; None = the training set (more = several passes)
    max_steps: int | None = None  # optimiser steps; None = max_epochs decides alone
    patience: int = 30  # epochs without validation improvement before stopping
    patience_steps: int | None = None  # optimiser steps without improvement before stopping; replaces patience
    schedule: str = "plateau"  # learning rate: "plateau" (reduce on plateau), "cosine" (to min_lr) or "constant"
    warmup_steps: int = 0  # linear learning-rate warm-up
    ema_decay: float | None = None  # exponential moving average of the weights (e.g. 0.99); None = off
    lr_patience: int = 8
    lr_factor: float = 0.5
    min_lr: float = 1e-5
    energy_weight: float = 1.0  # on (eV/atom)^2
    force_weight: float = 1.0  # on (eV/A)^2
    grad_clip: float = 10.0
    checkpoint_every: int = 200  # optimiser steps
    implementation: str = "cpp"  # pair sums: C++ ops, or "torch" (reference)
    device: str = "cpu"  # "cpu" or "cuda[:N]"
    progress: bool = True


@dataclass
class ReptileConfig:
    """Reptile across levels of theory (Nichol et al. 2018); defaults chosen on our data (README)."""

    outer_steps: int = 2000
    inner_steps: int = 8  # k: optimiser steps on one task per outer step
    inner_optimizer: str = "adam"  # "adam" or "sgd"
    inner_lr: float = 1e-3
    inner_state: str = "carry"  # "carry": optimiser state kept across outer steps; "reset": fresh each time
    outer_lr: float = 1.0  # epsilon at the first outer step
    outer_lr_end: float = 0.0  # epsilon at the last outer step
    outer_schedule: str = "linear"  # "linear", "cosine" or "constant"
    meta_batch_size: int = 1  # tasks per outer step (their updates are averaged)
    task_sampling: str = "random"  # "random" (without replacement within a meta-batch) or "cycle"
    eval_every: int = 100  # outer steps between validations (and log rows)


@dataclass
class FinetuneConfig:
    """How a pre-trained model is adapted to the target level."""

    self_energies: str = "residual"  # "residual": fit to E - model(E) on the training data; "data": fit to E
    new_head: bool | None = None  # a new energy head for the target level; None = only for multi-head models
    freeze_body: bool = False  # train only the energy heads
    l2sp: float = 0.0  # L2-SP: strength of the pull towards the pre-trained weights (0 = off)


@dataclass
class Config:
    strategy: str = "scratch"
    init: str | None = None  # checkpoint (or pretrained:NAME) to fine-tune from
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    pretrain: TrainingConfig = field(default_factory=TrainingConfig)
    reptile: ReptileConfig = field(default_factory=ReptileConfig)
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    out: str = "runs/model"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


SECTIONS = {
    "data": DataConfig,
    "model": ModelConfig,
    "training": TrainingConfig,
    "pretrain": TrainingConfig,
    "reptile": ReptileConfig,
    "finetune": FinetuneConfig,
}


def _fill(cls, values: dict[str, Any], where: str):
    if values is None:
        return cls()
    if not isinstance(values, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(values).__name__}")
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)} (known: {', '.join(known)})")
    return cls(**values)


def config_from_dict(values: dict[str, Any]) -> Config:
    values = dict(values or {})
    known = set(SECTIONS) | {"strategy", "init", "out"}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"config: unknown top-level key(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})")
    sections = {name: _fill(cls, values.get(name), name) for name, cls in SECTIONS.items()}
    init = values.get("init")
    config = Config(
        strategy=str(values.get("strategy", "scratch")),
        init=None if init is None else str(init),
        out=str(values.get("out", "runs/model")),
        **sections,
    )
    validate_config(config)
    return config


def load_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: config file not found")
    with open(path) as handle:
        try:
            values = yaml.safe_load(handle)
        except yaml.YAMLError as error:
            raise ConfigError(f"{path}: not valid YAML: {error}") from error
    if values is not None and not isinstance(values, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return values or {}


def load_config(path: str | Path | None) -> Config:
    """Read a YAML config (None gives the defaults)."""
    if path is None:
        return Config()
    values = load_yaml(path)
    try:
        return config_from_dict(values)
    except ConfigError as error:
        raise ConfigError(f"{path}: {error}") from error


def _validate_training(t: TrainingConfig, where: str) -> None:
    if t.dtype not in ("float32", "float64"):
        raise ConfigError(f"{where}.dtype must be float32 or float64, got {t.dtype!r}")
    if t.implementation not in ("torch", "cpp"):
        raise ConfigError(f"{where}.implementation must be 'torch' or 'cpp', got {t.implementation!r}")
    for name in ("batch_size", "max_epochs", "checkpoint_every"):
        if getattr(t, name) < 1:
            raise ConfigError(f"{where}.{name} must be >= 1, got {getattr(t, name)}")
    if t.device != "cpu" and not t.device.startswith("cuda"):
        raise ConfigError(f"{where}.device must be 'cpu' or 'cuda[:N]', got {t.device!r}")
    if t.epoch_size is not None and t.epoch_size < 1:
        raise ConfigError(f"{where}.epoch_size must be >= 1 or null, got {t.epoch_size}")
    if t.schedule not in SCHEDULES:
        raise ConfigError(f"{where}.schedule must be one of {', '.join(SCHEDULES)}, got {t.schedule!r}")
    for name in ("max_steps", "patience_steps"):
        if getattr(t, name) is not None and getattr(t, name) < 1:
            raise ConfigError(f"{where}.{name} must be >= 1 or null, got {getattr(t, name)}")
    if t.warmup_steps < 0:
        raise ConfigError(f"{where}.warmup_steps must be >= 0, got {t.warmup_steps}")
    if t.ema_decay is not None and not 0 < t.ema_decay < 1:
        raise ConfigError(f"{where}.ema_decay must be in (0, 1) or null, got {t.ema_decay}")
    if t.learning_rate <= 0:
        raise ConfigError(f"{where}.learning_rate must be positive, got {t.learning_rate}")


def _validate_reptile(r: ReptileConfig) -> None:
    choices = {
        "inner_optimizer": ("adam", "sgd"),
        "inner_state": ("carry", "reset"),
        "outer_schedule": ("linear", "cosine", "constant"),
        "task_sampling": ("random", "cycle"),
    }
    for name, allowed in choices.items():
        if getattr(r, name) not in allowed:
            raise ConfigError(f"reptile.{name} must be one of {', '.join(allowed)}, got {getattr(r, name)!r}")
    for name in ("outer_steps", "inner_steps", "meta_batch_size", "eval_every"):
        if getattr(r, name) < 1:
            raise ConfigError(f"reptile.{name} must be >= 1, got {getattr(r, name)}")
    if r.inner_lr <= 0 or not 0 < r.outer_lr <= 1 or not 0 <= r.outer_lr_end <= 1:
        raise ConfigError("reptile: need inner_lr > 0, 0 < outer_lr <= 1 and 0 <= outer_lr_end <= 1")


def validate_config(config: Config) -> None:
    m = config.model
    if config.strategy not in STRATEGIES:
        raise ConfigError(f"strategy must be one of {', '.join(STRATEGIES)}, got {config.strategy!r}")
    _validate_training(config.training, "training")
    _validate_training(config.pretrain, "pretrain")
    _validate_reptile(config.reptile)
    if config.finetune.self_energies not in ("residual", "data"):
        raise ConfigError(f"finetune.self_energies must be 'residual' or 'data', got {config.finetune.self_energies!r}")
    if config.finetune.l2sp < 0:
        raise ConfigError(f"finetune.l2sp must be >= 0, got {config.finetune.l2sp}")
    if not 0 < m.soft_min < m.soft_max <= m.cutoff:
        raise ConfigError(
            f"model: need 0 < soft_min < soft_max <= cutoff, got {m.soft_min}, {m.soft_max}, {m.cutoff}"
        )
    if m.n_interactions < 1 or m.n_atom_layers < 1 or m.n_features < 1 or m.n_sensitivities < 1:
        raise ConfigError("model: n_interactions, n_atom_layers, n_features and n_sensitivities must be >= 1")
