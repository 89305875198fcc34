"""Sampling over the molecule library: a deterministic pool of geometries per system.

A system's pool joins its RDKit conformers relaxed with GFN2-xTB (loosely, to max |F| <
START_FMAX: MD started from an MMFF structure far from the xTB minimum, e.g. CO2's, would first
be heated far above its temperature by the released strain), GFN2-xTB Langevin MD frames at
each MD temperature (the i-th temperature starts from relaxed conformer i mod n_conformers)
and ANI normal-mode displacements of the GFN2-xTB minimum, then shuffles them with
``default_rng([seed, crc32(id)])``: any prefix of the pool is a mix of all methods, so a
dataset that needs n frames of a system takes its first n. Clusters get their own settings
(a campaign's ``cluster_sampling``: no normal modes, whose soft intermolecular modes would
give huge displacements).
"""

from __future__ import annotations

import time
import zlib
from dataclasses import dataclass, fields, replace

import numpy as np
from ase import Atoms

from metamlip.qm import normal_modes
from metamlip.qm.embedding import EmbeddingError, embed_system
from metamlip.qm.library import Library
from metamlip.qm.sampling import SamplingSettings, config_id, sample_md

MIN_FORCE_CONSTANT = 0.05  # eV/Angstrom^2: softer modes (e.g. free rotors) are not displaced
START_FMAX = 0.05  # eV/Angstrom: conformers are relaxed with GFN2-xTB to this before use
START_STEPS = 300  # BFGS steps at most for that relaxation


@dataclass(frozen=True)
class PoolSettings:
    """conformers: RDKit conformers kept as frames; md_temperatures (K), md_frames per
    temperature, stride and equilibration (steps), timestep (fs), friction (1/fs);
    nm_temperatures (K) and nm_frames per temperature of normal-mode sampling; seed."""

    conformers: int = 4
    md_temperatures: tuple[float, ...] = (300.0, 600.0, 1200.0)
    md_frames: int = 15
    stride: int = 20
    equilibration: int = 200
    timestep: float = 0.5
    friction: float = 0.01
    nm_temperatures: tuple[float, ...] = (300.0, 600.0)
    nm_frames: int = 6
    seed: int = 0

    @classmethod
    def from_dict(cls, values: dict, where: str) -> PoolSettings:
        """Settings from a YAML mapping; ValueError names an unknown key or bad value."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"{where}: unknown key(s) {', '.join(unknown)} "
                             f"(known: {', '.join(sorted(known))})")
        out = cls()
        for key, value in values.items():
            default = getattr(out, key)
            try:
                if isinstance(default, tuple):
                    value = tuple(float(v) for v in value)
                    bad = any(v <= 0 for v in value)
                else:
                    value = type(default)(value)
                    bad = value < 0 or (key in ("stride", "timestep") and value == 0)
            except (TypeError, ValueError):
                bad = True
            if bad:
                raise ValueError(f"{where}.{key}: invalid value {values[key]!r}")
            out = replace(out, **{key: value})
        return out


def _tag(frame: Atoms, system_id: str, method: str, temperature: float | None,
         cid: str) -> Atoms:
    out = Atoms(frame.numbers, positions=frame.positions)
    out.info.update(molecule=system_id, sampling=method, config_id=cid)
    if temperature is not None:
        out.info["temperature"] = float(temperature)
    return out


def _relaxed(atoms: Atoms) -> Atoms:
    """``atoms`` relaxed with GFN2-xTB (BFGS to max |F| < START_FMAX, START_STEPS at most)."""
    from ase.optimize import BFGS
    from tblite.ase import TBLite

    system = Atoms(atoms.numbers, positions=atoms.positions)
    system.calc = TBLite(method="GFN2-xTB", verbosity=0)
    BFGS(system, logfile=None).run(fmax=START_FMAX, steps=START_STEPS)
    return Atoms(system.numbers, positions=system.positions)


def _normal_mode_frames(system_id: str, start: Atoms, settings: PoolSettings) -> list[Atoms]:
    minimum = normal_modes.relax(start)
    modes, constants = normal_modes.vibrational_modes(minimum)
    stiff = constants > MIN_FORCE_CONSTANT
    modes, constants = modes[stiff], constants[stiff]
    frames = []
    for temperature in settings.nm_temperatures:
        rng = np.random.default_rng([settings.seed, zlib.crc32(system_id.encode()),
                                     round(temperature)])
        for index in range(settings.nm_frames):
            positions = normal_modes.displace(minimum.positions, modes, constants,
                                              temperature, rng)
            cid = config_id(system_id, temperature, settings.seed, index, "normal-modes")
            frames.append(_tag(Atoms(minimum.numbers, positions=positions), system_id, "nm",
                               temperature, cid))
    return frames


def sample_pool(system_id: str, library: Library,
                settings: PoolSettings) -> tuple[list[Atoms], list[str]]:
    """The shuffled pool of ``system_id`` (see module docstring) and the parts that failed
    (e.g. ``"md 1200 K: CalculationFailed: ..."``; their frames are missing, the rest is kept).
    Frames carry positions and info ``molecule``, ``sampling`` (conformer = relaxed
    conformer, md, nm),
    ``temperature`` (md, nm), ``config_id`` and ``pool_seconds`` (wall time of the pool)."""
    start_time = time.perf_counter()
    problems: list[str] = []
    try:
        conformers = embed_system(system_id, library, max(settings.conformers, 1), settings.seed)
    except EmbeddingError as err:
        return [], [f"embedding: {err}"]
    for k, conformer in enumerate(conformers):
        try:
            conformers[k] = _relaxed(conformer)
        except Exception as err:  # the xTB program failed: keep the RDKit structure
            problems.append(f"relaxing conformer {k}: {type(err).__name__}: {err}")
    frames = [_tag(c, system_id, "conformer", None, f"{system_id}-conf-s{settings.seed}-{k:04d}")
              for k, c in enumerate(conformers[:settings.conformers])]
    md_temperatures = settings.md_temperatures if settings.md_frames else ()
    for k, temperature in enumerate(md_temperatures):
        md = SamplingSettings(method="md", temperatures=(temperature,),
                              n_frames=settings.md_frames, stride=settings.stride,
                              equilibration=settings.equilibration, timestep=settings.timestep,
                              friction=settings.friction, seed=settings.seed)
        try:
            trajectory = sample_md(system_id, conformers[k % len(conformers)], temperature, md)
        except Exception as err:  # the xTB program failed: keep the other parts
            problems.append(f"md {temperature:g} K: {type(err).__name__}: {err}")
            continue
        frames += [_tag(f, system_id, "md", temperature, f.info["config_id"]) for f in trajectory]
    if settings.nm_frames and settings.nm_temperatures:
        try:
            frames += _normal_mode_frames(system_id, conformers[0], settings)
        except Exception as err:
            problems.append(f"normal modes: {type(err).__name__}: {err}")
    order = np.random.default_rng([settings.seed, zlib.crc32(system_id.encode())]).permutation(
        len(frames))
    seconds = round(time.perf_counter() - start_time, 2)
    pool = [frames[i] for i in order]
    for frame in pool:
        frame.info["pool_seconds"] = seconds
    return pool, problems
