"""Training configuration: a YAML file (schema in README.md) plus command-line overrides."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


class ConfigError(ValueError):
    """A configuration key is unknown or has an invalid value (the message names the key)."""


@dataclass
class DataConfig:
    files: list[str] = field(default_factory=list)  # paths; "path::level" gives a default level
    level: str | None = None  # level to train on; None = the only level present
    n_train: int | None = None  # None = all remaining after validation and test
    n_val: float = 0.1  # count, or fraction when < 1
    n_test: float = 0.1  # count, or fraction when < 1
    split_seed: int = 0


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
    patience: int = 30  # epochs without validation improvement before stopping
    lr_patience: int = 8
    lr_factor: float = 0.5
    min_lr: float = 1e-5
    energy_weight: float = 1.0  # on (eV/atom)^2
    force_weight: float = 1.0  # on (eV/A)^2
    grad_clip: float = 10.0
    checkpoint_every: int = 200  # optimiser steps
    implementation: str = "torch"
    progress: bool = True


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    out: str = "runs/model"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


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
    known = {"data", "model", "training", "out"}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"config: unknown top-level key(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})")
    config = Config(
        data=_fill(DataConfig, values.get("data"), "data"),
        model=_fill(ModelConfig, values.get("model"), "model"),
        training=_fill(TrainingConfig, values.get("training"), "training"),
        out=str(values.get("out", "runs/model")),
    )
    validate_config(config)
    return config


def load_config(path: str | Path | None) -> Config:
    """Read a YAML config (None gives the defaults)."""
    if path is None:
        return Config()
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: config file not found")
    with open(path) as handle:
        try:
            values = yaml.safe_load(handle)
        except yaml.YAMLError as error:
            raise ConfigError(f"{path}: not valid YAML: {error}") from error
    try:
        return config_from_dict(values or {})
    except ConfigError as error:
        raise ConfigError(f"{path}: {error}") from error


def validate_config(config: Config) -> None:
    t, m = config.training, config.model
    if t.dtype not in ("float32", "float64"):
        raise ConfigError(f"training.dtype must be float32 or float64, got {t.dtype!r}")
    if t.implementation not in ("torch", "cpp"):
        raise ConfigError(f"training.implementation must be 'torch' or 'cpp', got {t.implementation!r}")
    for name in ("batch_size", "max_epochs", "checkpoint_every"):
        if getattr(t, name) < 1:
            raise ConfigError(f"training.{name} must be >= 1, got {getattr(t, name)}")
    if t.learning_rate <= 0:
        raise ConfigError(f"training.learning_rate must be positive, got {t.learning_rate}")
    if not 0 < m.soft_min < m.soft_max <= m.cutoff:
        raise ConfigError(
            f"model: need 0 < soft_min < soft_max <= cutoff, got {m.soft_min}, {m.soft_max}, {m.cutoff}"
        )
    if m.n_interactions < 1 or m.n_atom_layers < 1 or m.n_features < 1 or m.n_sensitivities < 1:
        raise ConfigError("model: n_interactions, n_atom_layers, n_features and n_sensitivities must be >= 1")
