"""Configuration sampling with GFN2-xTB Langevin molecular dynamics (tblite + ASE).

Each (molecule, temperature) pair runs its own trajectory whose random numbers (initial
velocities and Langevin noise) come from ``numpy.random.default_rng([seed, crc32(name), T])``,
so a trajectory does not depend on which other molecules or temperatures are sampled.
"""

from __future__ import annotations

import sys
import zlib
from dataclasses import dataclass
from pathlib import Path

import ase.io
import numpy as np
from ase import Atoms, units
from ase.build import molecule
from ase.constraints import FixCom
from ase.md.langevin import Langevin
from ase.md.velocitydistribution import Stationary, ZeroRotation
from tqdm import tqdm


@dataclass(frozen=True)
class MDSettings:
    """Langevin MD settings. timestep: fs; friction: 1/fs; temperatures: K; steps are MD steps."""

    temperatures: tuple[float, ...] = (300.0, 600.0, 900.0)
    n_frames: int = 50
    stride: int = 50
    equilibration: int = 1000
    timestep: float = 0.5
    friction: float = 0.01
    seed: int = 0


def load_molecule(spec: str) -> tuple[str, Atoms]:
    """(name, atoms) from an ``ase.build.molecule`` name or an xyz/extxyz file (its first frame,
    named by the file stem)."""
    path = Path(spec)
    if path.is_file():
        atoms = ase.io.read(path, index=0)
        return path.name.split(".")[0], Atoms(atoms.numbers, positions=atoms.positions)
    try:
        return spec, molecule(spec)
    except KeyError:
        raise ValueError(f"molecule '{spec}': neither a file nor an ase.build.molecule name "
                         "(methylamine, for example, is 'H3CNH2')") from None


def config_id(name: str, temperature: float, seed: int, index: int) -> str:
    """Identifier of a sampled configuration, unique across seeds: ``CH3CH2OH-600K-s1-0007``."""
    return f"{name}-{temperature:g}K-s{seed}-{index:04d}"


def sample_md(name: str, atoms: Atoms, temperature: float, md: MDSettings) -> list[Atoms]:
    """``md.n_frames`` frames of a GFN2-xTB Langevin trajectory at ``temperature`` (K), one
    every ``md.stride`` steps after ``md.equilibration`` steps. Frames carry positions only,
    with info ``molecule``, ``temperature``, ``seed``, ``config_id``."""
    from tblite.ase import TBLite

    rng = np.random.default_rng([md.seed, zlib.crc32(name.encode()), round(temperature)])
    system = Atoms(atoms.numbers, positions=atoms.positions)
    system.calc = TBLite(method="GFN2-xTB", verbosity=0)
    system.set_constraint(FixCom())  # ASE's recommended replacement for Langevin(fixcm=True)
    masses = system.get_masses()[:, None]  # Maxwell-Boltzmann momenta, sqrt(amu * eV)
    momenta = rng.standard_normal((len(system), 3)) * np.sqrt(masses * units.kB * temperature)
    system.set_momenta(momenta)
    Stationary(system)
    ZeroRotation(system)
    dyn = Langevin(system, md.timestep * units.fs, temperature_K=temperature,
                   friction=md.friction / units.fs, fixcm=False, rng=rng)
    dyn.run(md.equilibration)
    frames = []
    for index in range(md.n_frames):
        dyn.run(md.stride)
        frame = Atoms(system.numbers, positions=system.positions)
        frame.info.update(molecule=name, temperature=float(temperature), seed=md.seed,
                          config_id=config_id(name, temperature, md.seed, index))
        frames.append(frame)
    return frames


def sample(specs: list[str], md: MDSettings, progress: bool = False) -> list[Atoms]:
    """Frames for every molecule spec and temperature, molecule-major; config_ids checked unique."""
    molecules = [load_molecule(spec) for spec in specs]
    runs = [(name, atoms, t) for name, atoms in molecules for t in md.temperatures]
    frames = []
    for name, atoms, temperature in tqdm(runs, desc="sample", unit="run", disable=not progress,
                                         file=sys.stderr):
        frames.extend(sample_md(name, atoms, temperature, md))
    ids = [f.info["config_id"] for f in frames]
    if len(set(ids)) != len(ids):
        raise ValueError("duplicate config_id: a molecule name was given twice")
    return frames
