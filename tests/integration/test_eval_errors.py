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


def _frames(data, **change):
    """The frames of `data` with one field of the first frame changed."""
    first = data[0]
    values = {"numbers": first.numbers.copy(), "positions": first.positions.copy(), "level": first.level,
              "energy": first.energy, "forces": first.forces}
    values.update(change)
    return Dataset([Configuration(**values, molecule=first.molecule), *data.configurations[1:]])


@pytest.mark.parametrize(
    "change, message",
    [
        ("duplicate", "frame 0: atoms 0 and 1 are at the same position"),
        ("no_energy", "frame 0: missing energy"),
        ("sulfur", "frame 0: atom 0 is element S, which the model does not support (supported: H, C, N, O)"),
        ("nan", "frame 0: atom 1 has a NaN or infinite position"),
        ("empty", "empty.extxyz: the file holds no configurations"),
    ],
)
def test_bad_frames_are_one_line_errors(model_and_data, capsys, change, message):
    _, data, folder = model_and_data
    path = folder / ("empty.extxyz" if change == "empty" else "bad.extxyz")
    if change == "empty":
        path.write_text("")
    else:
        first = data[0]
        positions, numbers = first.positions.copy(), first.numbers.copy()
        if change == "duplicate":
            positions[1] = positions[0]
        if change == "nan":
            positions[1, 2] = np.nan
        if change == "sulfur":
            numbers[0] = 16
        write_extxyz(_frames(data, positions=positions, numbers=numbers, energy=None if change == "no_energy" else first.energy), path)
    assert main(["errors", str(folder / "m.ckpt"), "--data", str(path)]) == 2
    captured = capsys.readouterr()
    assert message in captured.err and captured.err.count("\n") == 1 and "nan" not in captured.out


def test_forces_of_the_wrong_shape_are_refused(model_and_data, capsys):
    _, data, folder = model_and_data
    first = data[0]
    path = folder / "bad.npz"
    np.savez(path, numbers=first.numbers, positions=first.positions[None], energies=[first.energy],
             forces=np.zeros((1, first.n_atoms - 1, 3)), level="a")
    assert main(["errors", str(folder / "m.ckpt"), "--data", str(path)]) == 2
    assert f"bad.npz: forces have shape (1, {first.n_atoms - 1}, 3), expected (1, {first.n_atoms}, 3)" in capsys.readouterr().err


def test_data_without_forces_reports_no_nan(model_and_data, capsys):
    _, data, folder = model_and_data
    path = folder / "energies.extxyz"
    write_extxyz(Dataset(Configuration(c.numbers, c.positions, c.level, c.energy) for c in data), path)
    assert main(["errors", str(folder / "m.ckpt"), "--data", str(path)]) == 0
    out = capsys.readouterr().out
    assert "force RMSE n/a (no forces in the data)" in out and "nan" not in out
