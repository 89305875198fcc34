"""Rigid scans of a molecule's energy surface: models against a reference level.

Three scans per molecule (chosen automatically unless given as atom indices):
- bond:    an X-H bond stretched from 0.75x to 3.0 A (through dissociation), only H moving;
- angle:   the angle at the heavy atom of that bond, +-40 degrees around equilibrium;
- torsion: a dihedral about a heavy-atom bond through 360 degrees, the fragment on one
           side rotating rigidly.

Per model and scan: RMSE against the reference after removing the mean offset (meV), and two
smoothness figures from the second finite difference along the (evenly spaced) scan,
d2E_k = E_{k+1} - 2 E_k + E_{k-1}:
- roughness = RMS(d2E_model) / RMS(d2E_ref) (1 = as curved as the reference);
- wiggle    = RMS(d2(E_model - E_ref)) / RMS(d2E_ref) (0 = the model's error is linear
  along the scan; spurious oscillations make it large).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from ase import Atoms
from ase.build import molecule as ase_molecule
from ase.io import read as ase_read
from ase.neighborlist import build_neighbor_list, natural_cutoffs

from metamlip.atomic import atomic_path
from metamlip.data import Configuration
from metamlip.data.batching import GraphSet
from metamlip.nn.potential import Potential
from metamlip.train.metrics import predict


class ScanError(ValueError):
    """A molecule or coordinate that cannot be scanned."""


@dataclass
class Scan:
    """kind: bond|angle|torsion; atoms: the defining indices; values: coordinate (A or deg);
    geometries: [n_points] Atoms."""

    kind: str
    atoms: tuple[int, ...]
    values: np.ndarray
    geometries: list[Atoms]

    @property
    def name(self) -> str:
        return f"{self.kind} {'-'.join(str(a) for a in self.atoms)}"


def load_molecule(spec: str) -> Atoms:
    """An ase.build.molecule name (e.g. CH3CH2OH) or a structure file."""
    if Path(spec).exists():
        return ase_read(spec)
    try:
        return ase_molecule(spec)
    except KeyError:
        raise ScanError(f"{spec!r} is neither a file nor an ase.build.molecule name") from None


def bonds(atoms: Atoms) -> list[tuple[int, int]]:
    nl = build_neighbor_list(atoms, natural_cutoffs(atoms), self_interaction=False, bothways=False)
    return sorted((i, int(j)) for i in range(len(atoms)) for j in nl.get_neighbors(i)[0])


def fragment(atoms: Atoms, a: int, b: int) -> list[int]:
    """Atoms on b's side of the a-b bond (b included)."""
    neighbours: dict[int, set[int]] = {i: set() for i in range(len(atoms))}
    for i, j in bonds(atoms):
        neighbours[i].add(j)
        neighbours[j].add(i)
    neighbours[a].discard(b)
    neighbours[b].discard(a)
    seen, stack = {b}, [b]
    while stack:
        for n in neighbours[stack.pop()]:
            if n not in seen:
                seen.add(n)
                stack.append(n)
    if a in seen:
        raise ScanError(f"atoms {a} and {b} are in a ring: a rigid torsion about them is not defined")
    return sorted(seen)


def default_coordinates(atoms: Atoms) -> dict[str, tuple[int, ...]]:
    """A heavy-atom-H bond (preferring O-H, then N-H), the angle at its heavy atom, and a
    torsion about a heavy-atom bond with that H at one end when possible."""
    z = atoms.numbers
    pairs = bonds(atoms)
    xh = [(i, j) if z[j] == 1 else (j, i) for i, j in pairs if (z[i] == 1) != (z[j] == 1)]
    if not xh:
        raise ScanError("the molecule has no bond to hydrogen to scan")
    heavy, hydrogen = max(xh, key=lambda p: (z[p[0]], -p[1]))
    others = [j if i == heavy else i for i, j in pairs if heavy in (i, j) and hydrogen not in (i, j)]
    if not others:
        raise ScanError("no angle at the scanned bond's heavy atom")
    third = max(others, key=lambda k: z[k])
    out = {"bond": (heavy, hydrogen), "angle": (third, heavy, hydrogen)}
    rotors = [(i, j) for i, j in pairs if z[i] > 1 and z[j] > 1]
    for b, c in sorted(rotors, key=lambda p: (heavy not in p, p)):
        if b == heavy:
            b, c = c, b
        ends_b = [k for i, j in pairs for k in (i, j) if b in (i, j) and k not in (b, c)]
        ends_c = [k for i, j in pairs for k in (i, j) if c in (i, j) and k not in (b, c)]
        if ends_b and ends_c:
            d = hydrogen if hydrogen in ends_c else ends_c[0]
            a = max(ends_b, key=lambda k: z[k])
            out["torsion"] = (a, b, c, d)
            break
    return out


def make_scans(atoms: Atoms, coordinates: dict[str, tuple[int, ...]], points: int = 25) -> list[Scan]:
    scans = []
    for kind, idx in coordinates.items():
        geometries = []
        if kind == "bond":
            i, j = idx
            r0 = atoms.get_distance(i, j)
            values = np.linspace(0.75 * r0, 3.0, points)
            for v in values:
                g = atoms.copy()
                g.set_distance(i, j, v, fix=0, mask=[k in fragment(atoms, i, j) for k in range(len(atoms))])
                geometries.append(g)
        elif kind == "angle":
            i, j, k = idx
            a0 = atoms.get_angle(i, j, k)
            values = np.linspace(a0 - 40, a0 + 40, points)
            for v in values:
                g = atoms.copy()
                g.set_angle(i, j, k, v, mask=[m in fragment(atoms, j, k) for m in range(len(atoms))])
                geometries.append(g)
        elif kind == "torsion":
            a, b, c, d = idx
            d0 = atoms.get_dihedral(a, b, c, d)
            values = np.linspace(0, 360, points)
            for v in values:
                g = atoms.copy()
                g.set_dihedral(a, b, c, d, d0 + v, mask=[m in fragment(atoms, b, c) for m in range(len(atoms))])
                geometries.append(g)
        else:
            raise ScanError(f"unknown scan {kind!r} (bond, angle, torsion)")
        scans.append(Scan(kind, tuple(int(x) for x in idx), np.asarray(values, dtype=float), geometries))
    return scans


