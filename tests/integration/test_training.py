"""metamlip-train end to end: learning, outputs, exact resume, clear errors."""

import json

import pytest
import torch
from config_helpers import config_writer
from synthetic import synthetic_dataset

from metamlip.cli.train import main
from metamlip.data import write_extxyz
from metamlip.nn.checkpoint import load_potential, read_checkpoint
from metamlip.train import trainer as trainer_module

SMALL = {
    "model": {"n_features": 16, "n_sensitivities": 8, "n_interactions": 2, "n_atom_layers": 2,
              "cutoff": 4.0, "soft_min": 0.75, "soft_max": 3.5},
    "training": {"batch_size": 8, "learning_rate": 3e-3, "checkpoint_every": 5, "progress": False},
    "data": {"n_val": 12, "n_test": 12},
}


@pytest.fixture(scope="module")
def data_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "synthetic.extxyz"
    write_extxyz(synthetic_dataset(30), path)
    return path


write_config = config_writer(SMALL)


def test_training_lowers_validation_error_and_writes_outputs(tmp_path, data_file, capsys):
    config = write_config(tmp_path / "c.yaml")
    out = tmp_path / "run"
    assert main([str(config), "--data", str(data_file), "--max-epochs", "25", "--out", str(out)]) == 0
    for name in ("model.ckpt", "last.ckpt", "metrics.json", "train_log.csv", "parity.png", "loss_curve.png"):
        assert (out / name).exists(), name
    log = (out / "train_log.csv").read_text().splitlines()
    first, last = (float(log[1].split(",")[4]), min(float(r.split(",")[4]) for r in log[1:]))
    assert last < first / 5, (first, last)
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["test"]) == {"synthetic/morse", "all"}
    assert "force RMSE" in capsys.readouterr().out
    potential = load_potential(out / "model.ckpt")
    assert potential.species == [1, 6, 7, 8] and potential.levels == ["synthetic/morse"]
    assert potential.cutoff == 4.0
    assert potential.repulsion is not None  # on by default for new models
    assert read_checkpoint(out / "model.ckpt")["config"]["model"]["repulsion"] == "zbl"


def test_resume_after_crash_equals_uninterrupted_run(tmp_path, data_file, monkeypatch):
    config = write_config(tmp_path / "c.yaml", training={"checkpoint_every": 4})
    args = [str(config), "--data", str(data_file), "--max-epochs", "3"]
    assert main(args + ["--out", str(tmp_path / "straight")]) == 0

    original = trainer_module.Trainer.train_step
    calls = {"n": 0}

    def crashing_step(self, indices):
        calls["n"] += 1
        if calls["n"] == 14:  # mid-epoch, 2 steps after the checkpoint at step 12
            raise KeyboardInterrupt("simulated kill")
        return original(self, indices)

    monkeypatch.setattr(trainer_module.Trainer, "train_step", crashing_step)
    assert main(args + ["--out", str(tmp_path / "resumed")]) == 130
    monkeypatch.setattr(trainer_module.Trainer, "train_step", original)
    assert read_checkpoint(tmp_path / "resumed" / "last.ckpt")["training_state"]["trainer"]["global_step"] == 12
    assert main(args + ["--out", str(tmp_path / "resumed")]) == 2  # refuses to overwrite without --resume
    assert main(args + ["--out", str(tmp_path / "resumed"), "--resume"]) == 0

    straight = read_checkpoint(tmp_path / "straight" / "last.ckpt")["model"]["state_dict"]
    resumed = read_checkpoint(tmp_path / "resumed" / "last.ckpt")["model"]["state_dict"]
    for key in straight:
        torch.testing.assert_close(resumed[key], straight[key], rtol=0, atol=0)
    assert (tmp_path / "resumed" / "train_log.csv").read_text().count("\n") == 4


@pytest.mark.parametrize(
    "extra,message",
    [
        (["--level", "mp2/cc-pvdz"], "level 'mp2/cc-pvdz' is not in the data"),
        (["--n-train", "1000"], "--n-train 1000 is more than"),
    ],
)
def test_bad_arguments_give_clear_errors(tmp_path, data_file, capsys, extra, message):
    config = write_config(tmp_path / "c.yaml")
    code = main([str(config), "--data", str(data_file), "--out", str(tmp_path / "o"), *extra])
    assert code == 2
    assert message in capsys.readouterr().err


def test_bad_config_and_missing_data(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model:\n  n_feature: 3\n")
    assert main([str(bad)]) == 2
    assert "model: unknown key(s) n_feature" in capsys.readouterr().err
    assert main(["--data", str(tmp_path / "missing.extxyz")]) == 2
    assert "missing.extxyz: file not found" in capsys.readouterr().err
    assert main([]) == 2
    assert "no training data" in capsys.readouterr().err


def test_tensor_model_learns_and_is_stored(tmp_path, data_file):
    """model.tensor_order 2 (HIP-NN-TS) trains like HIP-NN and is rebuilt from its checkpoint."""
    config = write_config(tmp_path / "c.yaml", model={"tensor_order": 2})
    out = tmp_path / "run"
    assert main([str(config), "--data", str(data_file), "--max-epochs", "25", "--out", str(out)]) == 0
    log = (out / "train_log.csv").read_text().splitlines()
    first, last = (float(log[1].split(",")[4]), min(float(r.split(",")[4]) for r in log[1:]))
    assert last < first / 5, (first, last)
    assert read_checkpoint(out / "model.ckpt")["model"]["architecture"]["tensor_order"] == 2
    potential = load_potential(out / "model.ckpt")
    assert potential.hipnn.tensor_order == 2
    assert potential.hipnn.blocks[0].interaction.tensor.scales.shape == (2, 16)
