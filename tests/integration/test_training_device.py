"""training.device: every strategy trains on the device it names (CUDA where a GPU exists)."""

import pytest
import torch
import yaml
from synthetic import morse_energy_forces, synthetic_dataset

from metamlip.cli.train import main
from metamlip.data import Configuration, Dataset, write_extxyz
from metamlip.train import steps
from metamlip.train.config import ConfigError, config_from_dict
from metamlip.train.device import torch_device

CUDA = torch.cuda.is_available()
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not CUDA, reason="no CUDA GPU visible"))]
TINY = {
    "model": {"n_features": 8, "n_sensitivities": 4, "n_interactions": 1, "n_atom_layers": 2,
              "cutoff": 4.0, "soft_min": 0.75, "soft_max": 3.5},
    "training": {"batch_size": 8, "max_epochs": 1, "progress": False, "implementation": "torch"},
    "pretrain": {"batch_size": 8, "max_epochs": 1, "epoch_size": 8, "progress": False, "implementation": "torch"},
    "reptile": {"outer_steps": 2, "inner_steps": 2, "eval_every": 1},
    "data": {"n_val": 4, "n_test": 4, "source_n_val": 0.25},
}


@pytest.fixture(scope="module")
def two_levels(tmp_path_factory):
    folder = tmp_path_factory.mktemp("levels")
    base = synthetic_dataset(6, names=("CH3CH2OH", "HCOOH"))
    for level, depth in (("gfn2-xtb", 0.25), ("hf/sto-3g", 0.35)):
        configs = []
        for c in base:
            energy, forces = morse_energy_forces(c.positions, depth=depth)
            configs.append(Configuration(c.numbers, c.positions, level, energy, forces, molecule=c.molecule))
        write_extxyz(Dataset(configs), folder / f"{level.replace('/', '_')}.extxyz")
    return folder


@pytest.fixture()
def seen_devices(monkeypatch):
    """Device of the model and of every batch that reached the loss."""
    seen = set()
    original = steps.energy_force_loss

    def recording(potential, batch, *args, **kwargs):
        seen.add((next(potential.parameters()).device.type, batch.positions.device.type))
        return original(potential, batch, *args, **kwargs)

    monkeypatch.setattr(steps, "energy_force_loss", recording)
    return seen


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("strategy", ["scratch", "transfer", "joint", "multihead", "reptile"])
def test_every_strategy_trains_on_the_device(tmp_path, two_levels, seen_devices, device, strategy):
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({**TINY, "training": {**TINY["training"], "device": device}}))
    out = tmp_path / "out"
    args = [str(config), "--data", str(two_levels / "*.extxyz"), "--level", "hf/sto-3g", "--strategy", strategy, "--out", str(out)]
    assert main(args) == 0
    assert seen_devices == {(device, device)}
    if strategy == "transfer":  # fine-tune the result again (--init) on the same device
        seen_devices.clear()
        assert main([str(config), "--data", str(two_levels / "*.extxyz"), "--level", "gfn2-xtb", "--init", str(out / "model.ckpt"),
                     "--out", str(tmp_path / "tuned")]) == 0
        assert seen_devices == {(device, device)}


def test_pretrain_device_follows_training_device_unless_set():
    config = config_from_dict({"training": {"device": "cuda"}})
    assert config.pretrain.device == "cuda"
    assert config_from_dict({"training": {"device": "cuda"}, "pretrain": {"device": "cpu"}}).pretrain.device == "cpu"


@pytest.mark.skipif(CUDA, reason="a CUDA GPU is visible")
def test_cuda_without_a_gpu_is_a_clear_error(tmp_path, two_levels, capsys):
    with pytest.raises(ConfigError, match=r"training.device: 'cuda' was asked for but no CUDA GPU is usable .*use training.device: cpu"):
        torch_device("cuda")
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({**TINY, "training": {**TINY["training"], "device": "cuda"}}))
    assert main([str(config), "--data", str(two_levels / "gfn2-xtb.extxyz"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "training.device: 'cuda' was asked for but no CUDA GPU is usable" in err and err.count("\n") == 1
    assert not (tmp_path / "o").exists()
