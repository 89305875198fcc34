"""Neighbour-list time: metamlip's cell-list op against vesin and ASE, measured in one run.

Random points in a periodic cubic box at liquid water's atom density (0.1003 atoms/A^3),
cutoff 5 A, full list, the same quantities from every library: i, j, integer shifts S,
distances d and vectors D. Calls of the libraries alternate, so background load affects them
alike; the printed time is the median. Target: ours <= 0.5 x vesin's time at 100k atoms.

    python bench/neighbor_list.py                       # 3k, 30k, 100k atoms, 2 threads
    python bench/neighbor_list.py --atoms 3000 30000 --ase-max 30000 --threads 1
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from typing import Callable

import numpy as np
import torch
import vesin
from ase import Atoms
from ase.neighborlist import neighbor_list as ase_neighbor_list

import metamlip.ops  # noqa: F401  (registers torch.ops.metamlip)

WATER_ATOM_DENSITY = 0.1003  # atoms / A^3


def water_density_box(n_atoms: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(positions [N, 3], cell [3, 3]) in Angstrom: uniform random points, cubic box."""
    rng = np.random.default_rng(seed)
    length = (n_atoms / WATER_ATOM_DENSITY) ** (1.0 / 3.0)
    return rng.random((n_atoms, 3)) * length, np.eye(3) * length


def median_ms(calls: dict[str, Callable[[], int]], repeats: int) -> tuple[dict[str, float], dict[str, int]]:
    """Median milliseconds per call of each function (calls alternate), and the pair counts."""
    pairs = {name: fn() for name, fn in calls.items()}  # warm-up, and the pair counts
    samples: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(repeats):
        for name, fn in calls.items():
            start = time.perf_counter()
            fn()
            samples[name].append(1e3 * (time.perf_counter() - start))
    return {name: statistics.median(s) for name, s in samples.items()}, pairs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--atoms", type=int, nargs="+", default=[3000, 30000, 100000])
    parser.add_argument("--cutoff", type=float, default=5.0, help="Angstrom")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--ase-max", type=int, default=100000, help="largest system ASE is run on")
    parser.add_argument("--threads", type=int, default=2, help="torch (OpenMP) threads of our op")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rc = args.cutoff
    print(f"# random periodic box at {WATER_ATOM_DENSITY} atoms/A^3, cutoff {rc} A, full list, i j S d D")
    print(f"# ours: {args.threads} thread(s); vesin {vesin.__version__}; median of {args.repeats} calls")
    print(f"# load average before the run (shared machine): {os.getloadavg()[0]:.1f}")
    print("| atoms | pairs | ours (ms) | vesin (ms) | ASE (ms) | ours / vesin | ASE / ours |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for n in args.atoms:
        positions, cell = water_density_box(n)
        x, h = torch.from_numpy(positions), torch.from_numpy(cell)
        pbc = torch.tensor([True, True, True])
        calculator = vesin.NeighborList(cutoff=rc, full_list=True)

        def ours() -> int:
            return int(torch.ops.metamlip.neighbor_list(x, rc, h, pbc, None, True, True)[0].shape[0])

        def theirs() -> int:
            return len(calculator.compute(points=positions, box=cell, periodic=True, quantities="ijSdD")[0])

        calls = {"ours": ours, "vesin": theirs}
        ms, pairs = median_ms(calls, args.repeats)
        if n <= args.ase_max:
            atoms = Atoms(numbers=np.ones(n, dtype=int), positions=positions, cell=cell, pbc=True)
            start = time.perf_counter()
            ase_pairs = len(ase_neighbor_list("ijSdD", atoms, rc)[0])
            ms["ase"] = 1e3 * (time.perf_counter() - start)
            pairs["ase"] = ase_pairs
        if len(set(pairs.values())) != 1:
            raise RuntimeError(f"the libraries found different numbers of pairs: {pairs}")
        ase_ms = f"{ms['ase']:.0f}" if "ase" in ms else "-"
        ase_ratio = f"{ms['ase'] / ms['ours']:.1f}" if "ase" in ms else "-"
        print(
            f"| {n} | {pairs['ours']} | {ms['ours']:.1f} | {ms['vesin']:.1f} | {ase_ms} | "
            f"{ms['ours'] / ms['vesin']:.2f} | {ase_ratio} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
