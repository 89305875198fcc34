"""Torsion (and bond, angle) scans of held-out molecules after fine-tuning on MD frames only
(issue 13): the paper's smoother-surface claim, where a model that never saw the torsion must
still get its shape.

    python bench/foundation_scan.py --work runs/foundation                   # after foundation.py's fine-tunes
    python bench/foundation_scan.py --work runs/foundation --n 50 --starts scratch multihead

For each molecule of SCANS (held-out molecules of foundation_data.py: no frame of them at any
level was in pre-training), the models fine-tuned by `bench/foundation.py finetune` on N MD /
normal-mode frames of the held-out molecules at `mp2/cc-pvdz` (WORK/runs/START/nN-seedS/) are
compared with `mp2/cc-pvdz` computed along rigid scans of the molecule's first library
conformer: `metamlip-eval scan` with the torsion about the molecule's only rotatable bond
between two heavy atoms that both carry another heavy atom (the backbone torsion, not a methyl
rotor), plus its default bond and angle scans. The reference energies are cached in
RESULTS/scan/MOLECULE/scan.csv. Results: RESULTS/scan/MOLECULE/{scan.png, scan_metrics.md, ...},
RESULTS/foundation_scan.csv (every molecule, start and scan) and foundation_scan.md (per start:
mean torsion RMSE, roughness and wiggle over the molecules).
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import sys
from pathlib import Path

import numpy as np
from ase.io import read, write

sys.path.insert(0, str(Path(__file__).resolve().parent))
import foundation_data as fd  # noqa: E402

from metamlip.atomic import atomic_path  # noqa: E402
from metamlip.cli.eval import main as eval_main  # noqa: E402
from metamlip.meta.scan import ScanError, bonds, fragment  # noqa: E402

RESULTS = fd.ROOT / "bench" / "results" / "foundation"
SCANS = ("butadiene", "ethanolamine", "n-methylacetamide")  # a conjugated, an H-bonded and an amide torsion
STARTS = ("scratch", "scratch-ts2", "hipnn-meta-hcno", "hipnn-meta-hcno-ts2", "transfer", "joint", "multihead", "reptile", "reptile-tuned",
          "multihead-ts2")
COLUMNS = ["molecule", "start", "n_train", "seed", "scan", "rmse_meV", "roughness", "wiggle"]


def backbone_torsion(atoms) -> tuple[int, int, int, int]:
    """(a, b, c, d), all heavy atoms, about the one bond b-c outside rings whose two ends both
    have another heavy neighbour; ScanError if there is none or more than one."""
    z = atoms.numbers
    pairs = bonds(atoms)
    heavy_neighbours = {i: sorted({j for p in pairs if i in p for j in p if j != i and z[j] > 1}) for i in range(len(atoms))}
    found = []
    for b, c in pairs:
        if z[b] == 1 or z[c] == 1:
            continue
        ends_b = [k for k in heavy_neighbours[b] if k != c]
        ends_c = [k for k in heavy_neighbours[c] if k != b]
        if not (ends_b and ends_c):
            continue
        try:
            fragment(atoms, b, c)
        except ScanError:  # in a ring
            continue
        found.append((ends_b[0], b, c, ends_c[0]))
    if len(found) != 1:
        raise ScanError(f"{atoms.get_chemical_formula()}: {len(found)} backbone torsions, expected one")
    return found[0]


def first_conformer(molecule: str, out: Path) -> Path:
    """The molecule's first library conformer (data/foundation/geometries) as OUT/MOLECULE.xyz."""
    source = fd.FOUNDATION / "geometries" / f"{molecule}.extxyz.gz"
    with gzip.open(source, "rt") as handle:
        atoms = read(handle, index=0, format="extxyz")
    path = out / f"{molecule}.xyz"
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        write(tmp, atoms, format="xyz")
    return path


