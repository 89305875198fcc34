"""Levels of theory as tasks: the target level's splits and the source levels' data.

The bundled data label the same geometries at every level, so a geometry held out for
validation or testing at the target level would otherwise be seen, at other levels, during
pre-training. `split_levels` removes those geometries from the source levels (geometries are
matched by atomic numbers and positions rounded to 1e-4 Angstrom).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from metamlip.data import Configuration, Dataset, DataError, split_indices
from metamlip.train.config import ConfigError, DataConfig


def geometry_key(config: Configuration) -> bytes:
    """Identifies a geometry across levels: atomic numbers and positions (1e-4 Angstrom)."""
    rounded = np.round(config.positions, 4) + 0.0  # + 0.0 turns -0.0 into 0.0
    return config.numbers.astype(np.int64).tobytes() + rounded.astype(np.float64).tobytes()


@dataclass
class TargetSplit:
    """The target level: training, validation and test sets, and `pool`, everything that is
    neither validation nor test (the training sets of a learning curve are drawn from it)."""

    level: str
    train: Dataset
    val: Dataset
    test: Dataset
    pool: Dataset


@dataclass
class SourceTask:
    level: str
    train: Dataset
    val: Dataset


def split_target(dataset: Dataset, data: DataConfig) -> TargetSplit:
    level = data.level
    part = dataset.select_level(level)
    train_idx, val_idx, test_idx = split_indices(len(part), data.n_train, data.n_val, data.n_test, data.split_seed)
    pool_idx, _, _ = split_indices(len(part), None, data.n_val, data.n_test, data.split_seed)
    if len(val_idx) == 0:
        raise DataError("the validation set is empty: raise data.n_val")
    return TargetSplit(level, part.subset(train_idx), part.subset(val_idx), part.subset(test_idx), part.subset(pool_idx))


def source_levels(dataset: Dataset, data: DataConfig) -> list[str]:
    """The pre-training levels: data.source_levels, or every level in the data but the target."""
    present = dataset.levels()
    if data.source_levels is None:
        chosen = [level for level in present if level != data.level]
    else:
        chosen = [level.strip().lower() for level in data.source_levels]
        missing = [level for level in chosen if level not in present]
        if missing:
            raise ConfigError(f"source level(s) {', '.join(missing)} not in the data (levels present: {', '.join(present)})")
        if data.level in chosen:
            raise ConfigError(f"the target level {data.level!r} cannot also be a source level")
    if not chosen:
        raise ConfigError(f"no source levels to pre-train on (levels present: {', '.join(present)})")
    return chosen


def split_sources(
    dataset: Dataset, levels: list[str], data: DataConfig, exclude: Dataset | None = None
) -> dict[str, SourceTask]:
    """Each source level split into training and validation (data.source_n_val, data.split_seed),
    without the geometries of `exclude`."""
    banned = {geometry_key(c) for c in exclude} if exclude is not None else set()
    tasks = {}
    for level in levels:
        part = Dataset(c for c in dataset.select_level(level) if geometry_key(c) not in banned)
        train_idx, val_idx, _ = split_indices(len(part), None, data.source_n_val, 0, data.split_seed)
        tasks[level] = SourceTask(level, part.subset(train_idx), part.subset(val_idx))
    return tasks


def balanced_order(pool: Dataset, seed: int) -> list[int]:
    """A shuffled order of `pool` that takes molecules in turn, so that every prefix holds the
    molecules in nearly equal numbers (a small training set then determines every level's
    per-element self energies). Prefixes are nested: N=10 is part of N=25."""
    rng = np.random.default_rng([seed, 7])
    by_molecule: dict[str, list[int]] = defaultdict(list)
    for k in rng.permutation(len(pool)):
        by_molecule[pool[int(k)].molecule].append(int(k))
    queues = [by_molecule[name] for name in sorted(by_molecule)]
    queues = [queues[k] for k in rng.permutation(len(queues))]
    order: list[int] = []
    while any(queues):
        for queue in queues:
            if queue:
                order.append(queue.pop(0))
    return order
