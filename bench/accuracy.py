"""Peer benchmark: metamlip against MACE and hippynn from few frames, and the time per call at ~1k atoms.

    OMP_NUM_THREADS=1 python bench/accuracy.py --quick     # smoke run, <= 5 min
    OMP_NUM_THREADS=1 python bench/accuracy.py             # the README table (CPU: hours; see --device)
    python bench/accuracy.py --device cuda --jobs 12 --time-limit 300   # on a GPU machine

Methods, on identical frames (bundled data, examples/data), all in float64:
- scratch:      metamlip HIP-NN from scratch with metamlip-train's defaults and the shipped
                model's architecture;
- scratch-ts1, scratch-ts2: the same with tensor sensitivities (HIP-NN-TS, model.tensor_order
                1 and 2);
- finetune:     metamlip fine-tuned from the shipped default model (`--pretrained`) with the
                defaults of `metamlip-train --init`;
- hippynn:      hippynn's own HIP-NN of the same sizes, trained with hippynn's standard loop
                and settings (bench/accuracy_hippynn.py);
- hippynn-steps: the same with metamlip's batch size and step budget (an ablation);
- mace:         MACE (mace-torch, `mace_run_train`) from scratch: 64x0e + 64x1o, r_max 5 Å, E0s
                by least squares ("average"), EMA, amsgrad, batch 5.

Splits (the target level `mp2/cc-pvdz` is one the shipped model never saw):
- level:    all four molecules; a fixed test set and 10 validation frames, training frames a
            molecule-balanced prefix of the rest (N = 25 is part of N = 50 ...);
- molecule: acetamide only, a molecule the fine-tuning start never saw: that start is
            pre-trained with the shipped model's own recipe (the config stored in its
            checkpoint) on the bundled data without acetamide (cached in the work directory).
- foundation (opt-in, `--splits foundation`): the 24 held-out molecules of the foundation
            campaign (bench/foundation_data.py) with bench/foundation.py's test, validation and
            training frames; fine-tune from `--pretrained pretrained:hipnn-meta-chno`, which
            never saw these molecules or this level.

Writes bench/results/accuracy.csv (one row per split, method, N, with the device that trained
it) and accuracy.png (force RMSE against N), and prints the table with the ratios to MACE.
Runs are cached in --work, keyed by their settings (a run whose settings changed is redone);
each finished run is written to the cache at once, so an interrupted or time-limited benchmark
keeps what finished (rerun to go on). Each run is its own process (one thread; a crash fails
that run only); --jobs runs several at once, also sharing one GPU (--device cuda). The time
per call is always measured on the CPU, one thread.
"""

from __future__ import annotations

import argparse
import csv
import fcntl
import hashlib
import json
import multiprocessing
import multiprocessing.connection
import os
import shutil
import signal
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "bench") not in sys.path:
    sys.path.insert(0, str(ROOT / "bench"))  # accuracy_hippynn, also when loaded by file path
