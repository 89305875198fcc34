"""Peer benchmark: metamlip against MACE from few frames, and the time per call at ~1k atoms.

    OMP_NUM_THREADS=1 python bench/accuracy.py --quick     # smoke run, <= 5 min
    OMP_NUM_THREADS=1 python bench/accuracy.py             # the README table, <= 40 min on 2 cores

Methods, on identical frames (bundled data, examples/data):
- scratch:  metamlip HIP-NN from scratch with metamlip-train's defaults and the shipped model's
            architecture;
- finetune: metamlip fine-tuned from the shipped default model (`--pretrained`) with the
            defaults of `metamlip-train --init`;
- mace:     MACE (mace-torch, `mace_run_train`) from scratch: 64x0e + 64x1o, r_max 5 Å, E0s by
            least squares ("average"), EMA, amsgrad, batch 5, float64.

Splits (the target level `mp2/cc-pvdz` is one the shipped model never saw):
- level:    all four molecules; a fixed test set and 10 validation frames, training frames a
            molecule-balanced prefix of the rest (N = 25 is part of N = 50 ...);
- molecule: acetamide only, a molecule the fine-tuning start never saw: that start is
            pre-trained with the shipped model's own recipe (the config stored in its
            checkpoint) on the bundled data without acetamide (cached in the work directory).

Writes bench/results/accuracy.csv (one row per split, method, N) and accuracy.png (force RMSE
against N), and prints the table with the ratios metamlip / MACE. Runs are cached in --work
(rerun to finish an interrupted benchmark). Each training run uses one thread; --jobs 2
trains two at once.
"""

from __future__ import annotations

import argparse
import copy
import csv
import fcntl
import json
import os
import shutil
import subprocess
import sys
import time
import multiprocessing
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "examples" / "data"
TARGET_LEVEL = "mp2/cc-pvdz"
TARGET_FILE = DATA / "mp2_cc-pvdz.extxyz.gz"
LEFT_OUT_MOLECULE = "CH3CONH2"
METHODS = ("scratch", "finetune", "mace")
COLUMNS = [
    "split", "method", "n_train", "seed", "force_rmse_meV_per_A", "energy_rmse_meV_per_atom",
    "force_mae_meV_per_A", "energy_mae_meV_per_atom", "n_test", "train_seconds", "steps", "best_step",
]


@dataclass
class BenchSplit:
    """Frames of one split: training sets by size (nested), validation and test."""

    name: str
    train: dict[int, Any]  # N -> Dataset
    val: Any
    test: Any
    molecule: str | None  # the only molecule of the split (and the one left out of pre-training)


def make_split(dataset, name: str, sizes: list[int], n_val: int, n_test: int, molecule: str | None, seed: int = 0) -> BenchSplit:
    """Test first, then validation (both fixed by `seed`), then molecule-balanced nested
    training sets of the given sizes from the rest (metamlip.meta.tasks.balanced_order)."""
    from metamlip.data import Dataset, DataError, split_indices
    from metamlip.meta.tasks import balanced_order

    if molecule is not None:
        dataset = Dataset(c for c in dataset if c.molecule == molecule)
        if len(dataset) == 0:
            raise DataError(f"split {name}: no frame of molecule {molecule}")
    pool_idx, val_idx, test_idx = split_indices(len(dataset), None, n_val, n_test, seed)
    pool = dataset.subset(pool_idx)
    order = balanced_order(pool, seed)
    if max(sizes) > len(order):
        raise DataError(f"split {name}: N = {max(sizes)} exceeds the {len(order)} frames left after validation and test")
    train = {n: pool.subset(order[:n]) for n in sizes}
    return BenchSplit(name, train, dataset.subset(val_idx), dataset.subset(test_idx), molecule)


def level_split(dataset, sizes: list[int]) -> BenchSplit:
    """All molecules at the target level: 100 test frames, 10 validation."""
    return make_split(dataset, "level", sizes, n_val=10, n_test=100, molecule=None)