def model_energies(potential: Potential, geometries: Sequence[Atoms], level: str) -> np.ndarray:
    """Energies (eV) of `geometries` at `level` of the model."""
    configs = [
        Configuration(numbers=g.numbers.astype(np.int64), positions=g.positions.astype(np.float64), level=level)
        for g in geometries
    ]
    with torch.enable_grad():
        return predict(potential, GraphSet(configs, potential.cutoff), level=level).energy_pred


def reference_energies(geometries: Sequence[Atoms], level: str) -> np.ndarray:
    """Energies (eV) at `level` computed with metamlip.qm (PySCF or tblite); NaN where the SCF fails."""
    from metamlip.qm.calculators import LabelError, compute
    from metamlip.qm.levels import parse_level

    parsed = parse_level(level)
    out = []
    for g in geometries:
        try:
            out.append(compute(g, parsed, forces=False).energy)
        except LabelError:
            out.append(float("nan"))
    return np.array(out)


def second_difference_rms(values: np.ndarray) -> float:
    d2 = values[2:] - 2 * values[1:-1] + values[:-2]
    d2 = d2[np.isfinite(d2)]
    return float(np.sqrt(np.mean(d2**2))) if d2.size else float("nan")


def scan_metrics(reference: np.ndarray, model: np.ndarray) -> dict[str, float]:
    """rmse_meV (mean offset removed), roughness and wiggle (see the module docstring)."""
    ok = np.isfinite(reference) & np.isfinite(model)
    diff = model[ok] - reference[ok]
    scale = second_difference_rms(reference)
    return {
        "rmse_meV": float(np.sqrt(np.mean((diff - diff.mean()) ** 2)) * 1000) if diff.size else float("nan"),
        "roughness": second_difference_rms(model) / scale if scale > 0 else float("nan"),
        "wiggle": second_difference_rms(model - reference) / scale if scale > 0 else float("nan"),
    }


def write_scan_csv(path: Path, scans: list[Scan], reference: dict[str, np.ndarray], models: dict[str, dict[str, np.ndarray]]) -> None:
    columns = ["scan", "atoms", "coordinate", "reference_eV", *[f"{name}_eV" for name in models]]
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(columns)
            for scan in scans:
                for k, value in enumerate(scan.values):
                    row = [scan.kind, "-".join(map(str, scan.atoms)), f"{value:.6f}", f"{reference[scan.name][k]:.8f}"]
                    row += [f"{models[name][scan.name][k]:.8f}" for name in models]
                    writer.writerow(row)


def read_reference_csv(path: Path, scans: list[Scan]) -> dict[str, np.ndarray] | None:
    """Reference energies stored by an earlier run with the same scans (or None)."""
    if not path.exists():
        return None
    rows: dict[str, list[tuple[float, float]]] = {}
    with open(path) as handle:
        for row in csv.DictReader(handle):
            rows.setdefault(f"{row['scan']} {row['atoms']}", []).append((float(row["coordinate"]), float(row["reference_eV"])))
    out = {}
    for scan in scans:
        stored = rows.get(scan.name)
        if stored is None or len(stored) != len(scan.values) or not np.allclose([s[0] for s in stored], scan.values, atol=1e-5):
            return None
        out[scan.name] = np.array([s[1] for s in stored])
    return out


def scan_plot(path: Path, scans: list[Scan], reference: dict[str, np.ndarray], models: dict[str, dict[str, np.ndarray]], title: str) -> None:
    from metamlip.train.plots import plt, save_png  # plots selects the Agg backend

    fig, axes = plt.subplots(1, len(scans), figsize=(5 * len(scans), 4.2), squeeze=False)
    units = {"bond": "distance (Å)", "angle": "angle (°)", "torsion": "dihedral change (°)"}
    for ax, scan in zip(axes[0], scans):
        ref = reference[scan.name]
        base = np.nanmin(ref)
        ax.plot(scan.values, ref - base, "k-", lw=2, label="reference")
        for name, values in models.items():
            curve = values[scan.name]
            ok = np.isfinite(ref)
            shift = np.mean(curve[ok] - ref[ok])  # align means, as in the RMSE
            ax.plot(scan.values, curve - shift - base, marker=".", label=name)
        ax.set_xlabel(units[scan.kind])
        ax.set_ylabel("E − min E_ref (eV)")
        ax.set_title(scan.name)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    save_png(fig, path, title)


def scan_summary_markdown(metrics: dict[str, dict[str, dict[str, float]]], scans: list[Scan]) -> str:
    lines = ["| model | " + " | ".join(f"{s.name}: RMSE meV / roughness / wiggle" for s in scans) + " |"]
    lines.append("| --- |" + " --- |" * len(scans))
    for name, per_scan in metrics.items():
        cells = []
        for s in scans:
            m = per_scan[s.name]
            cells.append(f"{m['rmse_meV']:.1f} / {m['roughness']:.2f} / {m['wiggle']:.2f}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
