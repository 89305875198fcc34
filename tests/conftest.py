"""Shared pytest set-up."""

import os

# Idle OpenMP threads sleep instead of spinning: on a loaded 2-core machine spinning threads made
# torch 10-27x slower. Must be set before torch (and its libgomp) is loaded.
os.environ.setdefault("OMP_WAIT_POLICY", "passive")

import torch  # noqa: E402

# Tests must not fight over the two cores with background jobs; results never depend on this.
torch.set_num_threads(min(2, os.cpu_count() or 1))


import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _restore_default_dtype():
    """A test that changes torch's default dtype (e.g. through hippynn's training in
    bench/accuracy_hippynn.py) must not change the models later tests build."""
    dtype = torch.get_default_dtype()
    yield
    torch.set_default_dtype(dtype)
