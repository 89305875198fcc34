"""NVE in OpenMM with an exported model: total-energy drift over 2,000 steps of 0.5 fs."""

from __future__ import annotations

import time

import numpy as np
import openmm
import pytest
import torch

from deploy_helpers import molecular_box
from metamlip.deploy import export_model
from metamlip.openmm import create_force
from model_helpers import small_potential

N_STEPS = 2000
STEP_FS = 0.5


@pytest.fixture
def one_thread():
    """One torch thread: with two, other jobs on the two cores make OpenMP wait ~10x longer."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_nve_energy_drift(tmp_path, one_thread) -> None:
    """Velocity Verlet conserves the total energy up to O(dt^2) fluctuations: with a smooth
    (cos^2-cutoff) model the energy must not drift. The bound: the total-energy drift (slope of a
    linear fit times the run length) and its fluctuation stay below 1% of the kinetic energy at
    300 K (about 1 meV per atom); a missing pair, a wrong force or a discontinuity at the cutoff
    breaks it by orders of magnitude."""
    path = tmp_path / "model.pt"
    export_model(small_potential(seed=7), path)
    box = molecular_box()
    system = openmm.System()
    for mass in box.get_masses():
        system.addParticle(float(mass))
    system.setDefaultPeriodicBoxVectors(*(openmm.Vec3(*row) * 0.1 for row in box.cell.array))
    system.addForce(create_force(path, box.numbers.tolist(), periodic=True))
    integrator = openmm.VerletIntegrator(STEP_FS * 1e-3)
    context = openmm.Context(system, integrator, openmm.Platform.getPlatformByName("CPU"), {"Threads": "1"})
    context.setPositions(box.positions * 0.1)
    context.setVelocitiesToTemperature(300.0, 1)
    totals, kinetic = [], []
    start = time.perf_counter()
    for _ in range(N_STEPS // 20):
        integrator.step(20)
        state = context.getState(getEnergy=True)
        kinetic.append(state.getKineticEnergy()._value)
        totals.append(kinetic[-1] + state.getPotentialEnergy()._value)
    seconds = time.perf_counter() - start
    totals = np.array(totals)  # kJ/mol
    times = np.arange(1, len(totals) + 1) * 20 * STEP_FS
    drift = np.polyfit(times, totals, 1)[0] * times[-1]
    fluctuation = np.std(totals - np.polyval(np.polyfit(times, totals, 1), times))
    mean_kinetic = float(np.mean(kinetic))
    print(
        f"\nNVE {len(box)} atoms, {N_STEPS} x {STEP_FS} fs in {seconds:.1f} s: total-energy drift "
        f"{drift:+.2e} kJ/mol ({drift / mean_kinetic:+.1e} of the kinetic energy {mean_kinetic:.1f} kJ/mol), "
        f"fluctuation {fluctuation:.2e} kJ/mol"
    )
    assert abs(drift) < 0.01 * mean_kinetic
    assert fluctuation < 0.01 * mean_kinetic
