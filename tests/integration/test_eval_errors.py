"""metamlip-eval errors: a checkpoint's energy and force errors on data, per level."""

import numpy as np
import pytest
from model_helpers import small_potential
from synthetic import synthetic_dataset

from metamlip.cli.eval import main
from metamlip.data import Configuration, Dataset, write_extxyz
from metamlip.data.batching import GraphSet
from metamlip.train.checkpoint import save_checkpoint
from metamlip.train.metrics import predict


@pytest.fixture()
def model_and_data(tmp_path):
    model = small_potential(levels=("a", "b"))
    save_checkpoint(tmp_path / "m.ckpt", model, {})
    data = synthetic_dataset(2, level="a")
    write_extxyz(data, tmp_path / "a.extxyz")
    other = Dataset(Configuration(c.numbers, c.positions, "c", c.energy, c.forces) for c in data)
    write_extxyz(other, tmp_path / "c.extxyz")
    return model, data, tmp_path


def test_errors_match_the_model_predictions(model_and_data, capsys):
    model, data, folder = model_and_data
    assert main(["errors", str(folder / "m.ckpt"), "--data", str(folder / "a.extxyz")]) == 0
    out = capsys.readouterr().out
    pred = predict(model, GraphSet(data.configurations, model.cutoff))
    force_rmse = 1000 * np.sqrt(np.mean((pred.force_pred - pred.force_ref) ** 2))
    assert "a: energy RMSE" in out and f"force RMSE {force_rmse:.1f} meV/A (n=6)" in out
    assert main(["errors", str(folder / "m.ckpt"), "--data", str(folder / "c.extxyz"), "--level", "B"]) == 0
    assert "c: energy RMSE" in capsys.readouterr().out


@pytest.mark.parametrize(
    "extra, message",
    [([], "does not know level(s) c: choose one of a, b with --level"), (["--level", "x"], "does not know level 'x' (known: a, b)")],
)
def test_unknown_levels_are_clear_errors(model_and_data, capsys, extra, message):
    _, _, folder = model_and_data
    assert main(["errors", str(folder / "m.ckpt"), "--data", str(folder / "c.extxyz"), *extra]) == 2
    assert message in capsys.readouterr().err
