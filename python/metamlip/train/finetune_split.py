"""The split of the one-command fine-tune (`metamlip-train --init CKPT --n-train N ...`).

Counts the user set (in the YAML file or by a flag) are kept; the others are chosen by N:
validation = 20% of N, at least 5 and at most 100 configurations; test = every configuration of
the target level left after training and validation, at most 1000. Without --n-train: the usual
10% validation and 10% test, training on the rest. (How to train, the `training` section, has
the same defaults for fine-tuning as for any run: metamlip.train.config.)
"""

from __future__ import annotations

from metamlip.data import DataError
from metamlip.train.config import DataConfig

VAL_FRACTION = 0.2  # of N
MIN_VAL, MAX_VAL = 5, 100
MAX_TEST = 1000


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
