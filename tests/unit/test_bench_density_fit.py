"""bench/density_fit.py: one row per (system, level), files written, the changes small."""

import csv
import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_density_fit_bench_rows(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("bench_density_fit",
                                                  ROOT / "bench" / "density_fit.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    assert bench.main(["--systems", "H2O", "--levels", "hf/6-31g*", "--results",
                       str(tmp_path)]) == 0
    with (tmp_path / "density_fit.csv").open() as fh:
        (row,) = csv.DictReader(fh)
    assert (row["system"], row["n_atoms"], row["level"], row["auxbasis"]) == (
        "H2O", "3", "hf/6-31g*", "cc-pvdz-jkfit")
    assert 0 < float(row["energy_change_meV_per_atom"]) < 5
    assert 0 < float(row["max_force_change_meV_per_A"]) < 5
    assert float(row["speedup"]) > 0
    assert json.loads((tmp_path / "density_fit.json").read_text())["rows"][0]["system"] == "H2O"
    assert "speedup=" in capsys.readouterr().out