def scan_molecule(work: Path, results: Path, molecule: str, starts: list[str], n_train: int, seed: int, points: int) -> list[dict]:
    """Run `metamlip-eval scan` for one molecule; returns its rows of COLUMNS."""
    out = results / "scan" / molecule
    geometry = first_conformer(molecule, out)
    torsion = backbone_torsion(read(geometry))
    models = [f"{start}={work / 'runs' / start / f'n{n_train}-seed{seed}' / 'model.ckpt'}" for start in starts]
    argv = ["scan", "--molecule", str(geometry), "--reference", fd.TARGET_LEVEL, "--points", str(points),
            "--torsion", *map(str, torsion), "--model", *models, "--out", str(out)]
    if eval_main(argv) != 0:
        raise RuntimeError(f"metamlip-eval {' '.join(argv)} failed")
    metrics = json.loads((out / "scan_metrics.json").read_text())["metrics"]
    return [
        {"molecule": molecule, "start": start, "n_train": n_train, "seed": seed, "scan": scan.split()[0], **values}
        for start, per_scan in metrics.items() for scan, values in per_scan.items()
    ]


def _finite_mean(values: list[float]) -> float:
    finite = [v for v in values if np.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")


def summary_markdown(rows: list[dict], n_train: int) -> str:
    """Per start and scan kind: mean RMSE, roughness and wiggle over the molecules."""
    starts = list(dict.fromkeys(r["start"] for r in rows))
    molecules = list(dict.fromkeys(r["molecule"] for r in rows))
    lines = [
        f"Rigid scans of {len(molecules)} held-out molecules ({', '.join(molecules)}) against {fd.TARGET_LEVEL}, "
        f"models fine-tuned on N = {n_train} MD/normal-mode frames of the held-out molecules (no scan geometry). "
        "Mean over molecules of RMSE (meV, mean offset removed) / roughness (1 = as curved as the reference) / "
        "wiggle (0 = error linear along the scan).", "",
        "| start | torsion | bond | angle |", "| --- | --- | --- | --- |",
    ]
    for start in starts:
        cells = []
        for kind in ("torsion", "bond", "angle"):
            sel = [r for r in rows if r["start"] == start and r["scan"] == kind]
            cells.append(" / ".join(f"{_finite_mean([r[k] for r in sel]):.{p}f}" for k, p in (("rmse_meV", 1), ("roughness", 2), ("wiggle", 2))) if sel else "–")
        lines.append(f"| {start} | " + " | ".join(cells) + " |")
    lines += ["", "Torsion RMSE (meV) per molecule:", "", "| start | " + " | ".join(molecules) + " |", "| --- |" + " ---: |" * len(molecules)]
    for start in starts:
        values = {r["molecule"]: r["rmse_meV"] for r in rows if r["start"] == start and r["scan"] == "torsion"}
        lines.append(f"| {start} | " + " | ".join(f"{values[m]:.1f}" if m in values else "–" for m in molecules) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", required=True, help="bench/foundation.py's work folder")
    parser.add_argument("--results", default=str(RESULTS))
    parser.add_argument("--molecules", nargs="+", default=list(SCANS))
    parser.add_argument("--starts", nargs="+", default=list(STARTS))
    parser.add_argument("--n", type=int, default=100, help="fine-tuning frames of the models compared")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--points", type=int, default=25, help="points per scan")
    args = parser.parse_args(argv)
    work, results = Path(args.work), Path(args.results)
    heldout = json.loads((work / "prepared.json").read_text())["heldout_molecules"]
    unknown = [m for m in args.molecules if m not in heldout]
    if unknown:
        parser.error(f"not held-out molecules of {work}: {', '.join(unknown)} (held out: {', '.join(heldout)})")
    missing = [s for s in args.starts if not (work / "runs" / s / f"n{args.n}-seed{args.seed}" / "model.ckpt").exists()]
    if missing:
        parser.error(f"no fine-tuned model at N = {args.n}, seed {args.seed} for: {', '.join(missing)} "
                     f"(run `python bench/foundation.py finetune --work {work} --start START --n {args.n} --seed {args.seed}`)")
    rows = [row for molecule in args.molecules for row in scan_molecule(work, results, molecule, args.starts, args.n, args.seed, args.points)]
    with atomic_path(results / "foundation_scan.csv") as tmp:
        with open(tmp, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=COLUMNS)
            writer.writeheader()
            writer.writerows(rows)
    text = summary_markdown(rows, args.n)
    with atomic_path(results / "foundation_scan.md") as tmp:
        tmp.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
