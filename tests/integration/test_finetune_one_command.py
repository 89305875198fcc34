"""`metamlip-train --init pretrained:default --data FILE --level L --n-train N --out DIR
[--compare-scratch]`: no config file, the bundled MP2 data, every reader, clear errors."""

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest

from metamlip import pretrained
from metamlip.cli.eval import main as eval_main
from metamlip.cli.export import main as export_main
from metamlip.cli.train import main
from metamlip.data import Dataset, read_dataset, write_extxyz, write_hdf5
from metamlip.deploy import load_model
from metamlip.nn.checkpoint import load_potential, read_checkpoint

MP2 = Path(__file__).parents[2] / "examples" / "data" / "mp2_cc-pvdz.extxyz.gz"
LEVEL = "mp2/cc-pvdz"
DEFAULT_MODEL = pretrained.ALIASES[pretrained.DEFAULT]  # the shipped model `pretrained:default` names
FAST = ["--max-epochs", "1", "--no-progress"]


@pytest.fixture(scope="module")
def subset(tmp_path_factory) -> Path:
    """Every fifth bundled MP2 configuration (120, all four molecules): quick to read."""
    path = tmp_path_factory.mktemp("mp2") / "mp2_subset.extxyz"
    write_extxyz(Dataset(list(read_dataset(MP2))[::5]), path)
    return path


def finite_metrics(path: Path) -> dict:
    metrics = json.loads(path.read_text())
    for split in ("validation", "test"):
        for values in metrics[split].values():
            assert all(math.isfinite(values[k]) for k in ("energy_rmse_meV_per_atom", "force_rmse_meV_per_A")), values
    return metrics


