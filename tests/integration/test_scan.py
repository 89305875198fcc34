"""metamlip-eval scan: rigid bond/angle/torsion scans of a model against GFN2-xTB (tblite),
the smoothness figures, the cached reference, and clear errors."""

import csv
import json

import numpy as np
import pytest
from ase.build import molecule
from model_helpers import small_potential

from metamlip.cli.eval import main
from metamlip.meta import scan
from metamlip.qm.calculators import compute
from metamlip.qm.levels import parse_level
from metamlip.train.checkpoint import save_checkpoint

POINTS = 7


def test_scan_metrics_measure_offset_free_error_and_wiggles():
    x = np.linspace(0, 1, 21)
    reference = np.cos(3 * x)
    same = scan.scan_metrics(reference, reference + 5.0)  # a constant offset is no error
    assert same["rmse_meV"] == pytest.approx(0, abs=1e-9) and same["roughness"] == pytest.approx(1) and same["wiggle"] == 0
    tilted = scan.scan_metrics(reference, reference + 0.1 * x)  # a linear error has no curvature
    assert tilted["rmse_meV"] > 1 and tilted["wiggle"] == pytest.approx(0, abs=1e-9)
    wiggly = scan.scan_metrics(reference, reference + 0.01 * (-1.0) ** np.arange(21))
    assert wiggly["wiggle"] > 1 and wiggly["roughness"] > 1


def test_default_coordinates_and_rigid_scans_of_ethanol():
    atoms = molecule("CH3CH2OH")
    coordinates = scan.default_coordinates(atoms)
    z = atoms.numbers
    i, j = coordinates["bond"]
    assert (z[i], z[j]) == (8, 1)  # O-H preferred
    assert coordinates["angle"][1:] == (i, j)
    scans = {s.kind: s for s in scan.make_scans(atoms, coordinates, POINTS)}
    bond = scans["bond"]
    assert [g.get_distance(i, j) for g in bond.geometries] == pytest.approx(bond.values)
    assert bond.values[-1] == pytest.approx(3.0)
    moved = np.abs(bond.geometries[-1].positions - atoms.positions).max(1) > 1e-9
    assert moved.tolist() == [k == j for k in range(len(atoms))]  # only the H moves
    a, b, c, d = scans["torsion"].atoms
    turns = [(g.get_dihedral(a, b, c, d) - atoms.get_dihedral(a, b, c, d)) % 360 for g in scans["torsion"].geometries]
    np.testing.assert_allclose(np.unwrap(np.radians(turns)), np.radians(scans["torsion"].values), atol=1e-6)
    for s in scans.values():  # rigid: every bond but the scanned coordinate keeps its length
        for g in s.geometries:
            assert g.get_distance(0, 1) == pytest.approx(atoms.get_distance(0, 1))


def test_scan_command_writes_csv_plot_metrics_and_reuses_the_reference(tmp_path, capsys, monkeypatch):
    checkpoint = tmp_path / "tiny.ckpt"
    model = small_potential(levels=("gfn2-xtb",)).float()
    save_checkpoint(checkpoint, model, {})
    out = tmp_path / "scan"
    args = ["scan", "--molecule", "HCOOH", "--reference", "GFN2-xTB", "--model", f"tiny={checkpoint}", f"second={checkpoint}",
            "--points", str(POINTS), "--out", str(out)]
    assert main(args) == 0
    for name in ("scan.csv", "scan.png", "scan_metrics.json", "scan_metrics.md"):
        assert (out / name).exists(), name
    with open(out / "scan.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["scan"] for r in rows] == ["bond"] * POINTS + ["angle"] * POINTS + ["torsion"] * POINTS
    atoms = molecule("HCOOH")
    scans = scan.make_scans(atoms, scan.default_coordinates(atoms), POINTS)
    direct = compute(scans[0].geometries[2], parse_level("gfn2-xtb")).energy
    assert float(rows[2]["reference_eV"]) == pytest.approx(direct, abs=1e-6)
    expected = scan.model_energies(model, scans[0].geometries, "gfn2-xtb")
    np.testing.assert_allclose([float(r["tiny_eV"]) for r in rows[:POINTS]], expected, atol=1e-5)
    metrics = json.loads((out / "scan_metrics.json").read_text())["metrics"]
    assert set(metrics) == {"tiny", "second"} and metrics["tiny"] == metrics["second"]
    assert all(np.isfinite(v) for per_scan in metrics["tiny"].values() for v in per_scan.values())
    printed = capsys.readouterr().out
    assert "| tiny |" in printed and "tiny: evaluated at gfn2-xtb\n" in printed and "warning" not in printed

    def no_qm(*args, **kwargs):
        raise AssertionError("the stored reference was recomputed")

    monkeypatch.setattr(scan, "reference_energies", no_qm)
    assert main(args) == 0


@pytest.mark.parametrize(
    "change, message",
    [
        ({"--molecule": "NoSuchMolecule"}, "neither a file nor an ase.build.molecule name"),
        ({"--reference": "ccsd(t)/nonsense"}, "ccsd(t)"),
        ({"--model-level": "hf/sto-3g"}, "does not know level 'hf/sto-3g'"),
    ],
)
def test_scan_errors_are_clear(tmp_path, capsys, change, message):
    checkpoint = tmp_path / "tiny.ckpt"
    save_checkpoint(checkpoint, small_potential(levels=("gfn2-xtb",)), {})
    options = {"--molecule": "HCOOH", "--reference": "gfn2-xtb", "--model": str(checkpoint), "--out": str(tmp_path / "o"),
               "--points": "5", **change}
    assert main(["scan", *[x for pair in options.items() for x in pair]]) == 2
    assert message in capsys.readouterr().err


def test_scan_says_at_which_level_each_model_is_evaluated(tmp_path, capsys):
    checkpoint = tmp_path / "gfn1.ckpt"
    save_checkpoint(checkpoint, small_potential(levels=("gfn1-xtb",)), {})
    args = ["scan", "--molecule", "HCOOH", "--reference", "gfn2-xtb", "--model", f"m={checkpoint}", "--points", "5",
            "--out", str(tmp_path / "o")]
    assert main(args) == 2  # never silently evaluated at a level other than the reference
    assert "does not know the reference level 'gfn2-xtb' (known: gfn1-xtb); pass --model-level" in capsys.readouterr().err
    assert main([*args, "--model-level", "GFN1-xTB"]) == 0
    out = capsys.readouterr().out
    assert "HCOOH: models vs gfn2-xtb (models evaluated at gfn1-xtb)" in out
    assert "m: evaluated at gfn1-xtb (warning: not the reference level gfn2-xtb)" in out
    assert json.loads((tmp_path / "o" / "scan_metrics.json").read_text())["model_levels"] == {"m": "gfn1-xtb"}