def molecule_split(dataset, sizes: list[int]) -> BenchSplit:
    """Acetamide alone (150 frames): 40 test, 10 validation, up to 100 training."""
    return make_split(dataset, "molecule", sizes, n_val=10, n_test=40, molecule=LEFT_OUT_MOLECULE)


SPLITS = {"level": level_split, "molecule": molecule_split}


def without_molecule(dataset, molecule: str):
    from metamlip.data import Dataset

    return Dataset(c for c in dataset if c.molecule != molecule)


# ---------------------------------------------------------------- metamlip ---


def metamlip_config(pretrained: str, init: str | None, seed: int, overrides: dict[str, dict[str, Any]] | None = None):
    """metamlip-train's defaults (with `init`: those of `metamlip-train --init`), the shipped
    model's architecture, then `overrides` {section: {key: value}} (protocol studies)."""
    from metamlip.meta import strategies
    from metamlip.train.config import Config, ModelConfig

    config = Config()
    config.init = init
    config.model = ModelConfig(**{**strategies.architecture_of(strategies.load_init(pretrained)), "species": None})
    config.training.seed = seed
    config.training.progress = False
    for section, values in (overrides or {}).items():
        for key, value in values.items():
            if not hasattr(getattr(config, section), key):
                raise KeyError(f"unknown key {section}.{key}")
            setattr(getattr(config, section), key, value)
    return config


