"""HIP-NN energy + forces per call: C++ pair sums vs the PyTorch reference vs hippynn, one run.

Periodic boxes of random H/C/N/O at 0.1 atoms/A^3, the same pairs for everyone (metamlip's
neighbour list, cutoff 5 A, computed once outside the timing). Every model has n_features 64,
20 sensitivities, 2 interaction blocks of 3 layers each (our n_atom_layers=3 counts the
interaction layer; hippynn's n_atom_layers=2 does not), soft_min 0.75, soft_max 4.0, hard
cutoff 5.0, a linear energy head per block; hippynn with resnet=False and its numba kernels.
A call: pair vectors from positions, energies, forces by autograd, parameters fixed as in MD
(ours then computes the sensitivities in one fused C++ pass). Calls alternate between
the implementations; the printed time is the median. Peak memory: each implementation runs
once more in its own process at the largest size, reporting its peak resident memory.
Targets: cpp >= 3x faster than the torch reference, and faster than hippynn.

    python bench/model.py                        # 1k and 10k atoms, float32, 2 threads
    python bench/model.py --atoms 1000 --dtype float64 --skip torch
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import warnings
from typing import Callable

import numpy as np
import torch

import metamlip.ops  # noqa: F401  (registers torch.ops.metamlip)
from metamlip.nn.hipnn import HIPNN

SPECIES = [1, 6, 7, 8]
DENSITY = 0.1  # atoms / A^3
SIZES = dict(n_features=64, n_sensitivities=20, n_interactions=2, soft_min=0.75, soft_max=4.0, cutoff=5.0)
IMPLEMENTATIONS = ("cpp", "torch", "hippynn")

Call = Callable[[], torch.Tensor]


def random_system(n_atoms: int, dtype: torch.dtype, seed: int = 0) -> dict[str, torch.Tensor]:
    """species [N] (index into SPECIES), positions [N, 3] A, cell [3, 3] A, pairs i, j, S."""
    rng = np.random.default_rng(seed)
    length = (n_atoms / DENSITY) ** (1.0 / 3.0)
    positions = torch.tensor(rng.random((n_atoms, 3)) * length, dtype=dtype)
    cell = torch.eye(3, dtype=dtype) * length
    pbc = torch.tensor([True, True, True])
    i, j, shifts, _, _ = torch.ops.metamlip.neighbor_list(positions, SIZES["cutoff"], cell, pbc, None, True, False)
    species = torch.from_numpy(rng.integers(0, len(SPECIES), n_atoms))
    return {"species": species, "positions": positions, "cell": cell, "i": i, "j": j, "shifts": shifts}


def energy_and_forces(energy_of_distances: Callable[[torch.Tensor], torch.Tensor], system: dict) -> Call:
    """A call computing the total energy and the forces [N, 3] (returned)."""
    i, j, cell = system["i"], system["j"], system["cell"]
    shift_vectors = system["shifts"].to(cell.dtype) @ cell

    def call() -> torch.Tensor:
        positions = system["positions"].detach().requires_grad_(True)
        distances = torch.linalg.vector_norm(positions.index_select(0, j) - positions.index_select(0, i) + shift_vectors, dim=1)
        energy = energy_of_distances(distances)
        return -torch.autograd.grad(energy, positions)[0]

    return call


def ours(implementation: str, system: dict) -> Call:
    torch.manual_seed(0)
    model = HIPNN(len(SPECIES), n_atom_layers=3, implementation=implementation, **SIZES)
    model = model.to(system["positions"]).requires_grad_(False)  # its dtype and device; inference, as in MD
    return energy_and_forces(lambda d: model(system["species"], d, system["i"], system["j"]).sum(), system)


def hippynn_model(system: dict, kernels: str = "numba") -> Call:
    """hippynn's HIP-NN with its custom kernels `kernels` ("numba" on CPUs; "auto", "triton",
    "cupy", ... on GPUs), on the device and in the dtype of the system's positions."""
    import hippynn.custom_kernels
    from hippynn.networks.hipnn import Hipnn

    hippynn.custom_kernels.set_custom_kernels(kernels)
    torch.manual_seed(0)
    network = Hipnn(
        SIZES["n_features"],
        SIZES["n_sensitivities"],
        SIZES["soft_min"],
        SIZES["soft_max"],
        SIZES["cutoff"],
        n_atom_layers=2,
        n_interaction_layers=SIZES["n_interactions"],
        possible_species=[0, *SPECIES],
        resnet=False,
    )
    widths = network.feature_sizes
    heads = torch.nn.ModuleList(torch.nn.Linear(w, 1) for w in widths)
    like = system["positions"]
    network, heads = network.to(like).requires_grad_(False), heads.to(like).requires_grad_(False)
    onehot = torch.nn.functional.one_hot(system["species"], len(SPECIES)).to(like.dtype)

    def energy(distances: torch.Tensor) -> torch.Tensor:
        features = network(onehot, system["i"], system["j"], distances)
        return sum(head(f).sum() for head, f in zip(heads, features))

    return energy_and_forces(energy, system)


