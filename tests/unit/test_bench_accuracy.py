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


def test_foundation_split_is_the_foundation_experiments_frames(accuracy):
    import foundation_data

    split = accuracy.foundation_split(None, [10, 50])
    target = foundation_data.read_target()
    heldout = set(foundation_data.heldout_molecules())
    assert [geometry_key(c) for c in split.test] == [geometry_key(c) for c in target.test] and len(split.test) >= 80
    assert {c.molecule for c in split.test} <= heldout and {c.level for c in split.test} == {accuracy.TARGET_LEVEL}
    assert keys(split.train[10]) < keys(split.train[50]) <= keys(target.pool)
    assert not keys(split.train[50]) & (keys(split.test) | keys(split.val))
    assert max(Counter(c.molecule for c in split.train[50]).values()) <= 3  # molecule-balanced
    with pytest.raises(DataError, match="pool frames of the held-out molecules"):
        accuracy.foundation_split(None, [10_000])


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


def test_cache_is_keyed_by_the_settings(accuracy, tmp_path):
    calls = []

    def compute():
        calls.append(1)
        return {"value": len(calls)}

    assert accuracy.cached(tmp_path, compute, "a")["value"] == 1
    assert accuracy.cached(tmp_path, compute, "a")["value"] == 1  # read back, not recomputed
    assert accuracy.read_cached(tmp_path, "b") is None
    assert accuracy.cached(tmp_path, compute, "b") == {"value": 2, "fingerprint": "b"}  # settings changed: redone


def test_run_keys_follow_settings_not_device(accuracy, data):
    split = accuracy.level_split(data, [25, 50])
    options = accuracy.Options(Path("/nonexistent"), "pretrained:hipnn-meta-hcno", None, False, "cpu")
    on_gpu = accuracy.Options(Path("/nonexistent"), "pretrained:hipnn-meta-hcno", None, False, "cuda")
    keys = {method: accuracy.run_key((split, 50, 0, method), options) for method in accuracy.METHODS}
    assert len(set(keys.values())) == len(accuracy.METHODS)  # every method its own settings
    for method in accuracy.METHODS:
        assert accuracy.run_key((split, 50, 0, method), on_gpu) == keys[method]
    assert accuracy.run_key((split, 25, 0, "scratch"), options) != keys["scratch"]
    other_start = accuracy.Options(Path("/nonexistent"), "pretrained:hipnn-meta-chno", None, False, "cpu")
    assert accuracy.run_key((split, 50, 0, "finetune"), other_start) != keys["finetune"]
    assert accuracy.run_key((split, 50, 0, "mace"), other_start) == keys["mace"]


def test_a_reshipped_start_invalidates_its_fine_tunes(accuracy, monkeypatch, tmp_path):
    """The same name with other weights (a model re-shipped) is another fine-tuning run."""
    import metamlip.pretrained

    weights = tmp_path / "start.ckpt"
    monkeypatch.setattr(metamlip.pretrained, "resolve", lambda spec: weights)
    weights.write_bytes(metamlip.pretrained.checkpoint_path("hipnn-meta-hcno").read_bytes())
    before = accuracy.metamlip_fingerprint("pretrained:hipnn-meta-hcno", "pretrained:hipnn-meta-hcno", 0, {})
    weights.write_bytes(metamlip.pretrained.checkpoint_path("hipnn-meta-chno").read_bytes())
    after = accuracy.metamlip_fingerprint("pretrained:hipnn-meta-hcno", "pretrained:hipnn-meta-hcno", 0, {})
    assert before["init"] == after["init"] and before["init_sha256"] != after["init_sha256"]
    assert "init_sha256" not in accuracy.metamlip_fingerprint("pretrained:hipnn-meta-hcno", None, 0, {})  # scratch: no start


def test_scratch_config_follows_the_method(accuracy):
    config = accuracy.metamlip_config("pretrained:hipnn-meta-hcno", None, 0, accuracy.method_overrides("scratch-ts2", "cuda", False))
    assert (config.model.tensor_order, config.training.dtype, config.training.device) == (2, "float64", "cuda")


