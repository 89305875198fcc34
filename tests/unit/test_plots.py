"""Parity plots show what carries information: energies relative to each molecule's mean, per level."""

import numpy as np
import pytest

from metamlip.train import plots
from metamlip.train.metrics import Predictions


def predictions() -> Predictions:
    levels = ["a", "a", "a", "a", "b", "b"]
    molecules = ["water", "water", "ethanol", "ethanol", "water", "water"]
    n_atoms = np.array([3, 3, 9, 9, 3, 3])
    energy_ref = np.array([-10.0, -10.3, -90.0, -90.9, -500.0, -500.6])  # molecules far apart per atom
    energy_pred = energy_ref + np.array([0.03, -0.03, 0.09, 0.0, 0.0, 0.06])
    forces = np.zeros((0, 3))
    return Predictions(levels, n_atoms, energy_ref, energy_pred, forces, forces, np.array([], dtype=str), molecules)


def test_energies_are_relative_to_each_molecules_mean_per_level():
    pred = predictions()
    ref, out = plots.relative_energies(pred)
    np.testing.assert_allclose(ref, [0.05, -0.05, 0.05, -0.05, 0.1, -0.1], atol=1e-12)  # per atom, group mean removed
    np.testing.assert_allclose(out - ref, (pred.energy_pred - pred.energy_ref) / pred.n_atoms, atol=1e-12)  # errors kept
    assert np.ptp(ref) < 0.3  # absolute energies per atom would span ~150 eV/atom: one dot per molecule


def test_title_names_the_levels_in_the_plotted_set(tmp_path, monkeypatch):
    titles = []
    monkeypatch.setattr(plots, "save_png", lambda fig, path, title="": (titles.append(title), plots.plt.close(fig)))
    plots.parity_plot(predictions(), tmp_path / "p.png", title="test set")
    pred = predictions()
    only_a = Predictions(pred.levels[:4], pred.n_atoms[:4], pred.energy_ref[:4], pred.energy_pred[:4],
                         pred.force_ref, pred.force_pred, pred.force_levels, pred.molecules[:4])
    plots.parity_plot(only_a, tmp_path / "q.png", title="test set")
    assert titles == ["test set: levels a, b", "test set: level a"]


def test_parity_png_is_written(tmp_path):
    plots.parity_plot(predictions(), tmp_path / "p.png", title="test set")
    assert (tmp_path / "p.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("molecules", [[], ["m"] * 6])
def test_without_molecule_names_each_level_is_one_group(molecules):
    pred = predictions()
    pred.molecules = molecules
    ref, _ = plots.relative_energies(pred)
    per_atom = pred.energy_ref / pred.n_atoms
    np.testing.assert_allclose(ref[:4], per_atom[:4] - per_atom[:4].mean())
