"""Training configuration: a YAML file (schema in README.md) plus command-line overrides.

One pydantic model per section; a new key is one annotated field (type, range, default) in its
section. Every error names the key the way the YAML spells it (`model.n_features: ...`).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator, model_validator

STRATEGIES = ("scratch", "transfer", "joint", "multihead", "reptile")


class ConfigError(ValueError):
    """A configuration key is unknown or has an invalid value (the message names the key)."""


def _no_bool(value: Any) -> Any:
    """YAML `true` is not a number (pydantic's lax mode would read it as 1)."""
    if isinstance(value, bool):
        raise ValueError("expected a number, not a boolean")
    return value


Int = Annotated[int, Field(strict=True)]  # YAML ints only: "16", 16.5 and true are refused
Count = Annotated[int, Field(strict=True, ge=1)]
Float = Annotated[float, BeforeValidator(_no_bool)]  # ints and strings like "1e-3" (PyYAML reads them as text) accepted
Positive = Annotated[float, BeforeValidator(_no_bool), Field(gt=0)]
NonNegative = Annotated[float, BeforeValidator(_no_bool), Field(ge=0)]
Fraction = Annotated[float, BeforeValidator(_no_bool), Field(gt=0, lt=1)]


def _count_or_fraction(value: Any) -> Any:
    """n_val / n_test: a fraction of the data in [0, 1), or a whole count >= 1."""
    value = _no_bool(value)
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise ValueError("expected a count or a fraction in [0, 1)") from None
    if not isinstance(value, (int, float)):
        raise ValueError("expected a count or a fraction in [0, 1)")
    if value < 0:
        raise ValueError("must be a count >= 0 or a fraction in [0, 1)")
    if value >= 1 and value != int(value):
        raise ValueError("a value >= 1 is a count and must be a whole number")
    return int(value) if value >= 1 else value


CountOrFraction = Annotated[int | float, BeforeValidator(_count_or_fraction)]


def _list_not_string(value: Any) -> Any:
    if isinstance(value, str):
        raise ValueError(f"expected a list, e.g. [{value}], not a string")
    return value


class Section(BaseModel):
    """Base of every section: unknown keys are refused; defaults are checked too."""

    model_config = ConfigDict(extra="forbid", validate_default=True)


class DataConfig(Section):
    files: Annotated[list[str], BeforeValidator(_list_not_string)] = Field(default_factory=list)  # paths or globs; "path::level" gives a default level
    level: str | None = None  # target level; None = the only level present (or pre-train only)
    n_train: Count | None = None  # None = all remaining after validation and test
    n_val: CountOrFraction = 0.1  # count, or fraction when < 1
    n_test: CountOrFraction = 0.1  # count, or fraction when < 1
    split_seed: Int = 0
    source_levels: Annotated[list[str], BeforeValidator(_list_not_string)] | None = None  # pre-training levels; None = every level but `level`
    transfer_source: str | None = None  # the source of `transfer`; None = the first source level
    source_n_val: CountOrFraction = 0.1  # validation part of each source level during pre-training
    exclude_target_geometries: bool = True  # keep target validation/test geometries out of pre-training


class ModelConfig(Section):
    n_features: Count = 64
    n_sensitivities: Count = 20
    n_interactions: Count = 2
    n_atom_layers: Count = 3
    cutoff: Positive = 5.0  # Angstrom
    soft_min: Positive = 0.75  # Angstrom
    soft_max: Positive = 4.0  # Angstrom
    tensor_order: Literal[0, 1, 2] = 0  # 0 = HIP-NN; 1, 2 = HIP-NN-TS (vector, and quadrupole, sensitivities)
    species: Annotated[list[Annotated[int, Field(strict=True, ge=1, le=118)]], BeforeValidator(_list_not_string)] | None = None  # atomic numbers; None = the elements in the data
    repulsion: Literal["zbl", "none"] = "zbl"  # core repulsion added to the network (nn/repulsion.py)
    repulsion_inner: Annotated[float, BeforeValidator(_no_bool), Field(ge=0, lt=1)] = 0.5  # inner radius / outer radius (pure ZBL inside the inner radius)
    repulsion_outer: Annotated[float, BeforeValidator(_no_bool), Field(gt=0, le=1)] = 0.85  # outer radius / shortest distance of the element pair in the training data
    repulsion_max_outer: Positive = 2.0  # outer radius at most this x the sum of the pair's covalent radii

    @model_validator(mode="after")
    def _radii_ordered(self) -> ModelConfig:
        if not self.soft_min < self.soft_max <= self.cutoff:
            raise ValueError(f"need 0 < soft_min < soft_max <= cutoff, got {self.soft_min}, {self.soft_max}, {self.cutoff}")
        return self


class TrainingConfig(Section):
    """Target-level training. Defaults: the small-data protocol chosen by measurement
    (README, "Training protocol"): batches of 4, Adam at 1e-2 with 200 warm-up steps and a
    cosine decay over 6000 steps, EMA of the weights (0.99) for validation and the saved model."""

    seed: Int = 0
    dtype: Literal["float32", "float64"] = "float32"
    batch_size: Count = 4
    learning_rate: Positive = 1e-2
    max_epochs: Count | None = None  # None = max_steps decides alone
    epoch_size: Count | None = None  # configurations per epoch; None = the training set (more = several passes)
    max_steps: Count | None = 6000  # optimiser steps; None = max_epochs decides alone
    patience: Annotated[int, Field(strict=True, ge=0)] = 30  # epochs without validation improvement before stopping (when patience_steps is null)
    patience_steps: Count | None = 3000  # optimiser steps without validation improvement before stopping; null = use patience (epochs)
    schedule: Literal["plateau", "cosine", "constant"] = "cosine"  # learning rate after warm-up (metamlip.train.schedule)
    warmup_steps: Annotated[int, Field(strict=True, ge=0)] = 200  # linear learning-rate warm-up
    ema_decay: Annotated[float, BeforeValidator(_no_bool), Field(gt=0, lt=1)] | None = 0.99  # EMA of the weights (validated and saved); None = off
    lr_patience: Annotated[int, Field(strict=True, ge=0)] = 8
    lr_factor: Fraction = 0.5
    min_lr: NonNegative = 1e-5
    energy_weight: NonNegative = 1.0  # on (eV/atom)^2
    force_weight: NonNegative = 1.0  # on (eV/A)^2
    grad_clip: Positive = 10.0
    checkpoint_every: Count = 200  # optimiser steps
    implementation: Literal["cpp", "torch"] = "cpp"  # pair sums: C++ ops, or "torch" (reference)
    device: str = "cpu"  # "cpu" or "cuda[:N]"; pretrain.device defaults to training.device
    progress: bool = True

    @field_validator("device")
    @classmethod
    def _device(cls, value: str) -> str:
        if not re.fullmatch(r"cpu|cuda(:\d+)?", value):
            raise ValueError(f"must be 'cpu' or 'cuda[:N]', got {value!r}")
        return value

    @model_validator(mode="after")
    def _some_limit(self) -> TrainingConfig:
        if self.max_epochs is None and self.max_steps is None:
            raise ValueError("max_epochs and max_steps are both null: set one of them")
        return self

    @model_validator(mode="after")
    def _some_weight(self) -> TrainingConfig:
        if self.energy_weight == 0 and self.force_weight == 0:
            raise ValueError("energy_weight and force_weight are both 0: nothing to train")
        return self


class PretrainConfig(TrainingConfig):
    """Pre-training on the source levels (many frames): the protocol the meta-learning results
    were measured with (README, "Meta-learning"): batches of 16, Adam at 1e-3, reduce on
    plateau, early stopping after 30 epochs, no EMA."""

    batch_size: Count = 16
    learning_rate: Positive = 1e-3
    max_epochs: Count | None = 300
    max_steps: Count | None = None
    patience_steps: Count | None = None
    schedule: Literal["plateau", "cosine", "constant"] = "plateau"
    warmup_steps: Annotated[int, Field(strict=True, ge=0)] = 0
    ema_decay: Annotated[float, BeforeValidator(_no_bool), Field(gt=0, lt=1)] | None = None


class ReptileConfig(Section):
    """Reptile across levels of theory (Nichol et al. 2018); defaults chosen on our data (README)."""

    outer_steps: Count = 2000
    inner_steps: Count = 8  # k: optimiser steps on one task per outer step
    inner_optimizer: Literal["adam", "sgd"] = "adam"
    inner_lr: Positive = 1e-3
    inner_state: Literal["carry", "reset"] = "carry"  # "carry": optimiser state kept across outer steps; "reset": fresh each time
    outer_lr: Annotated[float, BeforeValidator(_no_bool), Field(gt=0, le=1)] = 1.0  # epsilon at the first outer step
    outer_lr_end: Annotated[float, BeforeValidator(_no_bool), Field(ge=0, le=1)] = 0.0  # epsilon at the last outer step
    outer_schedule: Literal["linear", "cosine", "constant"] = "linear"
    meta_batch_size: Count = 1  # tasks per outer step (their updates are averaged)
    task_sampling: Literal["random", "cycle"] = "random"  # "random" (without replacement within a meta-batch) or "cycle"
    eval_every: Count = 100  # outer steps between validations (and log rows)


class FinetuneConfig(Section):
    """How a pre-trained model is adapted to the target level. Defaults chosen by measurement on
    leave-out splits (README, "Training protocol", bench/finetune_protocol.py): Adam at 3e-3 for
    3000 steps, every weight from the first step (no heads-first phase), no L2-SP."""

    self_energies: Literal["residual", "data"] = "residual"  # "residual": fit to E - model(E) on the training data; "data": fit to E
    new_head: bool | None = None  # a new energy head for the target level; None = only for multi-head models
    freeze_body: bool = False  # train only the energy heads
    head_steps: Annotated[int, Field(strict=True, ge=0)] = 0  # first optimiser steps train only the energy heads, then every weight (README, "Training protocol": 500 helps when the start is far from the data)
    learning_rate: Positive | None = 3e-3  # peak learning rate when fine-tuning; null = training.learning_rate
    max_steps: Count | None = 3000  # optimiser steps when fine-tuning; null = training.max_steps
    l2sp: NonNegative = 0.0  # L2-SP: pull towards the pre-trained weights, strength * (w - w0) added to the gradient


SECTIONS: dict[str, type[Section]] = {
    "data": DataConfig,
    "model": ModelConfig,
    "training": TrainingConfig,
    "pretrain": PretrainConfig,
    "reptile": ReptileConfig,
    "finetune": FinetuneConfig,
}


class Config(Section):
    strategy: Literal[STRATEGIES] = "scratch"  # type: ignore[valid-type]
    init: str | None = None  # checkpoint (or pretrained:NAME) to fine-tune from
    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    pretrain: TrainingConfig = Field(default_factory=PretrainConfig)  # a mapping is read as PretrainConfig
    reptile: ReptileConfig = Field(default_factory=ReptileConfig)
    finetune: FinetuneConfig = Field(default_factory=FinetuneConfig)
    out: str = "runs/model"

    @model_validator(mode="before")
    @classmethod
    def _empty_sections(cls, values: Any) -> Any:
        """`model:` with nothing under it (YAML null) means the defaults."""
        if isinstance(values, dict):
            values = {k: ({} if k in SECTIONS and v is None else v) for k, v in values.items()}
        return values

    @field_validator("pretrain", mode="before")
    @classmethod
    def _pretrain_defaults(cls, value: Any) -> Any:
        """Keys missing from a `pretrain:` mapping take the pre-training defaults."""
        return PretrainConfig.model_validate(value) if isinstance(value, dict) else value

    @model_validator(mode="after")
    def _pretrain_device(self) -> Config:
        """Where to run is a property of the machine: pre-training follows training.device unless set."""
        if "device" not in self.pretrain.model_fields_set:
            self.pretrain.device = self.training.device
        return self

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump()


def _section_class(location: tuple) -> type[BaseModel] | None:
    cls: type[BaseModel] = Config
    for part in location:
        if not isinstance(part, str) or part not in cls.model_fields:
            return None
        annotation = cls.model_fields[part].annotation
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return None
        cls = annotation
    return cls


def _messages(error: ValidationError) -> list[str]:
    """One readable message per problem, named by its key: `model.n_features: ...`."""
    unknown: dict[tuple, list[str]] = {}
    messages = []
    for item in error.errors():
        location = tuple(item["loc"])
        if item["type"] == "extra_forbidden":
            unknown.setdefault(location[:-1], []).append(str(location[-1]))
            continue
        # Strip pydantic's union and validator labels (e.g. `n_train.int`, `function-after[...]`)
        names = [str(p) for p in location if not (isinstance(p, str) and (p in ("int", "float", "str", "list[str]", "none") or "[" in p))]
        key = ".".join(names) or "config"
        text = item["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
        if item["type"] in ("model_type", "dict_type") and _section_class(location) is not None:
            text = "expected a mapping of keys"
        elif item["type"] not in ("value_error", "assertion_error"):
            text = text[0].lower() + text[1:] + f", got {item['input']!r}"
        messages.append(f"{key}: {text}")
    for parent, keys in unknown.items():
        cls = _section_class(parent)
        known = ", ".join(cls.model_fields) if cls is not None else ""
        where = ".".join(map(str, parent)) or "config"
        kind = "top-level key(s)" if not parent else "key(s)"
        messages.insert(0, f"{where}: unknown {kind} {', '.join(sorted(keys))} (known: {known})")
    return messages


def config_from_dict(values: dict[str, Any] | None) -> Config:
    """Validate a mapping (a parsed YAML file) into a Config; raises ConfigError naming the key."""
    try:
        return Config.model_validate(dict(values or {}))
    except ValidationError as error:
        raise ConfigError("; ".join(_messages(error))) from None


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


def validate_config(config: Config) -> Config:
    """Check a Config again after keys were set in code (command-line overrides); returns it re-validated."""
    return config_from_dict(config.model_dump())