def test_ratio_table_lists_every_method_against_mace(accuracy):
    def r(method, force, energy, device="cuda"):
        return {"split": "level", "n_train": 50, "method": method, "force_rmse_meV_per_A": force, "energy_rmse_meV_per_atom": energy, "device": device}

    table = accuracy.ratio_table([r("mace", 100.0, 10.0), r("scratch", 150.0, 5.0, "cpu"), r("hippynn", 300.0, 20.0)])
    lines = table.splitlines()
    assert len(lines) == 5
    assert "| level | 50 | metamlip HIP-NN, scratch | 150.0 | 1.50 | 5.00 | 0.50 | cpu |" in lines
    assert "| level | 50 | hippynn HIP-NN, its own training | 300.0 | 3.00 | 20.00 | 2.00 | cuda |" in lines


def test_hippynn_gets_our_architecture_and_step_budget(data):
    pytest.importorskip("hippynn")
    sys.path.insert(0, str(ROOT / "bench"))
    import accuracy_hippynn

    from metamlip.train.config import TrainingConfig

    architecture = {"n_features": 64, "n_sensitivities": 16, "n_interactions": 2, "n_atom_layers": 2, "cutoff": 5.0, "soft_min": 0.75, "soft_max": 4.0}
    p = accuracy_hippynn.hippynn_parameters(architecture, [1, 6, 7, 8])
    assert p["n_atom_layers"] == 1 and p["n_interaction_layers"] == 2 and p["possible_species"] == [0, 1, 6, 7, 8]
    assert (p["dist_soft_min"], p["dist_soft_max"], p["dist_hard_max"], p["resnet"]) == (0.75, 4.0, 5.0, False)
    ours = TrainingConfig()
    steps = accuracy_hippynn.settings_for("hippynn-steps", 50, quick=False)
    per_epoch = -(-50 // ours.batch_size)
    assert steps["batch_size"] == steps["max_batch_size"] == ours.batch_size
    assert (steps["max_epochs"] - 1) * per_epoch < ours.max_steps <= steps["max_epochs"] * per_epoch
    assert accuracy_hippynn.settings_for("hippynn", 50, quick=False) == accuracy_hippynn.SETTINGS
    with pytest.raises(ValueError, match="unknown hippynn variant"):
        accuracy_hippynn.settings_for("hippynn-x", 50, quick=False)
    frames = data.subset([0, 200, 400])  # 9, 7 and 5 atoms
    arrays = accuracy_hippynn.padded_arrays(frames, [1, 6, 7, 8])
    assert arrays["species"].shape == (3, 9) and (arrays["species"][2, 5:] == 0).all()
    np.testing.assert_allclose(arrays["forces"][1, :7], frames[1].forces)
    assert arrays["energy"][:, 0].tolist() == [c.energy for c in frames]


@pytest.mark.parametrize("changes", [{}, {"loss_form": "mse", "decay_factor": 1.0, "hierarchicality": False}])
def test_hippynn_test_errors_match_its_own_report(accuracy, data, tmp_path, changes):
    """Our test metrics of a (2-epoch) hippynn run equal the force RMSE hippynn itself prints
    (its own settings, and the ablation towards ours)."""
    pytest.importorskip("hippynn")
    import accuracy_hippynn

    split = accuracy.level_split(data, [25])  # hippynn evaluates a tenth of the training set: >= 1 batch
    architecture = {"n_features": 8, "n_sensitivities": 4, "n_interactions": 1, "n_atom_layers": 2, "cutoff": 5.0, "soft_min": 0.75, "soft_max": 4.0}
    settings = {**accuracy_hippynn.SETTINGS, "max_epochs": 2, **changes}
    metrics, _, epochs = accuracy_hippynn.train_hippynn(split.train[25], split.val, split.test.subset(range(6)), architecture, [1, 6, 7, 8], 0, tmp_path, "cpu", settings)
    assert epochs == 2 and metrics["n_configurations"] == 6
    report = (tmp_path / "hippynn_log.txt").read_text().split("Testing model...")[1]
    force_rmse = float(next(line for line in report.splitlines() if line.startswith("F-RMSE")).split()[-1])
    assert metrics["force_rmse_meV_per_A"] == pytest.approx(force_rmse * 1000, rel=1e-4)
