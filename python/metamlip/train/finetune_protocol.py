"""Defaults of the one-command fine-tune (`metamlip-train --init CKPT --n-train N ...`).

Keys the user set (in the YAML file or by a flag) are kept; the others get the values below,
chosen by the number of training configurations N:

* split: validation = 20% of N, at least 5 and at most 100 configurations; test = every
  configuration of the target level left after training and validation, at most 1000. Without
  --n-train: the usual 10% validation and 10% test, training on the rest.
* training: the fine-tuning settings measured in README ("Fine-tuning it vs training from
  scratch"): batches of 16, learning rate 2e-3 with reduce-on-plateau (patience 5 epochs), epochs
  of at least 160 configurations (10 optimiser steps), at most 60 epochs, stopping after 15
  epochs without validation improvement.
"""

from __future__ import annotations

from typing import Any

from metamlip.data import DataError
from metamlip.train.config import DataConfig, TrainingConfig

VAL_FRACTION = 0.2  # of N
MIN_VAL, MAX_VAL = 5, 100
MAX_TEST = 1000
MIN_EPOCH_SIZE = 160  # configurations per epoch: validation (and early stopping) every >= 10 steps at batch 16


def training_protocol(n_train: int) -> dict[str, Any]:
    """training.* defaults for fine-tuning on `n_train` configurations."""
    return {
        "batch_size": 16,
        "learning_rate": 2e-3,
        "max_epochs": 60,
        "epoch_size": max(MIN_EPOCH_SIZE, n_train),
        "patience": 15,
        "lr_patience": 5,
    }


def _count(value: int | float, n_total: int) -> int:
    """A count, or a fraction of n_total (as metamlip.data.split_indices reads n_val/n_test)."""
    return int(round(value * n_total)) if isinstance(value, float) and value < 1 else int(value)


def default_val(n_train: int) -> int:
    return min(MAX_VAL, max(MIN_VAL, round(VAL_FRACTION * n_train)))


def apply_split_defaults(data: DataConfig, n_total: int, level: str) -> int:
    """Set data.n_val / data.n_test to counts where the user gave none; returns N (training
    configurations). Raises DataError when the level's `n_total` configurations are too few."""
    given = data.model_fields_set
    if data.n_train is None:
        n_val, n_test = _count(data.n_val, n_total), _count(data.n_test, n_total)
        n_train = n_total - n_val - n_test
        if n_train < 1 or n_val < 1:
            raise DataError(
                f"the data hold {n_total} configurations at level {level}: too few for {n_val} validation, "
                f"{n_test} test and at least one training configuration"
            )
    else:
        n_train = data.n_train
        n_val = _count(data.n_val, n_total) if "n_val" in given else default_val(n_train)
        n_test = _count(data.n_test, n_total) if "n_test" in given else min(MAX_TEST, n_total - n_train - n_val)
        spare = n_total - n_val - max(n_test, 1)
        if n_train > spare or n_val < 1:
            test = f"{n_test} for testing" if "n_test" in given else "at least 1 for testing"
            raise DataError(
                f"--n-train {n_train}: the data hold only {n_total} configurations at level {level}; with "
                f"{n_val} for validation and {test}, at most {max(spare, 0)} can train (choose a smaller "
                "--n-train, or set --n-val/--n-test)"
            )
    data.n_val, data.n_test = n_val, n_test
    return n_train


def apply_training_defaults(training: TrainingConfig, n_train: int) -> dict[str, Any]:
    """Set the training keys the user did not set to training_protocol(n_train); returns them."""
    applied = {k: v for k, v in training_protocol(n_train).items() if k not in training.model_fields_set}
    for key, value in applied.items():
        setattr(training, key, value)
    return applied
