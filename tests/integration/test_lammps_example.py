"""examples/lammps/in.metamlip runs (with a small exported model in place of the demo's) and
by default reads the model where `make demo` writes it."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import yaml

from model_helpers import small_potential
from test_lammps_helpers import export_model, run_lmp

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "lammps"


def thermo_rows(output: str) -> np.ndarray:
    """The thermo table (step time temp pe ke etotal press), one row per printed step."""
    lines = output.splitlines()
    start = next(k for k, line in enumerate(lines) if line.split()[:2] == ["Step", "Time"]) + 1
    end = next(k for k in range(start, len(lines)) if lines[k].startswith("Loop time"))
    return np.array([[float(v) for v in line.split()] for line in lines[start:end]])


def test_default_model_is_the_demo_model():
    text = (EXAMPLE / "in.metamlip").read_text()
    default = next(line.split()[3] for line in text.splitlines() if line.startswith("variable model index"))
    demo_out = yaml.safe_load((ROOT / "examples" / "quickstart.yaml").read_text())["out"]
    assert (EXAMPLE / default).resolve() == (ROOT / demo_out / "model.pt").resolve()


def test_example_runs(tmp_path):
    potential = small_potential(seed=4)
    potential.energy_scale.fill_(0.05)  # a random model, kept gentle for smooth dynamics
    model = export_model(potential, tmp_path / "model.pt")
    shutil.copy(EXAMPLE / "data.molecules", tmp_path)
    script = (EXAMPLE / "in.metamlip").read_text()
    output = run_lmp(tmp_path, script, args=("-var", "model", str(model), "-var", "steps", "200")).stdout
    assert "201 atoms" in output and f"metamlip: model {model}" in output
    rows = thermo_rows(output)
    assert rows[:, 0].tolist() == [0, 100, 200]
    assert np.isfinite(rows).all()
    assert 200 < rows[0, 2] < 400  # 300 K start
    etotal = rows[:, 5]
    assert np.abs(etotal - etotal[0]).max() < 1e-3  # NVE, eV (201 atoms)
