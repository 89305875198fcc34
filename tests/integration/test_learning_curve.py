"""metamlip-eval learning-curve: a tiny experiment end to end, all outputs, resumable."""

import csv
import json

import pytest
import yaml
from synthetic import morse_energy_forces, synthetic_dataset

from metamlip.cli.eval import main
from metamlip.data import Configuration, Dataset, write_extxyz
from metamlip.meta import learning_curve
from metamlip.train.config import STRATEGIES


@pytest.fixture(scope="module")
def curve_config(tmp_path_factory):
    folder = tmp_path_factory.mktemp("curve")
    base = synthetic_dataset(8)
    for level, depth, offset in (("gfn2-xtb", 0.25, -4.0), ("hf/sto-3g", 0.35, -1000.0)):
        configs = []
        for c in base:
            energy, forces = morse_energy_forces(c.positions, depth=depth)
            configs.append(Configuration(c.numbers, c.positions, level, energy + offset * c.n_atoms, forces, molecule=c.molecule))
        write_extxyz(Dataset(configs), folder / f"{level.replace('/', '_')}.extxyz")
    config = {
        "data": {"files": [str(folder / "*.extxyz")], "level": "hf/sto-3g", "n_val": 4, "n_test": 6, "source_n_val": 0.2},
        "sizes": [4, "all"],
        "seeds": [0],
        "strategies": list(STRATEGIES),
        "model": {"n_features": 8, "n_sensitivities": 4, "n_interactions": 1, "n_atom_layers": 1,
                  "cutoff": 4.0, "soft_min": 0.75, "soft_max": 3.5},
        "training": {"batch_size": 8, "max_epochs": 2, "epoch_size": 8},
        "pretrain": {"batch_size": 8, "max_epochs": 1},
        "reptile": {"outer_steps": 3, "inner_steps": 2, "eval_every": 3},
        "out": str(folder / "out"),
    }
    path = folder / "curve.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def read_rows(path):
    with open(path) as handle:
        return list(csv.DictReader(handle))


def test_tiny_learning_curve_writes_every_output_and_resumes(curve_config, capsys, monkeypatch):
    out = curve_config.parent / "out"
    assert main(["learning-curve", str(curve_config), "--no-progress"]) == 0
    for name in ("results.csv", "results.json", "results.md", "learning_curve.png"):
        assert (out / name).exists(), name
    rows = read_rows(out / "results.csv")
    assert len(rows) == 2 * len(STRATEGIES)
    assert {r["strategy"] for r in rows} == set(STRATEGIES)
    assert {int(r["n_train"]) for r in rows} == {4, 14}  # "all" = 24 - 4 validation - 6 test
    assert all(float(r["force_rmse_meV_per_A"]) > 0 for r in rows)
    results = json.loads((out / "results.json").read_text())
    assert results["target_level"] == "hf/sto-3g" and results["source_levels"] == ["gfn2-xtb"]
    assert results["n_test"] == 6 and len(results["summary"]) == 2 * len(STRATEGIES)
    table = (out / "results.md").read_text()
    assert "| reptile |" in table and "N=14" in table
    assert "Force RMSE" in capsys.readouterr().out

    def no_training(*args, **kwargs):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr(learning_curve.Trainer, "fit", no_training)
    monkeypatch.setattr(learning_curve.strategies, "pretrain", no_training)
    assert main(["learning-curve", str(curve_config), "--no-progress"]) == 0
    assert read_rows(out / "results.csv") == rows


def test_bad_curve_config_is_a_clear_error(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"sizes": [0], "data": {"files": ["x.extxyz"]}}))
    assert main(["learning-curve", str(bad)]) == 2
    assert "sizes must be positive integers or 'all'" in capsys.readouterr().err
