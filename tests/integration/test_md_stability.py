"""Slow: the quickstart model (trained as `make demo` trains it, with its default core
repulsion) stays physical in hot LAMMPS MD: each bundled molecule alone and the 27-molecule box
of examples/lammps, 20 ps of Langevin dynamics at 600 K: no two atoms closer than 0.6 Angstrom,
and the temperature stays bounded (no runaway heating)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import ase.io
import numpy as np
import pytest
from scipy.spatial import cKDTree

from test_lammps_helpers import ELEMENTS, run_lmp, write_structure

ROOT = Path(__file__).resolve().parents[2]
BUNDLED_MOLECULES = ("CH3CH2OH", "H3CNH2", "HCOOH", "CH3CONH2")
TIMESTEP = 0.0005  # ps
DUMP_EVERY = 50  # steps

MD_INPUT = """\
units metal
atom_style atomic
boundary p p p
read_data data.lmp
pair_style metamlip
pair_coeff * * {model} {elements}
neighbor 1.0 bin
neigh_modify every 1 delay 0 check yes
velocity all create {temperature} {seed} mom yes rot yes dist gaussian
timestep {timestep}
fix md all nve
{thermostat}
thermo_style custom step temp pe etotal
thermo_modify format float %.8g
thermo {every}
dump d all custom {every} traj.dump id type x y z
dump_modify d sort id
run {steps}
"""


def run_md(model: Path, workdir: Path, temperature: float, picoseconds: float, langevin: bool, seed: int = 12345):
    """LAMMPS MD of workdir/data.lmp (orthogonal periodic box); returns (time ps [F], temperature
    K [F], closest pair distance Angstrom [F]) every DUMP_EVERY steps."""
    steps = int(round(picoseconds / TIMESTEP))
    thermostat = f"fix heat all langevin {temperature} {temperature} 0.1 {seed} zero yes" if langevin else ""
    script = MD_INPUT.format(
        model=model, elements=" ".join(ELEMENTS), temperature=temperature, seed=seed, timestep=TIMESTEP,
        thermostat=thermostat, every=DUMP_EVERY, steps=steps,
    )
    proc = run_lmp(workdir, script, timeout=3600)
    rows = []
    lines = proc.stdout.splitlines()
    start = next(k for k, line in enumerate(lines) if line.split()[:2] == ["Step", "Temp"])
    for line in lines[start + 1 :]:
        parts = line.split()
        if len(parts) != 4 or not parts[0].isdigit():
            break
        rows.append((int(parts[0]) * TIMESTEP, float(parts[1])))
    frames = ase.io.read(workdir / "traj.dump", index=":", format="lammps-dump-text")
    closest = np.array([closest_distance(frame) for frame in frames])
    time, temp = np.array(rows).T
    return time, temp, closest


def closest_distance(atoms) -> float:
    """Shortest distance between two atoms (Angstrom), periodic images included (orthogonal box)."""
    box = np.diag(atoms.cell.array)
    tree = cKDTree(np.mod(atoms.positions, box), boxsize=box)
    distances, _ = tree.query(np.mod(atoms.positions, box), k=2)
    return float(distances[:, 1].min())


@pytest.fixture(scope="module")
def quickstart_model(tmp_path_factory) -> Path:
    """examples/quickstart.yaml trained as `make demo` does, exported in float64."""
    out = tmp_path_factory.mktemp("quickstart")
    bin_dir = Path(sys.prefix) / "bin"
    subprocess.run(
        [bin_dir / "metamlip-train", "examples/quickstart.yaml", "--out", out / "run", "--no-progress"],
        cwd=ROOT, check=True, capture_output=True,
    )
    model = out / "model.pt"
    subprocess.run(
        [bin_dir / "metamlip-export", out / "run" / "model.ckpt", "-o", model, "--dtype", "float64"],
        check=True, capture_output=True,
    )
    return model


def lone_molecule(name: str):
    """The first configuration of `name` in the bundled data, alone in a 25 Angstrom box."""
    frames = ase.io.read(ROOT / "examples/data/gfn2-xtb.extxyz.gz", index=":")
    atoms = next(f for f in frames if f.info.get("molecule") == name)
    atoms.calc = None
    atoms.set_cell(np.eye(3) * 25.0)
    atoms.pbc = True
    atoms.center()
    return atoms


@pytest.mark.slow
@pytest.mark.parametrize("system", [*BUNDLED_MOLECULES, "box27"])
def test_langevin_600k_20ps_stays_physical(quickstart_model, system, tmp_path):
    if system == "box27":
        (tmp_path / "data.lmp").write_text((ROOT / "examples/lammps/data.molecules").read_text())
    else:
        write_structure(tmp_path, lone_molecule(system))
    time, temperature, closest = run_md(quickstart_model, tmp_path, 600.0, 20.0, langevin=True)
    assert time[-1] == pytest.approx(20.0)
    assert closest.min() >= 0.6, f"closest pair {closest.min():.3f} A at frame {closest.argmin()}"
    # LAMMPS's temperature counts 3N - 3 degrees of freedom, the thermostat drives all 3N:
    # a lone 9-atom molecule reads 600 * 27/24 = 675 K on average (715 K measured for free
    # atoms, `pair_style zero`). Lone molecules run hotter than their thermostat: at 600 K
    # they reach geometries where the quickstart network is rough, and integration errors heat
    # them (measured 2026-11-28: formic acid 1007 K for an expected 750 K, methylamine peaks at
    # 2216 K; the 27-molecule box holds 620 K). Bounds for the mean of the second half and the
    # peak that catch a runaway (the model without repulsion collapses within 2-5 ps).
    n_atoms = int(re.search(r"^\s*(\d+)\s+atoms\s*$", (tmp_path / "data.lmp").read_text(), re.M).group(1))
    expected = 600.0 * 3 * n_atoms / (3 * n_atoms - 3)
    late = temperature[len(temperature) // 2 :]
    lone = system != "box27"
    assert 0.8 * expected <= late.mean() <= (1.5 if lone else 1.2) * expected, (late.mean(), expected)
    assert temperature.max() < (4.0 if lone else 1.5) * expected, temperature.max()