def make_call(implementation: str, system: dict) -> Call:
    return hippynn_model(system) if implementation == "hippynn" else ours(implementation, system)


def _status_mb(field: str) -> float:
    """A memory field of /proc/self/status (kB there), in MB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not found in /proc/self/status")


def rss_mb() -> float:
    """Current resident memory of this process, MB."""
    return _status_mb("VmRSS")


def peak_rss_mb() -> float:
    """Peak resident memory of this process since it started (not inherited), MB."""
    return _status_mb("VmHWM")


def peak_memory(implementation: str, n_atoms: int, dtype: str, threads: int) -> dict[str, float]:
    """Runs one call in a fresh process: resident MB before the call and at its peak."""
    command = [sys.executable, __file__, "--memory-of", implementation, "--atoms", str(n_atoms),
               "--dtype", dtype, "--threads", str(threads)]  # fmt: skip
    result = subprocess.run(command, check=True, capture_output=True, text=True)
    return json.loads(result.stdout.splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--atoms", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2, help="torch threads (numba uses as many)")
    parser.add_argument("--skip", nargs="*", default=[], choices=IMPLEMENTATIONS)
    parser.add_argument("--memory-of", choices=IMPLEMENTATIONS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    os.environ.setdefault("NUMBA_NUM_THREADS", str(args.threads))
    dtype = getattr(torch, args.dtype)
    if args.memory_of:  # child process of peak_memory
        call = make_call(args.memory_of, random_system(args.atoms[-1], dtype))
        before = rss_mb()
        call()
        peak = peak_rss_mb()
        print(json.dumps({"before_mb": before, "peak_mb": peak}))
        return
    implementations = [name for name in IMPLEMENTATIONS if name not in args.skip]
    # Random points come closer than soft_min: hippynn warns about it on every call.
    warnings.filterwarnings("ignore", "Provided distances are underneath sensitivity range")
    print(f"# HIP-NN {SIZES}, {args.dtype}, {args.threads} thread(s), energy + forces, median of {args.repeats}")
    print(f"# load average before the run (shared machine): {os.getloadavg()[0]:.1f}")
    print("| atoms | pairs | " + " | ".join(f"{name} (ms)" for name in implementations) + " | torch / cpp | hippynn / cpp |")
    print("|---:|---:|" + "---:|" * (len(implementations) + 2))
    for n in args.atoms:
        system = random_system(n, dtype)
        calls = {name: make_call(name, system) for name in implementations}
        forces = {name: call() for name, call in calls.items()}  # warm-up (numba compiles here)
        reference = forces["cpp"] if "cpp" in forces else None
        if reference is not None and "torch" in forces:
            error = float((forces["torch"] - reference).abs().max() / reference.abs().max())
            if error > (1e-4 if dtype == torch.float32 else 1e-10):
                raise RuntimeError(f"cpp and torch forces differ: relative error {error:.2e}")
        samples: dict[str, list[float]] = {name: [] for name in calls}
        for _ in range(args.repeats):
            for name, call in calls.items():
                start = time.perf_counter()
                call()
                samples[name].append(1e3 * (time.perf_counter() - start))
        ms = {name: statistics.median(s) for name, s in samples.items()}
        ratios = [f"{ms[name] / ms['cpp']:.2f}" if name in ms and "cpp" in ms else "-" for name in ("torch", "hippynn")]
        cells = " | ".join(f"{ms[name]:.1f}" for name in implementations)
        print(f"| {n} | {system['i'].shape[0]} | {cells} | {' | '.join(ratios)} |", flush=True)
        del calls, forces
    n = args.atoms[-1]
    print(f"\n# peak resident memory of one energy + forces call at {n} atoms, each in a fresh process")
    print("| implementation | before call (MB) | peak (MB) | increase (MB) |")
    print("|---|---:|---:|---:|")
    for name in implementations:
        memory = peak_memory(name, n, args.dtype, args.threads)
        increase = memory["peak_mb"] - memory["before_mb"]
        print(f"| {name} | {memory['before_mb']:.0f} | {memory['peak_mb']:.0f} | {increase:.0f} |", flush=True)


if __name__ == "__main__":
    main()
