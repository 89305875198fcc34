"""Deterministic train / validation / test splits."""

from __future__ import annotations

import numpy as np

from metamlip.data.errors import DataError


def split_indices(
    n_total: int,
    n_train: int | None,
    n_val: int | float,
    n_test: int | float,
    seed: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Shuffle 0..n_total-1 with `seed`; test first, then validation, then training.

    n_val/n_test: counts, or fractions of n_total when < 1. n_train None takes the rest.
    The test and validation sets depend only on (n_total, seed, n_val, n_test), so runs with
    different n_train share them, and a smaller n_train is a prefix of a larger one.
    """
    order = np.random.default_rng(seed).permutation(n_total)
    n_test_count = int(round(n_test * n_total)) if isinstance(n_test, float) and n_test < 1 else int(n_test)
    n_val_count = int(round(n_val * n_total)) if isinstance(n_val, float) and n_val < 1 else int(n_val)
    rest = n_total - n_test_count - n_val_count
    if rest <= 0:
        raise DataError(
            f"only {n_total} configurations: nothing left for training after {n_test_count} test "
            f"and {n_val_count} validation"
        )
    if n_train is None:
        n_train = rest
    if n_train > rest:
        raise DataError(
            f"--n-train {n_train} is more than the {rest} configurations left after "
            f"{n_test_count} test and {n_val_count} validation"
        )
    test = order[:n_test_count]
    val = order[n_test_count : n_test_count + n_val_count]
    train = order[n_test_count + n_val_count : n_test_count + n_val_count + n_train]
    return np.sort(train), np.sort(val), np.sort(test)
