"""Reptile's overhead: time per outer step against the same number of plain optimiser steps.

One outer step = k inner Adam steps on one task + copying theta, accumulating phi - theta and
the outer update (and, with a meta-batch, restoring/averaging the carried optimiser state).
The reference is k plain Adam steps (metamlip.train.steps.gradient_step, as the Trainer takes
them) on batches of the same size, timed interleaved in the same run. Target: overhead <= 5%.
On a shared, oversubscribed machine single steps stall at random (with 2 threads the same step
took 30 ms to 1.2 s), so the bench runs one thread by default, interleaves the two timings, and
prints the ratio of the medians and the median of the paired ratios (each outer step over the
plain steps timed right after it); use many repeats.

    python bench/reptile.py                          # quickstart-sized model, k = 8, float32
    python bench/reptile.py --inner-steps 4 --meta-batch 2 --features 64
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from ase.build import molecule

from metamlip.data import Configuration
from metamlip.data.batching import GraphSet
from metamlip.meta.reptile import ReptileTrainer
from metamlip.nn.build import build_potential
from metamlip.train.config import ReptileConfig, TrainingConfig
from metamlip.train.steps import StepContext, gradient_step, make_optimizer, trainable_parameters

LEVELS = ("level-a", "level-b")


def task_data(level: str, n: int, seed: int) -> GraphSet:
    """Randomly displaced ethanol and acetamide with arbitrary energies/forces (timing only)."""
    rng = np.random.default_rng(seed)
    configs = []
    for k in range(n):
        base = molecule(("CH3CH2OH", "CH3CONH2")[k % 2])
        positions = base.positions + rng.normal(scale=0.05, size=base.positions.shape)
        configs.append(
            Configuration(base.numbers.astype(np.int64), positions, level, float(rng.normal()), rng.normal(size=positions.shape))
        )
    return GraphSet(configs, 5.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inner-steps", type=int, default=8)
    parser.add_argument("--meta-batch", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--features", type=int, default=32)
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    architecture = {"n_features": args.features, "n_sensitivities": 16, "n_interactions": 2, "n_atom_layers": 2,
                    "cutoff": 5.0, "soft_min": 0.75, "soft_max": 4.0}
    tasks = {level: task_data(level, 64, k) for k, level in enumerate(LEVELS)}
    settings = TrainingConfig(dtype=args.dtype, batch_size=args.batch_size, progress=False)
    torch.manual_seed(0)
    potential = build_potential(architecture, [1, 6, 7, 8], list(LEVELS), torch.zeros(2, 4), 1.0).to(getattr(torch, args.dtype))
    reptile = ReptileConfig(outer_steps=10**6, inner_steps=args.inner_steps, meta_batch_size=args.meta_batch, eval_every=10**6)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = ReptileTrainer(potential, tasks, {}, settings, reptile, Path(tmp), {})
        context = StepContext(potential, settings)
        params = trainable_parameters(potential)
        plain = make_optimizer("adam", params, 1e-3)
        n_plain = args.inner_steps * args.meta_batch
        rng = np.random.default_rng(0)
        data = tasks[LEVELS[0]]

        def outer() -> float:
            start = time.perf_counter()
            trainer.outer_step()
            return time.perf_counter() - start

        def plain_steps() -> float:
            start = time.perf_counter()
            for _ in range(n_plain):
                gradient_step(context, params, plain, data, rng.choice(len(data), args.batch_size, replace=False))
            return time.perf_counter() - start

        outer(), plain_steps()  # warm-up
        reptile_times, plain_times = [], []
        for _ in range(args.repeats):
            reptile_times.append(outer())
            plain_times.append(plain_steps())
    print(f"model: {args.features} features, {sum(x.numel() for x in params)} parameters, {args.dtype}, "
          f"batch {args.batch_size}, {args.threads} threads, {args.repeats} repeats")
    r, p = statistics.median(reptile_times), statistics.median(plain_times)
    paired = statistics.median(a / b for a, b in zip(reptile_times, plain_times))
    print(f"reptile outer step (k={args.inner_steps}, meta-batch {args.meta_batch}): {r * 1000:.1f} ms (median)")
    print(f"{n_plain} plain Adam steps: {p * 1000:.1f} ms (median)")
    print(f"overhead: {(r / p - 1) * 100:+.1f}% (ratio of medians), {(paired - 1) * 100:+.1f}% (median of paired ratios); target <= 5%")
    sys.exit(0)


if __name__ == "__main__":
    main()