def train_metamlip(
    split: BenchSplit,
    n: int,
    seed: int,
    init: str | None,
    pretrained: str,
    directory: Path,
    overrides: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Train (init None) or fine-tune `init` on split.train[n] as metamlip-train would; test errors."""
    import torch

    from metamlip.data.batching import GraphSet
    from metamlip.meta import strategies
    from metamlip.train.metrics import error_metrics, predict
    from metamlip.train.run import prepare_potential, trainer_for

    torch.set_num_threads(1)
    config = metamlip_config(pretrained, init, seed, overrides)
    train_data = split.train[n]
    start = time.perf_counter()
    if init is None:
        potential = strategies.fresh_potential(config, train_data, [TARGET_LEVEL], strategies.load_init(pretrained).species)
    else:
        potential = strategies.add_target_level(strategies.load_init(init).double(), TARGET_LEVEL, train_data, config.finetune)
    potential = prepare_potential(potential, config.training)
    cutoff = potential.cutoff
    train = GraphSet(train_data.configurations, cutoff)
    val = GraphSet(split.val.configurations, cutoff)
    trainer = trainer_for(config, potential, train, val, directory)
    potential = trainer.fit()
    seconds = time.perf_counter() - start
    metrics = error_metrics(predict(potential, GraphSet(split.test.configurations, cutoff), level=TARGET_LEVEL))["all"]
    (directory / "last.ckpt").unlink(missing_ok=True)
    result = row(split, "finetune" if init else "scratch", n, seed, metrics, seconds)
    result["steps"] = trainer.state.global_step
    result["best_step"] = trainer.state.best_step
    return result


def pretrain_without(molecule: str, pretrained: str, directory: Path, outer_steps: int | None) -> Path:
    """The shipped model's recipe (the config in its checkpoint) on the bundled data without
    `molecule`; returns the checkpoint (cached; concurrent callers wait for one pre-training)."""
    checkpoint = directory / "model.ckpt"
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one process pre-trains, the others wait for it
        if not (directory / "metrics.json").exists():
            _pretrain_without(molecule, pretrained, directory, outer_steps)
    return checkpoint


def _pretrain_without(molecule: str, pretrained: str, directory: Path, outer_steps: int | None) -> None:
    import torch

    from metamlip.meta import strategies
    from metamlip.meta.tasks import source_levels, split_sources
    from metamlip.pretrained import resolve
    from metamlip.nn.checkpoint import read_checkpoint
    from metamlip.train.config import config_from_dict
    from metamlip.train.run import read_data_files

    torch.set_num_threads(1)
    recipe = read_checkpoint(resolve(pretrained))["config"]
    config = config_from_dict(recipe)
    config.data.files = [str(ROOT / f) if not Path(f).is_absolute() else f for f in config.data.files]
    config.pretrain.progress = False
    if outer_steps is not None:
        config.reptile.outer_steps = outer_steps
        config.reptile.eval_every = min(config.reptile.eval_every, outer_steps)
    dataset = without_molecule(read_data_files(config.data.files), molecule)
    species = sorted(config.model.species) if config.model.species else dataset.elements()
    sources = split_sources(dataset, source_levels(dataset, config.data), config.data)
    _, metrics = strategies.pretrain(config, sources, species, directory, resume=True)
    (directory / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")


# -------------------------------------------------------------------- MACE ---


def write_mace_xyz(dataset, path: Path) -> None:
    """extxyz with the labels under REF_energy / REF_forces (ASE would move energy/forces into a calculator)."""
    import ase
    import ase.io

    frames = []
    for c in dataset:
        atoms = ase.Atoms(numbers=c.numbers, positions=c.positions)
        atoms.info["REF_energy"] = float(c.energy)
        atoms.arrays["REF_forces"] = np.asarray(c.forces, dtype=float)
        frames.append(atoms)
    ase.io.write(path, frames, format="extxyz")


def mace_epochs(n: int, quick: bool) -> int:
    """150 epochs at N = 50 (the issue's setting: 1500 optimiser steps at batch 5); 1000 steps
    at N = 25, 2000 at N = 100."""
    if quick:
        return 20
    return {25: 200, 50: 150, 100: 100}.get(n, 150)


def mace_executable() -> str:
    """mace_run_train of this environment (mace-torch, in the bench extra)."""
    path = Path(sys.prefix) / "bin" / "mace_run_train"
    found = str(path) if path.exists() else shutil.which("mace_run_train")
    if found is None:
        raise RuntimeError("mace_run_train not found: pip install 'mace-torch==0.3.16' (the bench extra)")
    return found


def train_mace(split: BenchSplit, n: int, seed: int, directory: Path, quick: bool) -> dict[str, Any]:
    directory.mkdir(parents=True, exist_ok=True)
    write_mace_xyz(split.train[n], directory / "train.xyz")
    write_mace_xyz(split.val, directory / "valid.xyz")
    command = [
        mace_executable(),
        "--name", "mace", "--seed", str(seed), "--work_dir", str(directory),
        "--train_file", str(directory / "train.xyz"), "--valid_file", str(directory / "valid.xyz"),
        "--energy_key", "REF_energy", "--forces_key", "REF_forces", "--E0s", "average",
        "--model", "MACE", "--hidden_irreps", "64x0e + 64x1o", "--r_max", "5.0",
        "--batch_size", "5", "--valid_batch_size", "10", "--max_num_epochs", str(mace_epochs(n, quick)),
        "--ema", "--ema_decay", "0.99", "--amsgrad", "--default_dtype", "float64", "--device", "cpu",
        "--eval_interval", "1", "--log_level", "WARNING",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    start = time.perf_counter()
    result = subprocess.run(command, cwd=directory, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"mace_run_train failed in {directory}:\n{result.stderr[-3000:]}")
    model = directory / "mace.model"
    metrics = mace_test_errors(model, split.test)
    return row(split, "mace", n, seed, metrics, seconds)


def mace_calculator(model: Path):
    from mace.calculators import MACECalculator

    return MACECalculator(model_paths=str(model), device="cpu", default_dtype="float64")


def mace_test_errors(model: Path, test) -> dict[str, float]:
    import ase
    import torch

    torch.set_num_threads(1)
    calc = mace_calculator(model)
    e_diff, f_diff = [], []
    for c in test:
        atoms = ase.Atoms(numbers=c.numbers, positions=c.positions)
        atoms.calc = calc
        e_diff.append((atoms.get_potential_energy() - c.energy) / c.n_atoms)
        f_diff.append(atoms.get_forces() - c.forces)
    e, f = np.array(e_diff), np.concatenate(f_diff)
    return {
        "force_rmse_meV_per_A": float(np.sqrt(np.mean(f**2)) * 1000),
        "force_mae_meV_per_A": float(np.mean(np.abs(f)) * 1000),
        "energy_rmse_meV_per_atom": float(np.sqrt(np.mean(e**2)) * 1000),
        "energy_mae_meV_per_atom": float(np.mean(np.abs(e)) * 1000),
        "n_configurations": len(test),
    }


# ----------------------------------------------------------------- results ---


def row(split: BenchSplit, method: str, n: int, seed: int, metrics: dict[str, float], seconds: float) -> dict[str, Any]:
    return {
        "split": split.name, "method": method, "n_train": n, "seed": seed,
        **{k: round(float(metrics[k]), 3) for k in COLUMNS[4:8]},
        "n_test": int(metrics["n_configurations"]), "train_seconds": round(seconds, 1),
    }


def cached(directory: Path, compute) -> dict[str, Any]:
    done = directory / "result.json"
    if done.exists():
        return json.loads(done.read_text())
    directory.mkdir(parents=True, exist_ok=True)
    result = compute()
    done.write_text(json.dumps(result) + "\n")
    return result


def ratio_table(rows: list[dict[str, Any]]) -> str:
    """Markdown: per split and N, force / energy RMSE of each method and metamlip / MACE."""
    by = {}
    for r in rows:
        by.setdefault((r["split"], int(r["n_train"]), r["method"]), []).append(r)

    def mean(split, n, method, key):
        group = by.get((split, n, method))
        return float(np.mean([g[key] for g in group])) if group else float("nan")

    lines = [
        "| split | N | force RMSE scratch / fine-tuned / MACE (meV/Å) | ratio to MACE | energy RMSE scratch / fine-tuned / MACE (meV/atom) | ratio to MACE |",
        "| --- | ---: | --- | --- | --- | --- |",
    ]
    for split, n in sorted({(k[0], k[1]) for k in by}, key=lambda t: (t[0] != "level", t[1])):
        cells = []
        for key in ("force_rmse_meV_per_A", "energy_rmse_meV_per_atom"):
            values = [mean(split, n, method, key) for method in METHODS]
            cells.append(" / ".join("–" if np.isnan(v) else f"{v:.1f}" for v in values))
            cells.append(" / ".join("–" if np.isnan(v / values[2]) else f"{v / values[2]:.2f}" for v in values[:2]))
        lines.append(f"| {split} | {n} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    splits = sorted({r["split"] for r in rows}, key=lambda s: s != "level")
    figure, axes = plt.subplots(1, len(splits), figsize=(5 * len(splits), 4), squeeze=False)
    labels = {"scratch": "metamlip, scratch", "finetune": "metamlip, fine-tuned", "mace": "MACE, scratch"}
    for ax, split in zip(axes[0], splits):
        for method in METHODS:
            points = sorted((int(r["n_train"]), r["force_rmse_meV_per_A"]) for r in rows if r["split"] == split and r["method"] == method)
            if points:
                ns = sorted({p[0] for p in points})
                ax.plot(ns, [np.mean([v for m, v in points if m == n]) for n in ns], "o-", label=labels[method])
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("training frames N")
        ax.set_ylabel("test force RMSE (meV/Å)")
        ax.set_title(f"{split} split, {TARGET_LEVEL}")
        ax.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def write_rows(rows: list[dict[str, Any]], path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)


# ------------------------------------------------------------------ timing ---


def ethanol_box(n_side: int = 5, spacing: float = 4.6):
    """n_side^3 ethanol molecules on a cubic grid (liquid density: ~97 Å^3 per molecule), periodic."""
    import ase
    from ase.build import molecule

    rng = np.random.default_rng(0)
    base = molecule("CH3CH2OH")
    base.positions -= base.get_center_of_mass()
    box = ase.Atoms(cell=np.eye(3) * n_side * spacing, pbc=True)
    for index in np.ndindex(n_side, n_side, n_side):
        m = base.copy()
        m.rotate(rng.uniform(0, 360), rng.normal(size=3) + 1e-3)
        m.positions += (np.array(index) + 0.5) * spacing
        box += m
    return box


def time_call(calc, atoms, repeats: int) -> float:
    """Median seconds of one energy + forces evaluation (after one warm-up call)."""
    samples = []
    for k in range(repeats + 1):
        atoms = atoms.copy()
        atoms.positions += 1e-4 * k
        atoms.calc = calc
        start = time.perf_counter()
        atoms.get_potential_energy()
        atoms.get_forces()
        if k > 0:
            samples.append(time.perf_counter() - start)
    return float(np.median(samples))


def timing(model: Path, mace_model: Path, quick: bool) -> dict[str, Any]:
    """Seconds per energy + forces call of a trained metamlip model (model.ckpt) and a trained MACE model."""
    import torch

    from metamlip.ase import MetaMLIPCalculator

    torch.set_num_threads(1)
    atoms = ethanol_box(4 if quick else 5)
    ours = time_call(MetaMLIPCalculator(str(model), level=TARGET_LEVEL, dtype="float64"), atoms, 5 if quick else 20)
    mace = time_call(mace_calculator(mace_model), atoms, 1 if quick else 2)
    return {"atoms": len(atoms), "metamlip_s": ours, "mace_s": mace, "speedup": mace / ours}


# -------------------------------------------------------------------- main ---


def pretrain_dir(work: Path, molecule: str, outer_steps: int | None) -> Path:
    return work / "pretrain" / (f"without-{molecule}" + (f"-{outer_steps}steps" if outer_steps else ""))


def run_job(job: tuple, work: Path, pretrained: str, pretrain_steps: int | None, quick: bool) -> dict[str, Any] | None:
    """One (split, N, seed, method) run, cached in work/SPLIT/METHOD/nN-seedS; ("pretrain",
    split) makes the split's fine-tuning start."""
    if job[0] == "pretrain":
        pretrain_without(job[1].molecule, pretrained, pretrain_dir(work, job[1].molecule, pretrain_steps), pretrain_steps)
        return None
    split, n, seed, method = job
    directory = run_dir(work, job, pretrain_steps)
    if method == "mace":
        return cached(directory, lambda: train_mace(split, n, seed, directory, quick))
    overrides = {"training": {"max_steps": 300}, "finetune": {"max_steps": 300}} if quick else None

    def start() -> str | None:
        if method != "finetune":
            return None
        if split.molecule is None:
            return pretrained
        return str(pretrain_without(split.molecule, pretrained, pretrain_dir(work, split.molecule, pretrain_steps), pretrain_steps))

    return cached(directory, lambda: train_metamlip(split, n, seed, start(), pretrained, directory, overrides))


def run_dir(work: Path, job: tuple, pretrain_steps: int | None) -> Path:
    """work/SPLIT/METHOD/nN-seedS (fine-tuning on the molecule split: -pretrainK for a shortened pre-training)."""
    split, n, seed, method = job
    suffix = f"-pretrain{pretrain_steps}" if method == "finetune" and split.molecule is not None and pretrain_steps else ""
    return work / split.name / method / f"n{n}-seed{seed}{suffix}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run (N = 25, short training; <= 5 min)")
    parser.add_argument("--pretrained", default="pretrained:hipnn-meta-hcno", help="the shipped model to fine-tune from")
    parser.add_argument("--sizes", type=int, nargs="+", help="training-set sizes (default 25 50 100; quick 25)")
    parser.add_argument("--mace-sizes", type=int, nargs="+", help="training-set sizes for MACE (default: --sizes; MACE is the slow one)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument("--work", default=str(ROOT / "runs" / "bench_accuracy"), help="cache of runs")
    parser.add_argument("--results", default=str(ROOT / "bench" / "results"), help="where the CSV and PNG go")
    parser.add_argument("--jobs", type=int, default=2, help="training runs at once (one thread each)")
    parser.add_argument("--splits", nargs="+", choices=list(SPLITS), default=list(SPLITS))
    parser.add_argument("--no-timing", action="store_true", help="skip the time per call at ~1k atoms")
    parser.add_argument("--cached-only", action="store_true", help="only collect finished runs into the CSV, PNG and table (train nothing)")
    parser.add_argument("--pretrain-steps", type=int, help="outer steps of the molecule split's pre-training (default: the shipped recipe's; quick 200)")
    args = parser.parse_args(argv)

    from metamlip.data import read_dataset

    sizes = args.sizes or ([25] if args.quick else [25, 50, 100])
    work = Path(args.work) / ("quick" if args.quick else "full")
    results = Path(args.results)
    results.mkdir(parents=True, exist_ok=True)
    data = read_dataset(str(TARGET_FILE))
    splits = [SPLITS[name](data, sizes) for name in args.splits]
    pretrain_steps = args.pretrain_steps or (200 if args.quick else None)
    started = time.perf_counter()
    jobs: list[tuple] = [("pretrain", splits[1])] if "finetune" in args.methods else []
    mace_sizes = args.mace_sizes or sizes
    runs = [
        (split, n, seed, method)
        for split in splits
        for n in sizes
        for seed in args.seeds
        for method in args.methods
        if method != "mace" or n in mace_sizes
    ]
    # level split first, then MACE (slow), then the molecule split with its pre-training before its fine-tuning
    def priority(job: tuple) -> tuple:
        split, n, seed, method = job
        return (split.molecule is not None, method != "mace", method == "finetune", n, seed)

    jobs: list[tuple] = sorted(runs, key=priority)
    for k, job in enumerate(jobs):
        if job[3] == "finetune" and job[0].molecule is not None:
            jobs.insert(k, ("pretrain", job[0]))
            break
    if args.cached_only:
        done = [job for job in jobs if job[0] != "pretrain" and (run_dir(work, job, pretrain_steps) / "result.json").exists()]
        print(f"collecting {len(done)} finished runs; not run: {len([j for j in jobs if j[0] != 'pretrain']) - len(done)}")
        jobs = done
    rows = []
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=args.jobs, mp_context=context) as pool:
        futures = [pool.submit(run_job, job, work, args.pretrained, pretrain_steps, args.quick) for job in jobs]
        for future in tqdm(as_completed(futures), total=len(futures), desc="runs"):
            r = future.result()
            if r is None:
                tqdm.write(f"pre-trained the start of the molecule split without {LEFT_OUT_MOLECULE} (recipe of {args.pretrained})")
                continue
            rows.append(r)
            tqdm.write(
                f"{r['split']:>8} {r['method']:>8} N={r['n_train']:<3} seed {r['seed']}: force {r['force_rmse_meV_per_A']:.1f} meV/Å, "
                f"energy {r['energy_rmse_meV_per_atom']:.2f} meV/atom ({r['train_seconds']:.0f} s)"
            )
    rows.sort(key=lambda r: (r["split"] != "level", r["n_train"], METHODS.index(r["method"]), r["seed"]))
    suffix = "_quick" if args.quick else ""
    write_rows(rows, results / f"accuracy{suffix}.csv")
    plot(rows, results / f"accuracy{suffix}.png")
    print(ratio_table(rows))
    if "mace" in args.methods and not args.no_timing:
        run = f"n{mace_sizes[-1]}-seed{args.seeds[0]}"
        ours = work / "level" / ("finetune" if "finetune" in args.methods else "scratch") / run / "model.ckpt"
        speed = timing(ours, work / "level" / "mace" / run / "mace.model", args.quick)
        print(
            f"energy + forces, {speed['atoms']} atoms (ethanol box), 1 thread, float64: metamlip "
            f"{speed['metamlip_s'] * 1000:.1f} ms, MACE {speed['mace_s'] * 1000:.0f} ms: metamlip {speed['speedup']:.0f}x faster"
        )
        (results / f"accuracy_speed{suffix}.json").write_text(json.dumps(speed, indent=2) + "\n")
    print(f"total {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