def test_one_command_fine_tune(tmp_path, capsys):
    out = tmp_path / "mine"
    assert main(["--init", "pretrained:default", "--data", str(MP2), "--level", LEVEL, "--n-train", "10", "--out", str(out), *FAST]) == 0
    printed = capsys.readouterr().out
    assert f"fine-tuning pretrained:{DEFAULT_MODEL} on mp2/cc-pvdz: 10 training, 5 validation, 585 test configurations" in printed
    for name in ("model.ckpt", "last.ckpt", "metrics.json", "metrics.csv", "train_log.csv", "parity.png", "loss_curve.png"):
        assert (out / name).stat().st_size > 0, name
    metrics = finite_metrics(out / "metrics.json")
    assert metrics["test"][LEVEL]["n_configurations"] == 585
    with open(out / "metrics.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert {(r["split"], r["level"]) for r in rows} == {(s, l) for s in ("validation", "test") for l in (LEVEL, "all")}
    assert float(next(r for r in rows if r["split"] == "test" and r["level"] == LEVEL)["force_rmse_meV_per_A"]) == pytest.approx(
        metrics["test"][LEVEL]["force_rmse_meV_per_A"]
    )
    config = read_checkpoint(out / "model.ckpt")["config"]
    assert config["init"] == f"pretrained:{DEFAULT_MODEL}"  # the model the alias meant
    assert config["data"]["n_val"] == 5 and config["data"]["n_test"] == 585
    assert config["training"]["max_epochs"] == 1  # the flag
    tuned = load_potential(out / "model.ckpt")
    assert tuned.levels[-1] == LEVEL and LEVEL not in load_potential("pretrained:default").levels


def test_npz_with_file_level_and_a_config_file(tmp_path, subset):
    """An MD17-style npz without a level (FILE::LEVEL gives it); a YAML file still works and flags override it."""
    same = [c for c in read_dataset(subset) if c.molecule == "CH3CH2OH"]
    npz = tmp_path / "ethanol.npz"
    np.savez(npz, numbers=same[0].numbers, positions=np.stack([c.positions for c in same]),
             energies=np.array([c.energy for c in same]), forces=np.stack([c.forces for c in same]))
    config = tmp_path / "c.yaml"
    config.write_text("training:\n  learning_rate: 0.001\n  max_epochs: 5\n")
    out = tmp_path / "npz"
    assert main([str(config), "--init", "pretrained:default", "--data", f"{npz}::{LEVEL}", "--n-train", "8", "--n-test", "10",
                 "--out", str(out), "--max-steps", "3", *FAST]) == 0
    saved = read_checkpoint(out / "model.ckpt")["config"]
    assert saved["training"]["learning_rate"] == 1e-3 and saved["training"]["max_epochs"] == 1
    assert saved["training"]["max_steps"] == saved["finetune"]["max_steps"] == 3  # --max-steps is the fine-tuning budget too
    assert saved["data"]["n_test"] == 10 and saved["data"]["level"] == LEVEL
    assert finite_metrics(out / "metrics.json")["test"][LEVEL]["n_configurations"] == 10


def test_compare_scratch(tmp_path, capsys, subset):
    h5 = tmp_path / "mp2.h5"
    write_hdf5(read_dataset(subset), h5)  # the HDF5 reader, level from the file
    out = tmp_path / "cmp"
    args = ["--init", "pretrained:default", "--data", str(h5), "--level", LEVEL, "--n-train", "10", "--n-test", "30",
            "--compare-scratch", "--out", str(out), *FAST]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "fine-tuned / scratch: force RMSE" in printed
    for name in ("comparison.csv", "comparison.png", "scratch/model.ckpt", "scratch/metrics.json", "scratch/metrics.csv", "scratch/parity.png"):
        assert (out / name).stat().st_size > 0, name
    with open(out / "comparison.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["model"] for r in rows] == ["fine-tuned", "scratch"]
    assert [r["start"] for r in rows] == [f"pretrained:{DEFAULT_MODEL}", "scratch"]
    assert all(r["n_train"] == "10" and r["n_test"] == "30" and math.isfinite(float(r["force_rmse_meV_per_A"])) for r in rows)
    # each row equals the test metrics its run wrote
    for row, run in zip(rows, (out, out / "scratch")):
        test = json.loads((run / "metrics.json").read_text())["test"][LEVEL]
        assert float(row["force_rmse_meV_per_A"]) == pytest.approx(test["force_rmse_meV_per_A"], rel=1e-6)
    tuned, scratch = load_potential(out / "model.ckpt"), load_potential(out / "scratch" / "model.ckpt")
    assert tuned.architecture == scratch.architecture and tuned.species == scratch.species
    assert scratch.levels == [LEVEL]
    assert read_checkpoint(out / "scratch" / "model.ckpt")["config"]["data"] == read_checkpoint(out / "model.ckpt")["config"]["data"]
    assert main(args) == 2  # refuses to start over a run
    assert main(args + ["--resume"]) == 0  # both finished runs resume to the same end
    assert "fine-tuned / scratch" in capsys.readouterr().out


def test_pretrained_default_everywhere(tmp_path, capsys, subset):
    assert main(["--list-pretrained"]) == 0
    assert f"pretrained:default  = pretrained:{DEFAULT_MODEL}" in capsys.readouterr().out
    model = tmp_path / "model.pt"
    assert export_main(["pretrained:default", "-o", str(model), "--level", "gfn2-xtb"]) == 0
    assert load_model("pretrained:default", level="gfn2-xtb")[1]["level"] == "gfn2-xtb"
    assert eval_main(["errors", "pretrained:default", "--data", str(subset), "--level", "gfn2-xtb"]) == 0


def test_one_command_errors(tmp_path, capsys, subset):
    data = ["--data", str(subset), "--out", str(tmp_path / "x")]

    def error(*args: str) -> str:
        assert main([*args, *data, *FAST]) == 2
        message = capsys.readouterr().err.strip()
        assert message.count("\n") == 0, message
        return message

    assert f"no pre-trained model named 'nope' (shipped: default (= {DEFAULT_MODEL}), hipnn-meta-" in error(
        "--init", "pretrained:nope", "--level", LEVEL, "--n-train", "10")
    assert "--n-train 700: the data hold only 120 configurations at level mp2/cc-pvdz" in error(
        "--init", "pretrained:default", "--level", LEVEL, "--n-train", "700")
    assert "level 'b3lyp/6-31g*' is not in the data (levels present: mp2/cc-pvdz)" in error(
        "--init", "pretrained:default", "--level", "b3lyp/6-31g*", "--n-train", "10")
    assert "--compare-scratch compares fine-tuning with training from scratch: give --init" in error(
        "--compare-scratch", "--level", LEVEL, "--n-train", "10")
    assert not (tmp_path / "x").exists()
