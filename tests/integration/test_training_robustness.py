"""metamlip-train under bad input and faults: resuming another run, --out mistakes, Ctrl-C,
stale temporaries, data files without levels, empty files, malformed npz (issue 14)."""

import json
import os
import signal

import numpy as np
import pytest
import torch
from config_helpers import config_writer
from synthetic import synthetic_dataset

from metamlip.cli.train import main
from metamlip.data import Configuration, DataError, Dataset, write_extxyz
from metamlip.nn.checkpoint import read_checkpoint
from metamlip.train import trainer as trainer_module
from metamlip.train.run import read_data_files

SMALL = {
    "model": {"n_features": 8, "n_sensitivities": 6, "n_interactions": 1, "n_atom_layers": 2,
              "cutoff": 4.0, "soft_min": 0.75, "soft_max": 3.5},
    "training": {"batch_size": 8, "learning_rate": 3e-3, "checkpoint_every": 4, "progress": False},
    "data": {"n_val": 6, "n_test": 6},
}


@pytest.fixture(scope="module")
def data_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "synthetic.extxyz"
    write_extxyz(synthetic_dataset(10), path)
    return path


write_config = config_writer(SMALL)


def relabelled(source, target, level=None, energy_shift=0.0):
    data = synthetic_dataset(10)
    write_extxyz(Dataset(Configuration(c.numbers, c.positions, level or c.level, c.energy + energy_shift, c.forces, molecule=c.molecule) for c in data), target)
    return target


def test_resume_refuses_another_config_or_other_data(tmp_path, data_file, capsys):
    out = str(tmp_path / "run")
    config = write_config(tmp_path / "c.yaml")
    assert main([config, "--data", str(data_file), "--max-epochs", "1", "--out", out]) == 0
    capsys.readouterr()

    wider = write_config(tmp_path / "wide.yaml", model={"n_features": 12})
    assert main([wider, "--data", str(data_file), "--max-epochs", "2", "--out", out, "--resume"]) == 2
    err = capsys.readouterr().err
    assert "cannot resume: model.n_features is 12 now but was 8 in the run being resumed" in err and "training.max_epochs" in err

    shifted = relabelled(data_file, tmp_path / "shifted.extxyz", energy_shift=0.5)
    assert main([config, "--data", str(shifted), "--max-epochs", "2", "--out", out, "--resume"]) == 2
    assert "cannot resume: the training data differ from the run being resumed (content)" in capsys.readouterr().err

    other_level = relabelled(data_file, tmp_path / "other.extxyz", level="hf/sto-3g")
    assert main([config, "--data", str(other_level), "--max-epochs", "2", "--out", out, "--resume"]) == 2
    assert "cannot resume: data.level is 'hf/sto-3g' now but was 'synthetic/morse'" in capsys.readouterr().err

    assert main([config, "--data", str(data_file), "--max-epochs", "2", "--out", out, "--resume"]) == 0  # max_epochs may change
    assert read_checkpoint(tmp_path / "run" / "last.ckpt")["training_state"]["trainer"]["epoch"] == 2


def test_out_mistakes_are_refused(tmp_path, data_file, capsys):
    config = write_config(tmp_path / "c.yaml")
    a_file = tmp_path / "taken.txt"
    a_file.write_text("x")
    assert main([config, "--data", str(data_file), "--out", str(a_file)]) == 2
    assert f"--out {a_file}: is a file, not a directory" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main([config, "--data", str(data_file), "--out", str(tmp_path / "empty"), "--resume"]) == 2
    assert "holds no training run to continue (no last.ckpt); drop --resume" in capsys.readouterr().err
    assert not (tmp_path / "empty" / "last.ckpt").exists()


def test_ctrl_c_writes_a_resumable_checkpoint_and_exits_130(tmp_path, data_file, monkeypatch, capsys):
    config = write_config(tmp_path / "c.yaml")
    args = [config, "--data", str(data_file), "--max-epochs", "2"]
    assert main(args + ["--out", str(tmp_path / "straight")]) == 0

    original = trainer_module.Trainer.train_step
    calls = {"n": 0}

    def step_then_ctrl_c(self, indices):
        calls["n"] += 1
        if calls["n"] == 3:  # mid-epoch, between checkpoints
            os.kill(os.getpid(), signal.SIGINT)
        return original(self, indices)

    monkeypatch.setattr(trainer_module.Trainer, "train_step", step_then_ctrl_c)
    capsys.readouterr()
    assert main(args + ["--out", str(tmp_path / "resumed")]) == 130
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "metamlip-train: interrupted;" in err and "--resume" in err and "Traceback" not in err
    assert read_checkpoint(tmp_path / "resumed" / "last.ckpt")["training_state"]["trainer"]["global_step"] == 3
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the handler is put back
    monkeypatch.setattr(trainer_module.Trainer, "train_step", original)
    assert main(args + ["--out", str(tmp_path / "resumed"), "--resume"]) == 0
    straight = read_checkpoint(tmp_path / "straight" / "last.ckpt")["model"]["state_dict"]
    resumed = read_checkpoint(tmp_path / "resumed" / "last.ckpt")["model"]["state_dict"]
    for key in straight:
        torch.testing.assert_close(resumed[key], straight[key], rtol=0, atol=0)


