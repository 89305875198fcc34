"""NVE with pair_style metamlip conserves energy: forces are the exact gradient of the energy,
continuous across neighbour-list rebuilds, atoms crossing the periodic boundary and (under
MPI) moving between ranks."""

from __future__ import annotations

import numpy as np
import pytest

from ase.build import molecule

from metamlip.nn.repulsion import fitted_repulsion
from model_helpers import SPECIES, config_of, small_potential
from test_lammps_helpers import export_model, molecular_box, run_lmp, write_structure

SCRIPT = """\
units metal
atom_style atomic
read_data data.lmp
pair_style metamlip
pair_coeff * * {model} H C N O
velocity all create 300 1 mom yes rot yes
timestep {timestep}
fix 1 all nve
thermo_style custom step temp pe etotal
thermo_modify format float %.15g
thermo {every}
run {steps}
"""


def energy_drift(workdir, model, atoms, steps: int, timestep: float = 0.0005, nprocs: int = 1) -> dict:
    """Run NVE; returns the total-energy fluctuation and drift per atom and the rebuild count."""
    write_structure(workdir, atoms)
    every = max(1, steps // 100)
    output = run_lmp(workdir, SCRIPT.format(model=model, timestep=timestep, every=every, steps=steps), nprocs).stdout
    lines = output.splitlines()
    start = next(k for k, line in enumerate(lines) if line.split()[:1] == ["Step"]) + 1
    rows = np.array([[float(v) for v in line.split()] for line in lines[start : start + steps // every + 1]])
    time_ps, temperature, total = rows[:, 0] * timestep, rows[:, 1], rows[:, 3]
    n_atoms = len(atoms)
    rebuilds = int(next(line for line in lines if line.startswith("Neighbor list builds")).split()[-1])
    return {
        "n_atoms": n_atoms,
        "steps": steps,
        "max_deviation_per_atom": float(np.abs(total - total[0]).max() / n_atoms),  # eV/atom
        "drift_per_atom_per_ps": float(np.polyfit(time_ps, total, 1)[0] / n_atoms),  # eV/atom/ps
        "mean_temperature": float(temperature.mean()),
        "rebuilds": rebuilds,
    }


def gentle_model(path):
    """A random small model scaled down so that 300 K dynamics of unbound molecules stay smooth,
    with the core repulsion of a new model (a random network alone lets atoms pass through
    each other, which the engines refuse below 0.1 Angstrom)."""
    potential = small_potential(seed=1)
    potential.energy_scale.fill_(0.05)
    shapes = [config_of(m.numbers, m.positions) for m in (molecule(n) for n in ("CH3CH2OH", "CH3CH2NH2", "HCOOH"))]
    potential.repulsion = fitted_repulsion("zbl", SPECIES, shapes, 0.0, 0.85, 2.0).double()  # the softest wall
    return export_model(potential, path)


def test_nve_conserves_energy(tmp_path):
    stats = energy_drift(tmp_path, gentle_model(tmp_path / "model.pt"), molecular_box(2, 4.2, seed=0), steps=2000)
    print("NVE serial:", stats)
    assert stats["rebuilds"] >= 2
    assert 150 < stats["mean_temperature"] < 600
    assert stats["max_deviation_per_atom"] < 1e-5
    assert abs(stats["drift_per_atom_per_ps"]) < 1e-5


@pytest.mark.slow
def test_nve_conserves_energy_under_mpi(tmp_path):
    stats = energy_drift(
        tmp_path, gentle_model(tmp_path / "model.pt"), molecular_box(3, 4.2, seed=1), steps=5000, nprocs=2
    )
    print("NVE 2 ranks:", stats)
    assert stats["rebuilds"] >= 2
    assert stats["max_deviation_per_atom"] < 1e-5
    assert abs(stats["drift_per_atom_per_ps"]) < 1e-5
