"""Configuration sampling with GFN2-xTB (tblite + ASE): Langevin MD or normal-mode sampling.

Each (molecule, temperature) pair draws its random numbers (MD: initial velocities and
Langevin noise; normal modes: displacements) from
``numpy.random.default_rng([seed, crc32(name), round(T)])``, so its frames do not depend on
which other molecules or temperatures are sampled.
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

from metamlip.qm import normal_modes

METHODS = ("md", "normal-modes")


@dataclass(frozen=True)
class SamplingSettings:
    """method: ``md`` or ``normal-modes``; temperatures: K; n_frames per molecule and
    temperature. MD only: stride and equilibration in steps, timestep in fs, friction in 1/fs."""

    method: str = "md"
    temperatures: tuple[float, ...] = (300.0, 600.0, 900.0)
    n_frames: int = 50
    stride: int = 50
    equilibration: int = 1000
    timestep: float = 0.5
    friction: float = 0.01
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.temperatures or min(self.temperatures) <= 0:
            raise ValueError(f"temperatures must be positive (K), got {list(self.temperatures)}")
        for name in ("n_frames", "stride"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.equilibration < 0 or self.timestep <= 0 or self.friction < 0 or self.seed < 0:
            raise ValueError("equilibration, friction and seed must be >= 0 and timestep > 0")


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


def config_id(name: str, temperature: float, seed: int, index: int, method: str = "md") -> str:
    """Identifier of a sampled configuration, unique across seeds and methods:
    ``CH3CH2OH-600K-s1-0007`` (MD), ``CH3CH2OH-600K-s1-nm0007`` (normal modes)."""
    tag = "" if method == "md" else "nm"
    return f"{name}-{temperature:g}K-s{seed}-{tag}{index:04d}"


def _frame(name: str, numbers: np.ndarray, positions: np.ndarray, temperature: float,
           settings: SamplingSettings, index: int) -> Atoms:
    frame = Atoms(numbers, positions=positions)
    cid = config_id(name, temperature, settings.seed, index, settings.method)
    frame.info.update(molecule=name, temperature=float(temperature), seed=settings.seed,
                      config_id=cid)
    return frame


def _rng(name: str, temperature: float, seed: int) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(name.encode()), round(temperature)])


def sample_md(name: str, atoms: Atoms, temperature: float,
              settings: SamplingSettings) -> list[Atoms]:
    """``n_frames`` frames of a GFN2-xTB Langevin trajectory at ``temperature`` (K), one
    every ``stride`` steps after ``equilibration`` steps. Frames carry positions only,
    with info ``molecule``, ``temperature``, ``seed``, ``config_id``."""
    from tblite.ase import TBLite

    rng = _rng(name, temperature, settings.seed)
    system = Atoms(atoms.numbers, positions=atoms.positions)
    system.calc = TBLite(method="GFN2-xTB", verbosity=0)
    system.set_constraint(FixCom())  # ASE's recommended replacement for Langevin(fixcm=True)
    masses = system.get_masses()[:, None]  # Maxwell-Boltzmann momenta, sqrt(amu * eV)
    momenta = rng.standard_normal((len(system), 3)) * np.sqrt(masses * units.kB * temperature)
    system.set_momenta(momenta)
    Stationary(system)
    ZeroRotation(system)
    dyn = Langevin(system, settings.timestep * units.fs, temperature_K=temperature,
                   friction=settings.friction / units.fs, fixcm=False, rng=rng)
    dyn.run(settings.equilibration)
    frames = []
    for index in range(settings.n_frames):
        dyn.run(settings.stride)
        frames.append(_frame(name, system.numbers, system.positions, temperature, settings,
                             index))
    return frames


def sample_normal_modes(name: str, atoms: Atoms, settings: SamplingSettings) -> list[Atoms]:
    """``n_frames`` ANI normal-mode displacements of the GFN2-xTB minimum per temperature."""
    minimum = normal_modes.relax(atoms)
    modes, constants = normal_modes.vibrational_modes(minimum)
    if (constants <= 0).any():
        raise ValueError(f"molecule '{name}': non-positive force constant after relaxation")
    frames = []
    for temperature in settings.temperatures:
        rng = _rng(name, temperature, settings.seed)
        for index in range(settings.n_frames):
            positions = normal_modes.displace(minimum.positions, modes, constants,
                                              temperature, rng)
            frames.append(_frame(name, minimum.numbers, positions, temperature, settings, index))
    return frames


def sample(specs: list[str], settings: SamplingSettings, progress: bool = False) -> list[Atoms]:
    """Frames for every molecule spec and temperature, molecule-major; config_ids checked unique."""
    if settings.method not in METHODS:
        raise ValueError(f"sampling method '{settings.method}': expected one of "
                         f"{', '.join(METHODS)}")
    frames = []
    for spec in tqdm(specs, desc="sample", unit="molecule", disable=not progress,
                     file=sys.stderr):
        name, atoms = load_molecule(spec)
        if settings.method == "normal-modes":
            frames.extend(sample_normal_modes(name, atoms, settings))
        else:
            for temperature in settings.temperatures:
                frames.extend(sample_md(name, atoms, temperature, settings))
    ids = [f.info["config_id"] for f in frames]
    if len(set(ids)) != len(ids):
        raise ValueError("duplicate config_id: a molecule name was given twice")
    return frames
