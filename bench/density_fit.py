"""Density-fitted against exact-integral labels: speed and the change in energies and forces.

For each system and level, one frame of the system's foundation-campaign pool is labelled with
exact integrals and with ``density_fit=True`` (metamlip.qm.calculators.compute, one thread),
timed interleaved in the same run. Prints and writes per (system, level): seconds of each, the
speed ratio, |dE| per atom (meV) and the largest |dF| component (meV/Angstrom).

    python bench/density_fit.py                                  # styrene and urea, HF and B3LYP/6-31G*
    python bench/density_fit.py --systems pyridine --levels 'pbe/def2-svp'
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

import numpy as np

from metamlip.qm.calculators import auxiliary_basis, compute
from metamlip.qm.campaign import read_chunk
from metamlip.qm.labelling import set_thread_budget
from metamlip.qm.levels import parse_level

ROOT = Path(__file__).resolve().parents[1]
GEOMETRIES = ROOT / "data" / "foundation" / "geometries"
RESULTS = ROOT / "bench" / "results" / "density_fit"
COLUMNS = ["system", "n_atoms", "level", "auxbasis", "exact_s", "fitted_s", "speedup",
           "energy_change_meV_per_atom", "max_force_change_meV_per_A"]


def measure(system: str, level_name: str, frame: int) -> dict[str, object]:
    """Label frame ``frame`` of ``system``'s pool both ways; one row of COLUMNS."""
    atoms = read_chunk(GEOMETRIES / f"{system}.extxyz.gz")[frame]
    level = parse_level(level_name)
    start = time.perf_counter()
    exact = compute(atoms, level)
    middle = time.perf_counter()
    fitted = compute(atoms, level, density_fit=True)
    end = time.perf_counter()
    return {
        "system": system, "n_atoms": len(atoms), "level": level.name,
        "auxbasis": auxiliary_basis(level),
        "exact_s": round(middle - start, 2), "fitted_s": round(end - middle, 2),
        "speedup": round((middle - start) / (end - middle), 2),
        "energy_change_meV_per_atom": round(abs(fitted.energy - exact.energy) / len(atoms) * 1e3, 3),
        "max_force_change_meV_per_A": round(float(np.abs(fitted.forces - exact.forces).max()) * 1e3, 3),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--systems", nargs="+", default=["styrene", "urea"],
                        help="ids of data/foundation/geometries pools")
    parser.add_argument("--levels", nargs="+", default=["hf/6-31g*", "b3lyp/6-31g*"])
    parser.add_argument("--frame", type=int, default=0, help="which frame of each pool")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    set_thread_budget(args.threads)
    rows = []
    for system in args.systems:
        for level in args.levels:
            row = measure(system, level, args.frame)
            print("  ".join(f"{k}={v}" for k, v in row.items()), flush=True)
            rows.append(row)
    args.results.mkdir(parents=True, exist_ok=True)
    with (args.results / "density_fit.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    (args.results / "density_fit.json").write_text(json.dumps(
        {"threads": args.threads, "frame": args.frame, "rows": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