DATA = ROOT / "examples" / "data"
TARGET_LEVEL = "mp2/cc-pvdz"
TARGET_FILE = DATA / "mp2_cc-pvdz.extxyz.gz"
LEFT_OUT_MOLECULE = "CH3CONH2"
METHODS = ("scratch", "scratch-ts1", "scratch-ts2", "finetune", "hippynn", "hippynn-steps", "mace")
LABELS = {
    "scratch": "metamlip HIP-NN, scratch",
    "scratch-ts1": "metamlip HIP-NN-TS l=1, scratch",
    "scratch-ts2": "metamlip HIP-NN-TS l=2, scratch",
    "finetune": "metamlip, fine-tuned",
    "hippynn": "hippynn HIP-NN, its own training",
    "hippynn-steps": "hippynn HIP-NN, its training with our step budget",
    "mace": "MACE, scratch",
}
TENSOR_ORDER = {"scratch": 0, "scratch-ts1": 1, "scratch-ts2": 2}
COLUMNS = [
    "split", "method", "n_train", "seed", "force_rmse_meV_per_A", "energy_rmse_meV_per_atom",
    "force_mae_meV_per_A", "energy_mae_meV_per_atom", "n_test", "train_seconds", "steps", "best_step", "device",
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


def foundation_split(dataset, sizes: list[int]) -> BenchSplit:
    """The foundation experiment's held-out molecules (bench/foundation_data.py: 24 molecules no
    pre-training of `pretrained:hipnn-meta-chno` saw, at a level it never saw) with
    bench/foundation.py's frames: frames 0-3 of each molecule test, frame 4 validation, training
    sets a molecule-balanced prefix of the rest. `dataset` (the bundled file) is not used."""
    import foundation_data
    from metamlip.data import DataError
    from metamlip.meta.tasks import balanced_order

    target = foundation_data.read_target()
    order = balanced_order(target.pool, 0)
    if max(sizes) > len(order):
        raise DataError(f"split foundation: N = {max(sizes)} exceeds the {len(order)} pool frames of the held-out molecules")
    return BenchSplit("foundation", {n: target.pool.subset(order[:n]) for n in sizes}, target.val, target.test, None)


SPLITS = {"level": level_split, "molecule": molecule_split, "foundation": foundation_split}


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


def method_overrides(method: str, device: str, quick: bool) -> dict[str, dict[str, Any]]:
    """The benchmark's settings on top of the defaults: float64 on `device`, the tensor order
    of a scratch-ts method, short runs when quick."""
    overrides: dict[str, dict[str, Any]] = {"training": {"dtype": "float64", "device": device}}
    if method in TENSOR_ORDER:
        overrides["model"] = {"tensor_order": TENSOR_ORDER[method]}
    if quick:
        overrides["training"]["max_steps"] = 300
        overrides["finetune"] = {"max_steps": 300}
    return overrides


# Config keys added after runs were cached, with the value that means what those runs did: left
# out of the fingerprint at that value, so that adding a key does not void the cache.
KEYS_ADDED_LATER = {("finetune", "head_steps"): 0}


def metamlip_fingerprint(pretrained: str, init_label: str | None, seed: int, overrides: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """What a metamlip run's result depends on: the config sections that shape training (not
    where it runs); init by name (the molecule split's start: its recipe and step count) and,
    for a fine-tune, the shipped start's weights (a model re-shipped under the same name
    invalidates the runs fine-tuned from it)."""
    config = metamlip_config(pretrained, init_label, seed, overrides).model_dump(include={"init", "model", "training", "finetune"})
    for key in ("device", "progress", "checkpoint_every"):
        config["training"].pop(key)
    for (section, key), value in KEYS_ADDED_LATER.items():
        if config[section].get(key, value) == value:
            config[section].pop(key, None)
    if init_label is not None:
        from metamlip.pretrained import resolve

        config["init_sha256"] = file_sha256(resolve(pretrained))
    return config


def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def train_metamlip(
    split: BenchSplit,
    n: int,
    seed: int,
    init: str | None,
    pretrained: str,
    directory: Path,
    overrides: dict[str, dict[str, Any]] | None = None,
    method: str | None = None,
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
    result = row(split, method or ("finetune" if init else "scratch"), n, seed, metrics, seconds, config.training.device)
    result["steps"] = trainer.state.global_step
    result["best_step"] = trainer.state.best_step
    return result


def pretrain_without(molecule: str, pretrained: str, directory: Path, outer_steps: int | None, device: str = "cpu") -> Path:
    """The shipped model's recipe (the config in its checkpoint) on the bundled data without
    `molecule`; returns the checkpoint (cached; concurrent callers wait for one pre-training)."""
    checkpoint = directory / "model.ckpt"
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one process pre-trains, the others wait for it
        if not (directory / "metrics.json").exists():
            _pretrain_without(molecule, pretrained, directory, outer_steps, device)
    return checkpoint


def _pretrain_without(molecule: str, pretrained: str, directory: Path, outer_steps: int | None, device: str) -> None:
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
    config.training.device = config.pretrain.device = device
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


def mace_settings(n: int, seed: int, quick: bool) -> list[str]:
    """mace_run_train's arguments that shape the model and its training (no paths, no device)."""
    return [
        "--seed", str(seed), "--energy_key", "REF_energy", "--forces_key", "REF_forces", "--E0s", "average",
        "--model", "MACE", "--hidden_irreps", "64x0e + 64x1o", "--r_max", "5.0",
        "--batch_size", "5", "--valid_batch_size", "10", "--max_num_epochs", str(mace_epochs(n, quick)),
        "--ema", "--ema_decay", "0.99", "--amsgrad", "--default_dtype", "float64",
    ]


def mace_command() -> list[str]:
    """mace_run_train of this environment (mace-torch, in the bench extra), else on PATH, else
    its module (mace-torch installed without console scripts, as `pip install --target` does)."""
    path = Path(sys.prefix) / "bin" / "mace_run_train"
    found = str(path) if path.exists() else shutil.which("mace_run_train")
    if found is not None:
        return [found]
    try:
        import mace.cli.run_train  # noqa: F401
    except ImportError:
        raise RuntimeError("mace_run_train not found: pip install 'mace-torch==0.3.16' (the bench extra)") from None
    return [sys.executable, "-m", "mace.cli.run_train"]


def train_mace(split: BenchSplit, n: int, seed: int, directory: Path, quick: bool, device: str = "cpu") -> dict[str, Any]:
    directory.mkdir(parents=True, exist_ok=True)
    write_mace_xyz(split.train[n], directory / "train.xyz")
    write_mace_xyz(split.val, directory / "valid.xyz")
    command = [
        *mace_command(),
        "--name", "mace", "--work_dir", str(directory),
        "--train_file", str(directory / "train.xyz"), "--valid_file", str(directory / "valid.xyz"),
        *mace_settings(n, seed, quick), "--device", device, "--eval_interval", "1", "--log_level", "WARNING",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    start = time.perf_counter()
    result = subprocess.run(command, cwd=directory, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"mace_run_train failed in {directory}:\n{result.stderr[-3000:]}")
    model = directory / "mace.model"
    metrics = mace_test_errors(model, split.test, device)
    return row(split, "mace", n, seed, metrics, seconds, device)


def mace_calculator(model: Path, device: str = "cpu"):
    from mace.calculators import MACECalculator

    return MACECalculator(model_paths=str(model), device=device, default_dtype="float64")


def mace_test_errors(model: Path, test, device: str = "cpu") -> dict[str, float]:
    import ase
    import torch

    torch.set_num_threads(1)
    calc = mace_calculator(model, device)
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


# ----------------------------------------------------------------- hippynn ---


def hippynn_settings(pretrained: str, method: str, n: int, quick: bool) -> dict[str, Any]:
    """What a hippynn run depends on: its training settings and the architecture it copies."""
    import accuracy_hippynn
    from metamlip.meta import strategies

    start = strategies.load_init(pretrained)
    return {
        "training": accuracy_hippynn.settings_for(method, n, quick),
        "architecture": strategies.architecture_of(start),
        "species": list(start.species),
    }


def train_hippynn(split: BenchSplit, n: int, seed: int, directory: Path, pretrained: str, method: str, quick: bool, device: str) -> dict[str, Any]:
    import accuracy_hippynn

    settings = hippynn_settings(pretrained, method, n, quick)
    metrics, seconds, epochs = accuracy_hippynn.train_hippynn(
        split.train[n], split.val, split.test, settings["architecture"], settings["species"], seed, directory, device, settings["training"]
    )
    result = row(split, method, n, seed, metrics, seconds, device)
    result["epochs"] = epochs  # hippynn counts epochs, not optimiser steps (not in the CSV)
    return result


# ----------------------------------------------------------------- results ---


def row(split: BenchSplit, method: str, n: int, seed: int, metrics: dict[str, float], seconds: float, device: str = "cpu") -> dict[str, Any]:
    return {
        "split": split.name, "method": method, "n_train": n, "seed": seed,
        **{k: round(float(metrics[k]), 3) for k in COLUMNS[4:8]},
        "n_test": int(metrics["n_configurations"]), "train_seconds": round(seconds, 1), "device": device,
    }


def fingerprint(settings: Any) -> str:
    """Short hash of a run's settings (JSON): the key of its cached result."""
    return hashlib.sha1(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:12]


def read_cached(directory: Path, key: str | None = None) -> dict[str, Any] | None:
    """The cached result in `directory`, if there is one for settings `key` (None: any)."""
    done = directory / "result.json"
    if not done.exists():
        return None
    result = json.loads(done.read_text())
    return result if key is None or result.get("fingerprint") == key else None


def cached(directory: Path, compute, key: str | None = None) -> dict[str, Any]:
    """compute() once per directory and settings `key`; written atomically as it finishes."""
    result = read_cached(directory, key)
    if result is not None:
        return result
    directory.mkdir(parents=True, exist_ok=True)
    result = compute()
    if key is not None:
        result["fingerprint"] = key
    tmp = directory / "result.json.tmp"
    tmp.write_text(json.dumps(result) + "\n")
    os.replace(tmp, directory / "result.json")
    return result


def mean_of(rows: list[dict[str, Any]]) -> dict[tuple, dict[str, Any]]:
    """(split, N, method) -> mean RMSEs over seeds and the devices that trained them."""
    groups: dict[tuple, list] = {}
    for r in rows:
        groups.setdefault((r["split"], int(r["n_train"]), r["method"]), []).append(r)
    return {
        k: {
            "force": float(np.mean([float(g["force_rmse_meV_per_A"]) for g in group])),
            "energy": float(np.mean([float(g["energy_rmse_meV_per_atom"]) for g in group])),
            "device": "+".join(sorted({str(g.get("device") or "cpu") for g in group})),
        }
        for k, group in groups.items()
    }


def ratio_table(rows: list[dict[str, Any]]) -> str:
    """Markdown: per split, N and method, force / energy RMSE and their ratio to MACE's."""
    means = mean_of(rows)
    lines = [
        "| split | N | method | force RMSE (meV/Å) | / MACE | energy RMSE (meV/atom) | / MACE | trained on |",
        "| --- | ---: | --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for split, n in sorted({(k[0], k[1]) for k in means}, key=lambda t: (t[0] != "level", t[1])):
        mace = means.get((split, n, "mace"))
        for method in METHODS:
            m = means.get((split, n, method))
            if m is None:
                continue
            ratio = {key: (f"{m[key] / mace[key]:.2f}" if mace else "–") for key in ("force", "energy")}
            lines.append(
                f"| {split} | {n} | {LABELS[method]} | {m['force']:.1f} | {ratio['force']} | {m['energy']:.2f} | {ratio['energy']} | {m['device']} |"
            )
    return "\n".join(lines)


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    means = mean_of(rows)
    splits = sorted({r["split"] for r in rows}, key=lambda s: s != "level")
    figure, axes = plt.subplots(1, len(splits), figsize=(6 * len(splits), 4.5), squeeze=False)
    for ax, split in zip(axes[0], splits):
        for method in METHODS:
            ns = sorted(k[1] for k in means if k[0] == split and k[2] == method)
            if ns:
                style = "s--" if method == "mace" else ("^:" if method.startswith("hippynn") else "o-")
                ax.plot(ns, [means[(split, n, method)]["force"] for n in ns], style, label=LABELS[method])
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("training frames N")
        ax.set_ylabel("test force RMSE (meV/Å)")
        ax.set_title(f"{split} split, {TARGET_LEVEL}")
        ax.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def write_rows(rows: list[dict[str, Any]], path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS, extrasaction="ignore")
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


def timing(models: dict[str, Path], mace_model: Path, quick: bool) -> dict[str, Any]:
    """Seconds per energy + forces call, on the CPU with one thread, of trained metamlip models
    {method: model.ckpt} (the first one is "metamlip_s") and a trained MACE model."""
    import torch

    from metamlip.ase import MetaMLIPCalculator

    torch.set_num_threads(1)
    atoms = ethanol_box(4 if quick else 5)
    ours = {
        method: time_call(MetaMLIPCalculator(str(model), level=TARGET_LEVEL, dtype="float64", device="cpu"), atoms, 5 if quick else 20)
        for method, model in models.items()
    }
    mace = time_call(mace_calculator(mace_model), atoms, 1 if quick else 2)
    first = next(iter(ours.values()))
    return {
        "atoms": len(atoms), "metamlip_s": first, "mace_s": mace, "speedup": mace / first,
        "methods": {method: {"seconds": t, "speedup": mace / t} for method, t in ours.items()},
    }


# -------------------------------------------------------------------- main ---


@dataclass
class Options:
    """What every run of one benchmark invocation shares."""

    work: Path
    pretrained: str
    pretrain_steps: int | None
    quick: bool
    device: str


def pretrain_dir(work: Path, molecule: str, outer_steps: int | None) -> Path:
    return work / "pretrain" / (f"without-{molecule}" + (f"-{outer_steps}steps" if outer_steps else ""))


def run_dir(work: Path, job: tuple, pretrain_steps: int | None) -> Path:
    """work/SPLIT/METHOD/nN-seedS (fine-tuning on the molecule split: -pretrainK for a shortened pre-training)."""
    split, n, seed, method = job
    suffix = f"-pretrain{pretrain_steps}" if method == "finetune" and split.molecule is not None and pretrain_steps else ""
    return work / split.name / method / f"n{n}-seed{seed}{suffix}"


def run_key(job: tuple, o: Options) -> str:
    """Fingerprint of the settings of one (split, N, seed, method) run (not of its device)."""
    split, n, seed, method = job
    if method == "mace":
        settings: dict[str, Any] = {"mace": mace_settings(n, seed, o.quick)}
    elif method.startswith("hippynn"):
        settings = {"hippynn": hippynn_settings(o.pretrained, method, n, o.quick), "seed": seed}
    else:
        init = None
        if method == "finetune":
            init = o.pretrained if split.molecule is None else f"{o.pretrained} recipe without {split.molecule}, {o.pretrain_steps or 'all'} outer steps"
        settings = metamlip_fingerprint(o.pretrained, init, seed, method_overrides(method, o.device, o.quick))
    return fingerprint({"split": split.name, "n": n, "settings": settings})


def run_job(job: tuple, o: Options) -> dict[str, Any] | None:
    """One (split, N, seed, method) run, cached in work/SPLIT/METHOD/nN-seedS; ("pretrain",
    split) makes the split's fine-tuning start."""
    if job[0] == "pretrain":
        pretrain_without(job[1].molecule, o.pretrained, pretrain_dir(o.work, job[1].molecule, o.pretrain_steps), o.pretrain_steps, o.device)
        return None
    split, n, seed, method = job
    directory = run_dir(o.work, job, o.pretrain_steps)
    key = run_key(job, o)
    if method == "mace":
        return cached(directory, lambda: train_mace(split, n, seed, directory, o.quick, o.device), key)
    if method.startswith("hippynn"):
        return cached(directory, lambda: train_hippynn(split, n, seed, directory, o.pretrained, method, o.quick, o.device), key)

    def start() -> str | None:
        if method != "finetune":
            return None
        if split.molecule is None:
            return o.pretrained
        return str(pretrain_without(split.molecule, o.pretrained, pretrain_dir(o.work, split.molecule, o.pretrain_steps), o.pretrain_steps, o.device))

    overrides = method_overrides(method, o.device, o.quick)
    return cached(directory, lambda: train_metamlip(split, n, seed, start(), o.pretrained, directory, overrides, method), key)


def _child(job: tuple, o: Options, error_file: str) -> None:
    """A run in its own process (and process group, so that a time limit also stops
    mace_run_train); a failure is written to `error_file` and the exit status is 1."""
    os.setsid()
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = "1"
    try:
        run_job(job, o)
    except BaseException:
        Path(error_file).write_text(traceback.format_exc())
        sys.exit(1)


def describe(job: tuple) -> str:
    if job[0] == "pretrain":
        return f"pre-training without {job[1].molecule}"
    split, n, seed, method = job
    return f"{split.name} {method} N={n} seed {seed}"


def run_all(jobs: list[tuple], o: Options, n_jobs: int, time_limit: float | None) -> tuple[list[dict[str, Any]], list[str]]:
    """Run `jobs` (cached ones are read, not run), `n_jobs` processes at once, in order; at
    `time_limit` seconds the unfinished ones are stopped. Returns (rows, lines on failures)."""
    rows, problems = [], []
    todo = []
    for job in jobs:
        done = None if job[0] == "pretrain" else read_cached(run_dir(o.work, job, o.pretrain_steps), run_key(job, o))
        if done is not None:
            rows.append(done)
        elif job[0] != "pretrain" or not (pretrain_dir(o.work, job[1].molecule, o.pretrain_steps) / "metrics.json").exists():
            todo.append(job)
    print(f"{len(rows)} runs cached, {len(todo)} to run ({n_jobs} at once, device {o.device})", flush=True)
    context = multiprocessing.get_context("spawn")
    deadline = time.monotonic() + time_limit if time_limit is not None else float("inf")
    errors = o.work / "errors"
    errors.mkdir(parents=True, exist_ok=True)
    running: dict[Any, tuple[tuple, Any, Path]] = {}
    bar = tqdm(total=len(todo), desc="runs")
    try:
        while todo or running:
            while todo and len(running) < n_jobs and time.monotonic() < deadline:
                job = todo.pop(0)
                error_file = errors / f"{describe(job).replace(' ', '_')}.txt"
                error_file.unlink(missing_ok=True)
                process = context.Process(target=_child, args=(job, o, str(error_file)), daemon=False)
                process.start()
                running[process.sentinel] = (job, process, error_file)
            if time.monotonic() >= deadline:
                for job, process, _ in running.values():
                    kill_group(process)
                    problems.append(f"{describe(job)}: stopped at the time limit")
                problems.extend(f"{describe(job)}: not started (time limit)" for job in todo)
                break
            ready = multiprocessing.connection.wait(list(running), timeout=max(0.1, min(5.0, deadline - time.monotonic())))
            for sentinel in ready:
                job, process, error_file = running.pop(sentinel)
                process.join()
                bar.update()
                if process.exitcode != 0:
                    why = error_file.read_text().strip().splitlines()[-1] if error_file.exists() else f"exit status {process.exitcode}"
                    problems.append(f"{describe(job)}: FAILED ({why}; {error_file})")
                    tqdm.write(problems[-1])
                    continue
                if job[0] == "pretrain":
                    tqdm.write(f"pre-trained the start of the molecule split without {job[1].molecule} (recipe of {o.pretrained})")
                    continue
                r = read_cached(run_dir(o.work, job, o.pretrain_steps))
                rows.append(r)
                tqdm.write(
                    f"{r['split']:>8} {r['method']:>11} N={r['n_train']:<3} seed {r['seed']}: force {r['force_rmse_meV_per_A']:.1f} meV/Å, "
                    f"energy {r['energy_rmse_meV_per_atom']:.2f} meV/atom ({r['train_seconds']:.0f} s, {r['device']})"
                )
    finally:
        for _, process, _ in running.values():
            kill_group(process)
        bar.close()
    return rows, problems


def kill_group(process) -> None:
    """Stop a run and whatever it started (its process group)."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        process.kill()
    process.join()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run (N = 25, short training; <= 5 min)")
    parser.add_argument("--pretrained", default="pretrained:hipnn-meta-hcno", help="the shipped model to fine-tune from")
    parser.add_argument("--sizes", type=int, nargs="+", help="training-set sizes (default 25 50 100; quick 25)")
    parser.add_argument("--mace-sizes", type=int, nargs="+", help="training-set sizes for MACE (default: --sizes; MACE is the slow one)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument("--device", default="cpu", help="where every run trains: cpu, cuda or cuda:N (the time per call is always CPU, 1 thread)")
    parser.add_argument("--work", default=str(ROOT / "runs" / "bench_accuracy"), help="cache of runs")
    parser.add_argument("--results", default=str(ROOT / "bench" / "results"), help="where the CSV and PNG go")
    parser.add_argument("--jobs", type=int, default=2, help="training runs at once (one process and one CPU thread each)")
    parser.add_argument("--time-limit", type=float, help="seconds: start nothing after, stop what still runs (finished runs stay cached)")
    parser.add_argument("--splits", nargs="+", choices=list(SPLITS), default=["level", "molecule"],
                        help="foundation: the held-out molecules of the foundation campaign (fine-tune with --pretrained pretrained:hipnn-meta-chno)")
    parser.add_argument("--no-timing", action="store_true", help="skip the time per call at ~1k atoms")
    parser.add_argument("--cached-only", action="store_true", help="only collect finished runs into the CSV, PNG and table (train nothing)")
    parser.add_argument("--pretrain-steps", type=int, help="outer steps of the molecule split's pre-training (default: the shipped recipe's; quick 200)")
    args = parser.parse_args(argv)
    if args.device != "cpu":
        import torch

        if not args.device.startswith("cuda") or not torch.cuda.is_available():
            parser.error(f"--device {args.device}: {'no GPU visible to torch' if args.device.startswith('cuda') else 'expected cpu, cuda or cuda:N'}")

    from metamlip.data import read_dataset

    sizes = args.sizes or ([25] if args.quick else [25, 50, 100])
    results = Path(args.results)
    results.mkdir(parents=True, exist_ok=True)
    data = read_dataset(str(TARGET_FILE))
    splits = [SPLITS[name](data, sizes) for name in args.splits]
    o = Options(Path(args.work).resolve() / ("quick" if args.quick else "full"), args.pretrained, args.pretrain_steps or (200 if args.quick else None), args.quick, args.device)
    started = time.perf_counter()
    mace_sizes = args.mace_sizes or sizes
    runs = [
        (split, n, seed, method)
        for split in splits
        for n in sizes
        for seed in args.seeds
        for method in args.methods
        if method != "mace" or n in mace_sizes
    ]

    # MACE first (the slow one), then N = 50 (the targets), the level split before the
    # molecule split (whose fine-tuning waits for its pre-trained start)
    def priority(job: tuple) -> tuple:
        split, n, seed, method = job
        return (method != "mace", n != 50, split.molecule is not None, n, method == "finetune", seed, METHODS.index(method))

    jobs: list[tuple] = sorted(runs, key=priority)
    for k, job in enumerate(jobs):
        if job[3] == "finetune" and job[0].molecule is not None:
            jobs.insert(k, ("pretrain", job[0]))
            break
    if args.cached_only:
        rows = [r for job in jobs if job[0] != "pretrain" and (r := read_cached(run_dir(o.work, job, o.pretrain_steps), run_key(job, o)))]
        print(f"collected {len(rows)} finished runs; not run (or run with other settings): {len([j for j in jobs if j[0] != 'pretrain']) - len(rows)}")
        problems: list[str] = []
    else:
        rows, problems = run_all(jobs, o, args.jobs, args.time_limit)
    rows.sort(key=lambda r: (r["split"] != "level", r["n_train"], METHODS.index(r["method"]), r["seed"]))
    suffix = "_quick" if args.quick else ""
    write_rows(rows, results / f"accuracy{suffix}.csv")
    if rows:
        plot(rows, results / f"accuracy{suffix}.png")
    print(ratio_table(rows))
    for line in problems:
        print(f"not done: {line}")
    run = f"n{mace_sizes[-1]}-seed{args.seeds[0]}"
    timed = ["finetune", "scratch", "scratch-ts1", "scratch-ts2"]  # the first one found is the headline
    timed_split = splits[0].name  # the models of the first split are timed
    models = {m: o.work / timed_split / m / run / "model.ckpt" for m in timed if m in args.methods}
    models = {m: path for m, path in models.items() if path.exists()}
    mace = o.work / timed_split / "mace" / run / "mace.model"
    if "mace" in args.methods and not args.no_timing and models and mace.exists():
        speed = timing(models, mace, args.quick)
        print(f"energy + forces, {speed['atoms']} atoms (ethanol box), CPU, 1 thread, float64: MACE {speed['mace_s'] * 1000:.0f} ms")
        for method, t in speed["methods"].items():
            print(f"  {LABELS[method]}: {t['seconds'] * 1000:.1f} ms, {t['speedup']:.0f}x faster than MACE")
        (results / f"accuracy_speed{suffix}.json").write_text(json.dumps(speed, indent=2) + "\n")
    print(f"total {time.perf_counter() - started:.0f} s")
    return 1 if any("FAILED" in line for line in problems) else 0


if __name__ == "__main__":
    sys.exit(main())
