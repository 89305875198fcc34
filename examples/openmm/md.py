"""metamlip in OpenMM: molecular dynamics with an exported model (or a checkpoint).

Two runs, each writing energies (CSV, from StateDataReporter), a DCD trajectory and the PDB
topology that goes with it:
  - vacuum: one ethanol molecule, Langevin dynamics at 300 K (no box);
  - box: 8 small organic molecules in a periodic 12 A cubic box (a dense gas, so molecules
    meet), NVE (velocity Verlet) from 300 K velocities.

    make demo                                    # once, from the repository root: trains the model
    metamlip-export demo_out/quickstart/model.ckpt -o demo_out/quickstart/model.pt
    python examples/openmm/md.py                 # -> demo_out/openmm/{vacuum,box}.{csv,dcd,pdb}
    python examples/openmm/md.py --model model.pt --steps 20000 --backend pythonforce
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import openmm
import openmm.app
import openmm.unit as unit
from ase import Atoms
from ase.build import molecule

from metamlip.openmm import create_force

MOLECULES = ("CH3CH2OH", "CH3CH2NH2", "HCOOH", "H2O")


def molecular_box(n_per_side: int = 2, spacing: float = 6.0, seed: int = 0) -> Atoms:
    """n_per_side^3 molecules (cycling through MOLECULES), randomly rotated, on a cubic grid
    with `spacing` Angstrom, periodic."""
    rng = np.random.default_rng(seed)
    side = n_per_side * spacing
    box = Atoms(cell=np.eye(3) * side, pbc=True)
    for k, index in enumerate(np.ndindex(n_per_side, n_per_side, n_per_side)):
        part = molecule(MOLECULES[k % len(MOLECULES)])
        part.rotate(rng.uniform(0, 360), rng.normal(size=3), center="COP")
        part.positions += (np.array(index) + 0.5) * spacing - part.positions.mean(0)
        box += part
    return box


def topology_of(atoms: Atoms) -> openmm.app.Topology:
    """A Topology of `atoms` (one residue, no bonds: the force needs only the elements and the
    box, and the DCD/PDB only atom names)."""
    topology = openmm.app.Topology()
    residue = topology.addResidue("MOL", topology.addChain())
    for k, number in enumerate(atoms.numbers):
        topology.addAtom(f"{atoms.get_chemical_symbols()[k]}{k}", openmm.app.Element.getByAtomicNumber(int(number)), residue)
    if atoms.pbc.all():
        topology.setPeriodicBoxVectors(atoms.cell.array * 0.1 * unit.nanometer)
    return topology


def run(name: str, atoms: Atoms, args: argparse.Namespace, langevin: bool) -> None:
    """Simulate `atoms` for args.steps steps of 0.5 fs; writes out/{name}.{pdb,csv,dcd}."""
    topology = topology_of(atoms)
    system = openmm.System()
    for mass in atoms.get_masses():
        system.addParticle(float(mass))
    if atoms.pbc.all():
        system.setDefaultPeriodicBoxVectors(*topology.getPeriodicBoxVectors())
    system.addForce(create_force(args.model, topology, backend=args.backend))
    step = 0.5 * unit.femtoseconds
    if langevin:
        integrator = openmm.LangevinMiddleIntegrator(300 * unit.kelvin, 1 / unit.picosecond, step)
    else:
        integrator = openmm.VerletIntegrator(step)
    simulation = openmm.app.Simulation(topology, system, integrator, openmm.Platform.getPlatformByName(args.platform))
    positions = atoms.positions * 0.1 * unit.nanometer
    simulation.context.setPositions(positions)
    simulation.context.setVelocitiesToTemperature(300 * unit.kelvin, 1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / f"{name}.pdb", "w") as handle:
        openmm.app.PDBFile.writeFile(topology, positions, handle)
    interval = max(1, args.steps // 100)
    simulation.reporters.append(openmm.app.DCDReporter(str(out / f"{name}.dcd"), interval))
    simulation.reporters.append(
        openmm.app.StateDataReporter(
            str(out / f"{name}.csv"), interval, step=True, time=True, potentialEnergy=True,
            kineticEnergy=True, totalEnergy=True, temperature=True, speed=True,
        )
    )
    simulation.step(args.steps)
    state = simulation.context.getState(getEnergy=True)
    total = state.getPotentialEnergy() + state.getKineticEnergy()
    print(
        f"{name}: {len(atoms)} atoms, {args.steps} steps of 0.5 fs "
        f"({'Langevin 300 K' if langevin else 'NVE'}), final total energy "
        f"{total.value_in_unit(unit.kilojoule_per_mole):.3f} kJ/mol -> {out / name}.{{csv,dcd,pdb}}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="demo_out/quickstart/model.pt", help="exported model or checkpoint")
    parser.add_argument("--steps", type=int, default=2000, help="MD steps of 0.5 fs per run")
    parser.add_argument("--out", default="demo_out/openmm", help="output directory")
    parser.add_argument("--platform", default="CPU", choices=["Reference", "CPU", "CUDA", "OpenCL"])
    parser.add_argument("--backend", choices=["torchforce", "pythonforce"], help="default: torchforce when it works")
    args = parser.parse_args()
    if not Path(args.model).exists():
        parser.error(f"{args.model} not found: train (`make demo`) and export (`metamlip-export`) a model first")
    run("vacuum", molecule("CH3CH2OH"), args, langevin=True)
    run("box", molecular_box(), args, langevin=False)


if __name__ == "__main__":
    main()
