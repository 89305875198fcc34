"""Milliseconds per OpenMM MD step (CPU platform, TorchForce) against the raw model call.

The raw call is what one step needs from the model, timed from Python in the same run:
neighbour list (metamlip's op) + exported model + autograd forces, for the same system. The
target is step <= 1.1 x raw (the rest of a step is OpenMM's integrator and the TorchForce
plumbing). The PythonForce backend's step is printed for comparison. Raw calls and MD blocks
alternate, so background load affects both alike.

    OMP_NUM_THREADS=1 python bench/openmm_step.py    # 64 water molecules, float32, 1 thread
    OMP_NUM_THREADS=2 python bench/openmm_step.py --molecules 216 --dtype float64 --threads 2

Set OMP_NUM_THREADS to --threads as well, so that no OpenMP user in the process (torch,
openmmtorch, OpenMM) runs with the default thread count (one per core).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import openmm
import torch
import yaml
from ase.build import molecule
from ase.data import atomic_masses

from metamlip.deploy import build_pairs, export_module, load_model, save_exported
from metamlip.nn.build import build_potential
from metamlip.openmm import create_force

# The quickstart model's size (make demo trains it).
ARCHITECTURE = yaml.safe_load((Path(__file__).resolve().parents[1] / "examples/quickstart.yaml").read_text())["model"]


def water_box(n_molecules: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(atomic numbers, positions A, cell A) of water molecules on a jittered cubic grid at
    ~1 g/cm^3, randomly oriented."""
    rng = np.random.default_rng(seed)
    per_side = int(np.ceil(n_molecules ** (1 / 3)))
    spacing = (18.015 / 0.6022 / 1.0) ** (1 / 3)  # A per molecule at 1 g/cm^3
    water = molecule("H2O")
    numbers, positions = [], []
    for k in range(n_molecules):
        corner = np.array(np.unravel_index(k, (per_side,) * 3)) * spacing
        q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
        positions.append((water.positions - water.positions.mean(0)) @ q.T + corner + rng.normal(0, 0.1, 3))
        numbers.extend(water.numbers)
    return np.array(numbers), np.concatenate(positions), np.eye(3) * per_side * spacing


def time_calls(fn, repeats: int, warmup: int = 10) -> float:
    """Median milliseconds of `fn` over `repeats` calls (after `warmup` calls)."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append(1e3 * (time.perf_counter() - start))
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="exported model or checkpoint (default: a random quickstart-size model)")
    parser.add_argument("--molecules", type=int, default=64)
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--steps", type=int, default=50, help="steps per timing block")
    parser.add_argument("--blocks", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch and OpenMM CPU threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    model_path = args.model
    if model_path is None:
        torch.manual_seed(0)
        potential = build_potential(ARCHITECTURE, [1, 6, 7, 8], ["random"], torch.zeros(1, 4), 0.05)
        model_path = str(Path(tempfile.mkdtemp()) / "model.pt")
        save_exported(*export_module(potential, dtype=args.dtype), model_path)
    model, metadata = load_model(model_path)
    numbers, positions, cell = water_box(args.molecules)
    print(
        f"{len(numbers)} atoms, periodic box {cell[0, 0]:.2f} A, {metadata['dtype']}, pair sums "
        f"{metadata['pair_sums']}, torch {torch.__version__}, {args.threads} threads"
    )

    pos = torch.tensor(positions, requires_grad=True)
    cell_t = torch.tensor(cell)
    pbc = torch.ones(3, dtype=torch.bool)
    z = torch.tensor(numbers)
    mask = torch.ones(len(numbers), dtype=torch.bool)

    def raw_call() -> None:
        edge_index, shifts = build_pairs(pos, metadata["cutoff"], cell_t, pbc)
        energy = model(pos, z, edge_index, shifts, mask).sum()
        torch.autograd.grad(energy, pos)

    def md_context(backend: str) -> openmm.Context:
        system = openmm.System()
        for mass in atomic_masses[numbers]:
            system.addParticle(float(mass))
        system.setDefaultPeriodicBoxVectors(*(openmm.Vec3(*row) * 0.1 for row in cell))
        system.addForce(create_force(model_path, numbers.tolist(), periodic=True, backend=backend))
        platform = openmm.Platform.getPlatformByName("CPU")
        context = openmm.Context(system, openmm.VerletIntegrator(0.0005), platform, {"Threads": str(args.threads)})
        return context

    def md_block_ms(context: openmm.Context) -> float:
        """ms per step of args.steps steps from the starting structure (so the MD and the raw
        call see the same configurations), after one warm-up block."""
        for _ in range(2):  # a warm-up block, then the timed one
            context.setPositions(positions * 0.1)
            context.setVelocitiesToTemperature(300.0, 1)
            start = time.perf_counter()
            context.getIntegrator().step(args.steps)
        return 1e3 * (time.perf_counter() - start) / args.steps

    contexts = {backend: md_context(backend) for backend in ("torchforce", "pythonforce")}
    raw, step = [], {backend: [] for backend in contexts}
    for _ in range(args.blocks):
        raw.append(time_calls(raw_call, args.steps))
        for backend, context in contexts.items():
            step[backend].append(md_block_ms(context))
    pairs = build_pairs(pos, metadata["cutoff"], cell_t, pbc)[0].shape[1]
    end = torch.tensor(contexts["torchforce"].getState(getPositions=True).getPositions(asNumpy=True)._value * 10.0)
    end_pairs = build_pairs(end, metadata["cutoff"], cell_t, pbc)[0].shape[1]
    raw_ms = statistics.median(raw)
    step_ms = {backend: statistics.median(values) for backend, values in step.items()}
    print(f"{pairs} pairs at the start, {end_pairs} after {args.steps} MD steps")
    print(f"raw model call (pairs + energy + forces): {raw_ms:8.3f} ms")
    print(f"OpenMM MD step (CPU platform, TorchForce): {step_ms['torchforce']:8.3f} ms")
    print(f"OpenMM MD step (CPU platform, PythonForce): {step_ms['pythonforce']:8.3f} ms")
    print(f"ratio step / raw: {step_ms['torchforce'] / raw_ms:.3f} (target <= 1.1); "
          f"PythonForce {step_ms['pythonforce'] / raw_ms:.3f}")


if __name__ == "__main__":
    main()