def test_stale_temporaries_of_killed_writes_are_removed(tmp_path, data_file):
    out = tmp_path / "run"
    (out / "pretrain").mkdir(parents=True)
    stale = [out / ".last.ckpt.ab12cd34.ckpt", out / ".parity.png.x_y1z2w3.png", out / "pretrain" / ".train_log.csv.q1w2e3r4.csv"]
    for path in stale:
        path.write_bytes(b"partial")
    kept = [out / ".keep", out / "notes.txt"]
    for path in kept:
        path.write_text("mine")
    config = write_config(tmp_path / "c.yaml")
    assert main([config, "--data", str(data_file), "--max-epochs", "1", "--out", str(out)]) == 0
    assert not any(p.exists() for p in stale) and all(p.exists() for p in kept)
    assert not [p for p in out.rglob(".*") if p.name != ".keep"]


def test_level_for_files_without_one(tmp_path, data_file, capsys):
    data = synthetic_dataset(4)
    bare = tmp_path / "bare.npz"
    np.savez(bare, numbers=data[0].numbers, positions=np.stack([c.positions for c in data][:4]),
             energies=np.array([c.energy for c in data][:4]), forces=np.stack([c.forces for c in data][:4]))
    with pytest.raises(DataError, match=r"bare.npz: no level of theory \(store a `level` entry, or give the file as .*bare.npz::LEVEL or pass --level\)"):
        read_data_files([str(bare)])
    assert read_data_files([str(bare)], "hf/sto-3g").levels() == ["hf/sto-3g"]  # --level
    assert read_data_files([f"{bare}::gfn2-xtb"], "hf/sto-3g").levels() == ["gfn2-xtb"]  # FILE::LEVEL wins
    config = write_config(tmp_path / "c.yaml", data={"n_val": 1, "n_test": 1})
    assert main([config, "--data", str(bare), "--level", "hf/sto-3g", "--max-epochs", "1", "--out", str(tmp_path / "o")]) == 0


def test_empty_and_malformed_files(tmp_path):
    empty_xyz, empty_npz = tmp_path / "empty.extxyz", tmp_path / "empty.npz"
    empty_xyz.write_text("")
    empty_npz.write_bytes(b"")
    with pytest.raises(DataError, match="empty.extxyz: the file holds no configurations"):
        read_data_files([str(empty_xyz)])
    with pytest.raises(DataError, match="empty.npz: not a readable npz file"):
        read_data_files([str(empty_npz)])
    data = synthetic_dataset(2)
    c = data[0]
    bad = tmp_path / "bad.npz"
    np.savez(bad, numbers=c.numbers, positions=c.positions[None], energies=[c.energy], forces=np.zeros((1, 3, 3)), level="x")
    with pytest.raises(DataError, match=rf"bad.npz: forces have shape \(1, 3, 3\), expected \(1, {c.n_atoms}, 3\)"):
        read_data_files([str(bad)])
    np.savez(bad, numbers=c.numbers, positions=np.zeros((2, 4, 3)), energies=[c.energy], level="x")
    with pytest.raises(DataError, match=r"bad.npz: positions have shape \(2, 4, 3\), expected \(1, "):
        read_data_files([str(bad)])


def test_cleaning_stays_in_the_run_folders(tmp_path):
    from metamlip.atomic import clean_stale_temporaries

    deep = tmp_path / "runs" / "reptile" / "n10-seed0"
    hidden, too_deep = tmp_path / ".venv", deep / "extra"
    for folder in (deep, hidden, too_deep):
        folder.mkdir(parents=True, exist_ok=True)
        (folder / ".metrics.json.abcdefgh.json").write_text("{")
    assert clean_stale_temporaries(tmp_path) == [deep / ".metrics.json.abcdefgh.json"]
    assert (hidden / ".metrics.json.abcdefgh.json").exists() and (too_deep / ".metrics.json.abcdefgh.json").exists()
