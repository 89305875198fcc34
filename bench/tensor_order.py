"""HIP-NN-TS cost: energy + forces per call for tensor_order 0, 1, 2, ours and hippynn's.

The bench/model.py set-up (random H/C/N/O boxes at 0.1 atoms/A^3, n_features 64, 20
sensitivities, 2 interaction blocks of 3 layers, cutoff 5 A, the same pairs for everyone,
parameters fixed as in MD), with model.tensor_order 0 (HIP-NN), 1 and 2 (HIP-NN-TS), and
hippynn's Hipnn, HipnnVec and HipnnQuad (numba kernels, resnet=False) beside them. Calls
alternate between all six; the printed time is the median. A call: pair vectors from
positions, energies, forces by autograd.

    python bench/tensor_order.py                     # 1k atoms, float32, 1 thread
    python bench/tensor_order.py --atoms 1000 10000 --threads 2 --skip-hippynn
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import warnings
from typing import Callable

import torch
from model import SIZES, SPECIES, random_system

from metamlip.nn.hipnn import HIPNN

ORDERS = (0, 1, 2)
Call = Callable[[], torch.Tensor]


def forces_call(energy_of_vectors: Callable[[torch.Tensor], torch.Tensor], system: dict) -> Call:
    """A call computing the total energy from the pair vectors [P, 3] and returning the forces [N, 3]."""
    i, j, cell = system["i"], system["j"], system["cell"]
    shift_vectors = system["shifts"].to(cell.dtype) @ cell

    def call() -> torch.Tensor:
        positions = system["positions"].detach().requires_grad_(True)
        vectors = positions.index_select(0, j) - positions.index_select(0, i) + shift_vectors
        return -torch.autograd.grad(energy_of_vectors(vectors), positions)[0]

    return call


def ours(order: int, system: dict) -> Call:
    torch.manual_seed(0)
    model = HIPNN(len(SPECIES), n_atom_layers=3, implementation="cpp", tensor_order=order, **SIZES)
    model = model.to(system["positions"].dtype).requires_grad_(False)

    def energy(vectors: torch.Tensor) -> torch.Tensor:
        distances = torch.linalg.vector_norm(vectors, dim=1)
        unit_vectors = vectors / distances.unsqueeze(1) if order > 0 else None
        return model(system["species"], distances, system["i"], system["j"], None, unit_vectors).sum()

    return forces_call(energy, system)


def hippynn_model(order: int, system: dict) -> Call:
    import hippynn.custom_kernels
    from hippynn.networks.hipnn import Hipnn, HipnnQuad, HipnnVec

    hippynn.custom_kernels.set_custom_kernels("numba")
    torch.manual_seed(0)
    network = (Hipnn, HipnnVec, HipnnQuad)[order](
        SIZES["n_features"], SIZES["n_sensitivities"], SIZES["soft_min"], SIZES["soft_max"], SIZES["cutoff"],
        n_atom_layers=2, n_interaction_layers=SIZES["n_interactions"], possible_species=[0, *SPECIES], resnet=False,
    )  # fmt: skip
    heads = torch.nn.ModuleList(torch.nn.Linear(w, 1) for w in network.feature_sizes)
    dtype = system["positions"].dtype
    network, heads = network.to(dtype).requires_grad_(False), heads.to(dtype).requires_grad_(False)
    onehot = torch.nn.functional.one_hot(system["species"], len(SPECIES)).to(dtype)

    def energy(vectors: torch.Tensor) -> torch.Tensor:
        distances = torch.linalg.vector_norm(vectors, dim=1)
        extra = (vectors,) if order > 0 else ()
        features = network(onehot, system["i"], system["j"], distances, *extra)
        return sum(head(f).sum() for head, f in zip(heads, features))

    return forces_call(energy, system)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--atoms", type=int, nargs="+", default=[1000])
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (numba uses as many)")
    parser.add_argument("--skip-hippynn", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    os.environ.setdefault("NUMBA_NUM_THREADS", str(args.threads))
    dtype = getattr(torch, args.dtype)
    warnings.filterwarnings("ignore", "Provided distances are underneath sensitivity range")
    print(f"# HIP-NN(-TS) {SIZES}, {args.dtype}, {args.threads} thread(s), energy + forces, median of {args.repeats}")
    print(f"# load average before the run (shared machine): {os.getloadavg()[0]:.1f}")
    print("| atoms | pairs | tensor_order | ours (ms) | ours / order 0 | hippynn (ms) | hippynn / ours |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for n in args.atoms:
        system = random_system(n, dtype)
        calls = {("ours", k): ours(k, system) for k in ORDERS}
        if not args.skip_hippynn:
            calls.update({("hippynn", k): hippynn_model(k, system) for k in ORDERS})
        for call in calls.values():
            call()  # warm-up (numba compiles here)
        samples: dict[tuple[str, int], list[float]] = {key: [] for key in calls}
        for _ in range(args.repeats):
            for key, call in calls.items():
                start = time.perf_counter()
                call()
                samples[key].append(1e3 * (time.perf_counter() - start))
        ms = {key: statistics.median(s) for key, s in samples.items()}
        for k in ORDERS:
            mine = ms[("ours", k)]
            theirs = ms.get(("hippynn", k))
            other = f"{theirs:.1f} | {theirs / mine:.2f}" if theirs is not None else "- | -"
            print(f"| {n} | {system['i'].shape[0]} | {k} | {mine:.1f} | {mine / ms[('ours', 0)]:.2f} | {other} |", flush=True)


if __name__ == "__main__":
    main()
