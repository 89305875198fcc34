"""The splits of bench/accuracy.py: identical frames for every method, nothing shared between
training, validation and test, the left-out molecule really left out."""

import importlib.util
import sys
from collections import Counter
from pathlib import Path

import ase.io
import numpy as np
import pytest

from metamlip.data import DataError, read_dataset
from metamlip.meta.tasks import geometry_key

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def accuracy():
    spec = importlib.util.spec_from_file_location("bench_accuracy", ROOT / "bench" / "accuracy.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def data(accuracy):
    return read_dataset(str(accuracy.TARGET_FILE))


def keys(dataset):
    return {geometry_key(c) for c in dataset}


def test_level_split_is_disjoint_nested_and_balanced(accuracy, data):
    split = accuracy.level_split(data, [25, 50, 100])
    assert len(split.test) == 100 and len(split.val) == 10
    assert {c.level for c in data} == {accuracy.TARGET_LEVEL}
    assert not keys(split.test) & keys(split.val)
    for n in (25, 50, 100):
        assert len(split.train[n]) == n
        assert not keys(split.train[n]) & (keys(split.test) | keys(split.val))
    assert keys(split.train[25]) < keys(split.train[50]) < keys(split.train[100])
    counts = Counter(c.molecule for c in split.train[50])
    assert len(counts) == 4 and max(counts.values()) - min(counts.values()) <= 1
    again = accuracy.level_split(data, [50])  # the same frames on every call (every method)
    assert [geometry_key(c) for c in again.train[50]] == [geometry_key(c) for c in split.train[50]]
    assert [geometry_key(c) for c in again.test] == [geometry_key(c) for c in split.test]


def test_molecule_split_holds_only_the_left_out_molecule(accuracy, data):
    split = accuracy.molecule_split(data, [25, 100])
    assert split.molecule == accuracy.LEFT_OUT_MOLECULE
    for part in (split.train[25], split.train[100], split.val, split.test):
        assert {c.molecule for c in part} == {accuracy.LEFT_OUT_MOLECULE}
    assert len(split.test) == 40 and len(split.val) == 10
    assert not keys(split.train[100]) & (keys(split.test) | keys(split.val))
    with pytest.raises(DataError, match="N = 101 exceeds the 100 frames"):
        accuracy.molecule_split(data, [101])
    rest = accuracy.without_molecule(data, accuracy.LEFT_OUT_MOLECULE)
    assert len(rest) == len(data) - 150 and accuracy.LEFT_OUT_MOLECULE not in {c.molecule for c in rest}


def test_mace_files_carry_the_same_labels(accuracy, data, tmp_path):
    frames = data.subset(range(5))
    accuracy.write_mace_xyz(frames, tmp_path / "t.xyz")
    back = ase.io.read(tmp_path / "t.xyz", ":")
    for atoms, c in zip(back, frames):
        assert atoms.info["REF_energy"] == pytest.approx(c.energy, abs=1e-8)
        np.testing.assert_allclose(atoms.arrays["REF_forces"], c.forces, atol=1e-8)
        np.testing.assert_allclose(atoms.positions, c.positions, atol=1e-8)
        assert atoms.calc is None  # labels not moved into a calculator
