"""Which pre-training makes the best start for molecules and a level never seen (issue 13).

    python bench/foundation.py prepare --work runs/foundation            # the data (foundation_data.py)
    python bench/foundation.py run --work runs/foundation --device cuda --budget-s 330 --workers 16
    python bench/foundation.py report --work runs/foundation             # CSV, PNG, table from what finished
    python bench/foundation.py ship --work runs/foundation --variant multihead   # -> pretrained:hipnn-meta-chno

Starts compared: `scratch` and `scratch-ts2` (the target level only, `metamlip-train` defaults;
HIP-NN and HIP-NN-TS l = 2), the shipped
models `hipnn-meta-hcno` and `hipnn-meta-hcno-ts2` (HIP-NN-TS l = 2, the accuracy issue's start), and one pre-training per VARIANTS entry (transfer from the closest level,
joint, multi-head, Reptile variants) on the sources of foundation_data.py, every one the
current default model (HIP-NN, core repulsion) unless the variant says otherwise (`-ts2`:
HIP-NN-TS l = 2). Each start is fine-tuned at `mp2/cc-pvdz` on
N = 10, 25, 50, 100 frames of the held-out molecules with the protocol of `metamlip-train
--init` (scratch: the from-scratch protocol), validated on one frame per molecule, tested on the
fixed test frames.

`run` is the unattended pipeline: pre-training processes (GPU when --device cuda) each with a
wall-time budget (the step count is set from a timing of the first steps so that the learning-
rate and epsilon schedules finish in it; a timer stops the run at the budget whatever
happens), the fine-tunes on CPU processes (one thread each; scratch and hipnn-meta-hcno start at
once, the others as their pre-training finishes), a deadline after which unfinished runs are
stopped (and left out), then `report`. Everything is cached in WORK: rerunning continues.
Results: RESULTS/foundation_runs.csv (every run), foundation.csv (mean and std per start and N),
foundation.png, foundation.md, foundation_pretrain.csv (validation per level of each start).
"""

from __future__ import annotations

import argparse
import copy
import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import foundation_data as fd  # noqa: E402

from metamlip.atomic import atomic_path  # noqa: E402
from metamlip.data import Dataset  # noqa: E402
from metamlip.data.batching import GraphSet  # noqa: E402
from metamlip.meta import strategies  # noqa: E402
from metamlip.meta.learning_curve import markdown_table, summarise  # noqa: E402
from metamlip.meta.reptile import ReptileTrainer  # noqa: E402
from metamlip.meta.tasks import balanced_order  # noqa: E402
from metamlip.nn.checkpoint import load_potential  # noqa: E402
from metamlip.nn.repulsion import repulsion_from_config  # noqa: E402
from metamlip.pretrained import resolve  # noqa: E402
from metamlip.train.checkpoint import save_checkpoint  # noqa: E402
from metamlip.train.config import Config, config_from_dict  # noqa: E402
from metamlip.train.distributed import SINGLE  # noqa: E402
from metamlip.train.interrupt import TrainingInterrupted  # noqa: E402
from metamlip.train.metrics import error_metrics, predict  # noqa: E402
from metamlip.train.plots import learning_curve_plot  # noqa: E402
from metamlip.train.run import train_target  # noqa: E402
from metamlip.train.steps import StepContext, gradient_step, make_optimizer, trainable_parameters  # noqa: E402
from metamlip.train.trainer import Trainer  # noqa: E402

RESULTS = fd.ROOT / "bench" / "results" / "foundation"
SIZES = (10, 25, 50, 100)
SHIPPED = "hipnn-meta-hcno"
SHIPPED_STARTS = (SHIPPED, "hipnn-meta-hcno-ts2")  # shipped models compared as starts (-ts2: HIP-NN-TS l = 2)
SCRATCH = {"scratch": {}, "scratch-ts2": {"tensor_order": 2}}  # from-scratch starts: model settings
BASELINES = (*SCRATCH, *SHIPPED_STARTS)
# Pre-training variants: strategy, source levels ("all", or "foundation": only the campaign's
# levels, no bundled set) and Reptile settings. Reptile: k = 32 was better than 8 on the bundled
# set (README, "Meta-learning"), epsilon constant 1 better than 1 -> 0 there; Adam inner
# optimiser with its state carried across outer steps.
VARIANTS: dict[str, dict[str, Any]] = {
    "transfer": {"strategy": "transfer"},
    "joint": {"strategy": "joint"},
    "multihead": {"strategy": "multihead"},
    "reptile": {"strategy": "reptile", "reptile": {"inner_steps": 32, "outer_lr": 1.0, "outer_lr_end": 0.0}},
    "reptile-k8": {"strategy": "reptile", "reptile": {"inner_steps": 8, "outer_lr": 1.0, "outer_lr_end": 0.0}},
    "reptile-eps1": {"strategy": "reptile", "reptile": {"inner_steps": 32, "outer_schedule": "constant", "outer_lr": 1.0}},
    # Reptile samples levels uniformly: the bundled set's three levels (4 molecules each) would
    # take half of its steps; this variant meta-trains on the broad levels only (>= 20 systems).
    "reptile-broad": {"strategy": "reptile", "levels": "broad", "reptile": {"inner_steps": 32, "outer_lr": 1.0, "outer_lr_end": 0.0}},
    # The inner optimiser and its state, and k beyond 32 (README, "Foundation model": the sweep)
    "reptile-reset": {"strategy": "reptile", "reptile": {"inner_steps": 32, "inner_state": "reset", "outer_lr": 1.0, "outer_lr_end": 0.0}},
    "reptile-lr5e-4": {"strategy": "reptile", "reptile": {"inner_steps": 32, "inner_lr": 5.0e-4, "outer_lr": 1.0, "outer_lr_end": 0.0}},
    "reptile-lr5e-3": {"strategy": "reptile", "reptile": {"inner_steps": 32, "inner_lr": 5.0e-3, "outer_lr": 1.0, "outer_lr_end": 0.0}},
    "reptile-sgd": {"strategy": "reptile", "reptile": {"inner_steps": 32, "inner_optimizer": "sgd", "inner_lr": 1.0e-2, "outer_lr": 1.0, "outer_lr_end": 0.0}},
    "reptile-k128": {"strategy": "reptile", "reptile": {"inner_steps": 128, "outer_lr": 1.0, "outer_lr_end": 0.0}},
    # the sweep's best k and epsilon together (the other settings were no better than reptile's)
    "reptile-tuned": {"strategy": "reptile", "reptile": {"inner_steps": 128, "outer_schedule": "constant", "outer_lr": 1.0}},
    # HIP-NN-TS l = 2 (the accuracy issue's model; ~2.5x the cost per step)
    "multihead-ts2": {"strategy": "multihead", "model": {"tensor_order": 2}},
    "reptile-ts2": {"strategy": "reptile", "model": {"tensor_order": 2}, "reptile": {"inner_steps": 32, "outer_lr": 1.0, "outer_lr_end": 0.0}},
}
GPU_VARIANTS = ["transfer", "joint", "multihead", "reptile", "reptile-k8", "reptile-eps1", "reptile-broad"]
PRETRAIN = {  # shared by every pre-training (the step budget comes from the wall-time budget)
    "seed": 0,
    "batch_size": 32,
    "learning_rate": 2.0e-3,
    "schedule": "cosine",
    "warmup_steps": 200,
    "min_lr": 1.0e-5,
    "max_epochs": None,
    "patience": 1000,
    "epoch_size": 4096,
    "checkpoint_every": 100000,
    "progress": False,
}
REPTILE = {"inner_optimizer": "adam", "inner_lr": 2.0e-3, "inner_state": "carry", "meta_batch_size": 1, "task_sampling": "random"}
COLUMNS = [
    "start", "n_train", "seed", "energy_rmse_meV_per_atom", "energy_mae_meV_per_atom", "force_rmse_meV_per_A",
    "force_mae_meV_per_A", "n_test", "steps", "best_epoch", "seconds",
]


def write_json(path: Path, values: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(values, indent=2) + "\n")


# --- pre-training ---------------------------------------------------------------------------

def variant_config(name: str, info: dict[str, Any], device: str, max_steps: int | None) -> Config:
    spec = VARIANTS[name]
    pretrain = {**PRETRAIN, "device": device, "max_steps": max_steps or 10**7}
    return config_from_dict(
        {
            "strategy": spec["strategy"],
            "data": {"level": fd.TARGET_LEVEL, "transfer_source": info["transfer_source"]},
            "model": {"species": fd.SPECIES, **spec.get("model", {})},
            "training": {"device": device, "progress": False},
            "pretrain": pretrain,
            "reptile": {**REPTILE, "eval_every": 50, **spec.get("reptile", {})},
            "out": "",
        }
    )


def variant_levels(name: str, info: dict[str, Any]) -> list[str]:
    """The source levels variant `name` pre-trains on."""
    if VARIANTS[name]["strategy"] == "transfer":
        return [info["transfer_source"]]
    if VARIANTS[name].get("levels") == "broad":
        return [level for level, v in info["sources"].items() if v["systems"] >= fd.MIN_TRANSFER_SYSTEMS]
    return list(info["sources"])


def seconds_per_step(potential, data: GraphSet, settings, steps: int = 12, warmup: int = 3) -> float:
    """Wall time of one optimiser step of `settings` on `data` (a copy of the model is trained)."""
    trial = copy.deepcopy(potential)
    context = StepContext(trial, settings)
    params = trainable_parameters(trial)
    optimizer = make_optimizer("adam", params, 1e-4)
    rng = np.random.default_rng(0)
    for k in range(warmup + steps):
        if k == warmup:
            if settings.device.startswith("cuda"):
                torch.cuda.synchronize()
            start = time.perf_counter()
        gradient_step(context, params, optimizer, data, rng.choice(len(data), min(settings.batch_size, len(data)), replace=False))
    if settings.device.startswith("cuda"):
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / steps


class StepPlan:
    """Re-plans a run's length at each validation so that its schedule (cosine rate, Reptile's
    epsilon) ends `margin` seconds before `deadline`: steps left = time left / the time per
    step measured over the second half of the run so far (validations included)."""

    def __init__(self, deadline: float, margin: float, adaptive: bool = True) -> None:
        self.deadline, self.margin, self.adaptive = deadline, margin, adaptive
        self.history: list[tuple[float, int]] = []

    def total(self, done: int, now: float | None = None) -> int | None:
        """The new total number of steps after `done` steps (None: keep the plan)."""
        now = time.time() if now is None else now
        self.history.append((now, done))
        if len(self.history) < 2 or not self.adaptive:
            return None
        t, s = self.history[(len(self.history) - 1) // 2]
        per_step = (now - t) / max(done - s, 1)
        return done + max(int((self.deadline - self.margin - now) / per_step), 1)


class PlannedTrainer(Trainer):
    """Trainer whose max_steps (and cosine length) follows a StepPlan."""

    plan: StepPlan

    def _end_epoch(self, n_batches: int, seconds: float) -> None:
        super()._end_epoch(n_batches, seconds)
        total = self.plan.total(self.state.global_step)
        if total is not None and not self.state.stopped_early:
            self.settings.max_steps = self.scheduler.total_steps = total


class PlannedReptile(ReptileTrainer):
    """ReptileTrainer whose outer_steps (and epsilon schedule) follows a StepPlan."""

    plan: StepPlan

    def _log_row(self) -> None:
        super()._log_row()
        total = self.plan.total(self.state.outer_step)
        if total is not None:
            self.reptile.outer_steps = max(total, self.state.outer_step + 1)


class Deadline:
    """Sends this process SIGINT at `deadline` (time.time()): training then saves and stops."""

    def __init__(self, deadline: float) -> None:
        self.timer = threading.Timer(max(deadline - time.time(), 0.0), os.kill, (os.getpid(), signal.SIGINT))
        self.timer.daemon = True

    def __enter__(self) -> "Deadline":
        self.timer.start()
        return self

    def __exit__(self, *exc) -> None:
        self.timer.cancel()


def pretrain(work: Path, name: str, budget_s: float, device: str, max_steps: int | None = None, deadline: float | None = None,
             resume: bool = False) -> dict[str, Any]:
    """Pre-train variant `name` on WORK's sources within budget_s seconds, or until `deadline`
    (time.time()) if given (data loading included); writes WORK/pretrain/NAME/{model.ckpt,
    metrics.json, train_log.csv}.

    resume: exactly `max_steps` gradient steps, whatever the time; a run stopped before (the
    deadline, SIGINT, a killed session) keeps last.ckpt and writes no metrics, and the same call
    continues it exactly (WORK/pretrain/NAME/segments.json: seconds and steps of each part).
    Returns the metrics, or {"variant", "gradient_steps", "finished": False} when stopped early.
    """
    if resume and not max_steps:
        raise ValueError("pretrain --resume needs --max-steps: a resumable run has a fixed length")
    start = time.time()
    deadline = start + budget_s if deadline is None else deadline
    budget_s = deadline - start
    out = work / "pretrain" / name
    if (out / "metrics.json").exists():
        return json.loads((out / "metrics.json").read_text())
    resuming = resume and (out / "last.ckpt").exists()
    prepared = fd.load_sources(work)
    config = variant_config(name, prepared.info, device, max_steps)
    levels = variant_levels(name, prepared.info)
    train = Dataset(c for level in levels for c in prepared.sources[level][0])
    n_heads = len(levels) if config.strategy == "multihead" else 1
    settings = config.pretrain
    torch.manual_seed(settings.seed)
    potential = strategies.fresh_potential(config, train, levels, fd.SPECIES, n_heads)
    potential = potential.to(getattr(torch, settings.dtype)).to(device)
    potential.hipnn.set_implementation(settings.implementation)
    cutoff = config.model.cutoff
    vals = {level: GraphSet(prepared.sources[level][1].configurations, cutoff, False) for level in levels}
    pooled_val = GraphSet([c for v in vals.values() for c in v.configs], cutoff, False)
    if config.strategy == "reptile":
        tasks = {level: GraphSet(prepared.sources[level][0].configurations, cutoff, False) for level in levels}
        timing_set = tasks[levels[0]]
    else:
        train_set = GraphSet(train.configurations, cutoff, False)
        timing_set = train_set
    step_s = seconds_per_step(potential, timing_set, settings)
    # steps that fit: 85% of what is left, less one validation per epoch (~ its frames / batch steps);
    # a resumable run takes all max_steps (its plan must not depend on the time left)
    left = deadline - time.time() - 10.0
    epoch_steps = settings.epoch_size / settings.batch_size
    if config.strategy == "reptile":
        per_eval = len(pooled_val) / settings.batch_size * 0.5 * step_s
        k = config.reptile.inner_steps
        outer = max(int(0.85 * left / (k * step_s + per_eval / config.reptile.eval_every)), 2)
        fixed = max(max_steps // k, 2) if max_steps else None
        config.reptile.outer_steps = fixed if resume else min(outer, fixed) if fixed else outer
        steps = config.reptile.outer_steps * k
        # last.ckpt about as often as the other strategies (each epoch): a killed run loses at most that
        settings.checkpoint_every = max(1, round(epoch_steps / k))
        trainer = PlannedReptile(potential, tasks, vals, settings, config.reptile, out, config.to_dict())
    else:
        per_epoch_eval = len(pooled_val) / settings.batch_size * 0.5 * step_s
        steps = max(int(0.85 * left / (step_s + per_epoch_eval / epoch_steps)), 10)
        settings.max_steps = max_steps if resume else min(steps, max_steps) if max_steps else steps
        steps = settings.max_steps
        settings.warmup_steps = min(settings.warmup_steps, steps // 10)
        trainer = PlannedTrainer(potential, train_set, pooled_val, settings, out, config.to_dict())
    trainer.plan = StepPlan(deadline, margin=5.0 + 0.04 * budget_s, adaptive=not max_steps)
    print(f"# pretrain {name}: {len(train)} frames, levels {', '.join(levels)}; {step_s * 1000:.1f} ms/step -> {steps} steps"
          + (" (resuming)" if resuming else ""), flush=True)
    truncated = False
    segments_path = out / "segments.json"
    segments = json.loads(segments_path.read_text()) if resuming and segments_path.exists() else []

    def steps_done() -> int:
        return trainer.state.outer_step * config.reptile.inner_steps if config.strategy == "reptile" else trainer.state.global_step

    try:
        with Deadline(deadline):
            potential = trainer.fit(resume=resuming)
    except TrainingInterrupted:  # out of time: Reptile keeps its meta-parameters, the others their best validation
        if resume:  # last.ckpt is written: the same call continues
            write_json(segments_path, [*segments, {"seconds": time.time() - start, "steps": steps_done()}])
            print(f"# pretrain {name}: stopped at step {steps_done()} of {steps}; run the same command to continue", flush=True)
            return {"variant": name, "gradient_steps": steps_done(), "finished": False}
        truncated = True
        if config.strategy != "reptile":
            potential.load_state_dict(trainer.best_model_state)
        save_checkpoint(out / "model.ckpt", potential, config.to_dict(), extra={"truncated": True})
    (out / "last.ckpt").unlink(missing_ok=True)
    done = steps_done()
    segments = [*segments, {"seconds": time.time() - start, "steps": done}]
    metrics = {
        "variant": name,
        "strategy": config.strategy,
        "levels": levels,
        "train_frames": len(train),
        "ms_per_step": step_s * 1000,
        "planned_steps": steps,  # from the first timing; re-planned at each validation
        "gradient_steps": done,
        "truncated": truncated,
        "seconds": sum(part["seconds"] for part in segments),
        "segments": len(segments),
        "device": device,
        "settings": {"pretrain": settings.model_dump(), "reptile": config.reptile.model_dump() if config.strategy == "reptile" else None},
        "validation": error_metrics(predict(potential, pooled_val)),
    }
    write_json(out / "metrics.json", metrics)
    return metrics


# --- fine-tuning ----------------------------------------------------------------------------

def start_checkpoint(work: Path, start: str) -> str:
    return f"pretrained:{start}" if start in SHIPPED_STARTS else str(work / "pretrain" / start / "model.ckpt")


def finetune(work: Path, start: str, n_train: int, seed: int, device: str = "cpu", overrides: dict | None = None) -> dict[str, Any]:
    """Train start `start` on N target frames (seed: which frames, batch order, scratch
    weights); writes WORK/runs/START/nN-seedS/ and returns the result row."""
    out = work / "runs" / start / f"n{n_train}-seed{seed}"
    done = out / "result.json"
    if done.exists():
        return json.loads(done.read_text())
    begin = time.time()
    target = fd.load_target(work)
    if n_train > len(target.pool):
        raise ValueError(f"N = {n_train} exceeds the {len(target.pool)} training-pool frames of the held-out molecules")
    train = target.pool.subset(balanced_order(target.pool, seed)[:n_train])
    values: dict[str, Any] = {
        "data": {"level": fd.TARGET_LEVEL},
        "model": {"species": fd.SPECIES, **SCRATCH.get(start, {})},
        "training": {"seed": seed, "device": device, "progress": False, "epoch_size": 100},
        "out": str(out),
    }
    for section, keys in (overrides or {}).items():
        values.setdefault(section, {}).update(keys)
    config = config_from_dict(values)
    if start in SCRATCH:
        potential = strategies.fresh_potential(config, train, [fd.TARGET_LEVEL], fd.SPECIES)
    else:
        config.init = start_checkpoint(work, start)
        potential = load_potential(resolve(config.init))
        if potential.repulsion is None:
            potential.repulsion = repulsion_from_config(config.model, potential.species, train.configurations)
        config.model = type(config.model)(**strategies.architecture_of(potential))
        potential = strategies.add_target_level(potential.double(), fd.TARGET_LEVEL, train, config.finetune)
    metrics = train_target(config, potential, train, target.val, target.test, out, SINGLE, resume=True)
    test = metrics["test"][fd.TARGET_LEVEL]
    with open(out / "train_log.csv", newline="") as handle:
        log = list(csv.DictReader(handle))
    row = {
        "start": start,
        "n_train": n_train,
        "seed": seed,
        **{k: test[k] for k in COLUMNS[3:7]},
        "n_test": len(target.test),
        "steps": int(float(log[-1]["step"])) if log else 0,
        "best_epoch": metrics["best_epoch"],
        "seconds": time.time() - begin,
    }
    (out / "last.ckpt").unlink(missing_ok=True)
    write_json(done, row)
    return row


# --- the unattended pipeline ----------------------------------------------------------------

class Job:
    def __init__(self, name: str, argv: list[str], gpu: bool = False, needs: str | None = None) -> None:
        self.name, self.argv, self.gpu, self.needs = name, argv, gpu, needs
        self.process: subprocess.Popen | None = None
        self.log: Path | None = None
        self.started = 0.0


def _launch(job: Job, logs: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    job.log = logs / f"{job.name}.log"
    handle = open(job.log, "w")
    job.process = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), *job.argv], stdout=handle, stderr=subprocess.STDOUT, env=env)
    job.started = time.time()


def run(args: argparse.Namespace) -> None:
    """prepare -> pre-training (+ baseline fine-tunes meanwhile) -> fine-tunes -> report,
    every stage within the total budget."""
    t0 = time.time()
    finish = args.deadline if args.deadline is not None else t0 + args.budget_s
    end = finish - 25  # runs stop here; the rest is for stopping them, the report and the archive
    work = Path(args.work)
    logs = work / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    if not (work / "prepared.pt").exists():
        info = fd.prepare(work, Path(args.foundation), None if args.no_bundled else fd.BUNDLED, workers=args.workers, max_frames_per_level=args.max_frames)
    else:
        info = json.loads((work / "prepared.json").read_text())
    print(f"# prepared in {time.time() - t0:.0f} s: {info['n_test']} test, {info['n_val']} validation, {info['n_pool']} pool frames "
          f"of {len(info['heldout_with_labels'])}/{len(info['heldout_molecules'])} held-out molecules; sources "
          + ", ".join(f"{k} {v['train']}+{v['val']}" for k, v in info["sources"].items())
          + f"; transfer from {info['transfer_source']}", flush=True)
    sizes = [n for n in args.sizes if n <= info["n_pool"]]
    if len(sizes) < len(args.sizes):
        print(f"# sizes {sorted(set(args.sizes) - set(sizes))} left out: only {info['n_pool']} pool frames", flush=True)
    pretrain_end = end - args.finetune_reserve_s
    device_flags = ["--device", args.device]
    step_flags = [] if args.pretrain_max_steps is None else ["--max-steps", str(args.pretrain_max_steps)]
    ft_flags = []
    if args.finetune_steps is not None:
        ft_flags += ["--finetune-steps", str(args.finetune_steps)]
    if args.scratch_steps is not None:
        ft_flags += ["--scratch-steps", str(args.scratch_steps)]
    pending: list[Job] = []
    for variant in args.variants:
        if not (work / "pretrain" / variant / "metrics.json").exists():
            pending.append(Job(f"pretrain-{variant}", ["pretrain", "--work", str(work), "--variant", variant, "--deadline", "0", *device_flags, *step_flags], gpu=True))
    priority = sorted(sizes, key=lambda n: (n != 50, n != 10, n != 100, n))  # most telling sizes first
    for seed in args.seeds:
        for n in priority:
            for start in [*BASELINES, *args.variants]:
                if not (work / "runs" / start / f"n{n}-seed{seed}" / "result.json").exists():
                    needs = None if start in BASELINES else start
                    pending.append(Job(f"{start}-n{n}-seed{seed}", ["finetune", "--work", str(work), "--start", start, "--n", str(n), "--seed", str(seed), *ft_flags], needs=needs))
    running: list[Job] = []
    failed: list[str] = []
    stopping = False
    while pending or running:
        now = time.time()
        for job in list(running):
            code = job.process.poll()
            if code is None:
                continue
            running.remove(job)
            print(f"# {job.name}: exit {code} after {now - job.started:.0f} s (at {now - t0:.0f} s)", flush=True)
            if code != 0:
                failed.append(job.name)
                if job.gpu:  # its fine-tunes cannot run
                    variant = job.name[len("pretrain-"):]
                    pending = [j for j in pending if j.needs != variant]
        if now >= end - 5 and not stopping:
            stopping = True
            pending = []
            for job in running:
                job.process.send_signal(signal.SIGINT)
            print(f"# deadline: stopping {len(running)} run(s)", flush=True)
        if stopping and now >= end + 8:
            for job in running:
                job.process.kill()
        slots = args.workers - len(running)
        for job in list(pending):
            if slots <= 0:
                break
            if job.needs and not (work / "pretrain" / job.needs / "metrics.json").exists():
                continue
            if job.gpu:
                budget = max(pretrain_end - now, 30) if args.pretrain_budget_s is None else min(max(pretrain_end - now, 30), args.pretrain_budget_s)
                job.argv[job.argv.index("--deadline") + 1] = f"{now + budget:.1f}"
            pending.remove(job)
            _launch(job, logs)
            running.append(job)
            slots -= 1
        if not running and pending and all(j.needs and not (work / "pretrain" / j.needs / "metrics.json").exists() for j in pending):
            break  # nothing can start any more
        time.sleep(0.3)
    if failed:
        print(f"# failed or stopped: {', '.join(failed)} (logs in {logs})", flush=True)
    report(work, Path(args.results))
    if args.pack:
        print(f"# archive {pack(work, Path(args.results), Path(args.pack))}", flush=True)
    print(f"# total {time.time() - t0:.0f} s", flush=True)


# --- results --------------------------------------------------------------------------------

def collect(work: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    rows = [json.loads(p.read_text()) for p in sorted((work / "runs").glob("*/*/result.json"))]
    pre = [json.loads(p.read_text()) for p in sorted((work / "pretrain").glob("*/metrics.json"))]
    return rows, pre


def molecule_errors(work: Path, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Test errors per held-out molecule of every finished run (from its model.ckpt): which
    molecules a start gets wrong."""
    target = fd.load_target(work)
    graphs: dict[float, GraphSet] = {}  # test graphs per cutoff
    out = []
    for r in rows:
        path = work / "runs" / r["start"] / f"n{r['n_train']}-seed{r['seed']}" / "model.ckpt"
        if not path.exists():
            continue
        potential = load_potential(path)
        if potential.cutoff not in graphs:
            graphs[potential.cutoff] = GraphSet(target.test.configurations, potential.cutoff, False)
        pred = predict(potential, graphs[potential.cutoff])
        frame_molecule = np.array(pred.molecules)
        atom_molecule = np.repeat(frame_molecule, pred.n_atoms)  # every test frame has forces
        energy = (pred.energy_pred - pred.energy_ref) / pred.n_atoms * 1000
        force = (pred.force_pred - pred.force_ref) * 1000
        for molecule in dict.fromkeys(pred.molecules):
            e = energy[frame_molecule == molecule]
            offset_removed = e - e.mean()  # the shape of the molecule's surface
            out.append({
                "start": r["start"], "n_train": r["n_train"], "seed": r["seed"], "molecule": molecule,
                "force_rmse_meV_per_A": round(float(np.sqrt(np.mean(force[atom_molecule == molecule] ** 2))), 1),
                "energy_rmse_meV_per_atom": round(float(np.sqrt(np.mean(e**2))), 2),
                "energy_rmse_offset_removed": round(float(np.sqrt(np.mean(offset_removed**2))), 2),
            })
    return out


def report(work: Path, results: Path) -> None:
    """RESULTS/foundation_runs.csv, foundation.csv, foundation.png, foundation.md and
    foundation_pretrain.csv from every finished run in WORK."""
    rows, pre = collect(work)
    results.mkdir(parents=True, exist_ok=True)
    if not rows:
        print("# no finished runs to report")
        return
    order = [s for s in [*BASELINES, *VARIANTS] if any(r["start"] == s for r in rows)]
    rows.sort(key=lambda r: (order.index(r["start"]), r["n_train"], r["seed"]))
    _write_csv(results / "foundation_runs.csv", rows, COLUMNS)
    per_molecule = molecule_errors(work, rows)
    if per_molecule:
        _write_csv(results / "foundation_molecules.csv", per_molecule, list(per_molecule[0]))
    summary = summarise([{**r, "strategy": r["start"]} for r in rows])
    summary.sort(key=lambda s: (order.index(s["strategy"]), s["n_train"]))
    scratch = {s["n_train"]: s["force_rmse_meV_per_A"] for s in summary if s["strategy"] == "scratch"}
    shipped = {s["n_train"]: s["force_rmse_meV_per_A"] for s in summary if s["strategy"] == SHIPPED}
    table = []
    for s in summary:
        n = s["n_train"]
        table.append({
            "start": s["strategy"], "n_train": n, "n_seeds": s["n_seeds"],
            "force_rmse_meV_per_A": round(s["force_rmse_meV_per_A"], 1), "force_rmse_std": round(s["force_rmse_meV_per_A_std"], 1),
            "energy_rmse_meV_per_atom": round(s["energy_rmse_meV_per_atom"], 2), "energy_rmse_std": round(s["energy_rmse_meV_per_atom_std"], 2),
            "force_ratio_to_scratch": round(s["force_rmse_meV_per_A"] / scratch[n], 3) if n in scratch else "",
            "force_ratio_to_hcno": round(s["force_rmse_meV_per_A"] / shipped[n], 3) if n in shipped else "",
        })
    _write_csv(results / "foundation.csv", table, list(table[0]))
    sizes = sorted({r["n_train"] for r in rows})
    n_test = rows[0]["n_test"]
    learning_curve_plot(summary, results / "foundation.png", title=f"held-out molecules at {fd.TARGET_LEVEL} (test {n_test} frames)")
    pre_rows = []
    for p in pre:
        for level, m in p["validation"].items():
            pre_rows.append({
                "variant": p["variant"], "strategy": p["strategy"], "level": level, "n_val": m["n_configurations"],
                "energy_rmse_meV_per_atom": round(m["energy_rmse_meV_per_atom"], 2), "force_rmse_meV_per_A": round(m["force_rmse_meV_per_A"], 1),
                "gradient_steps": p["gradient_steps"], "seconds": round(p["seconds"], 1), "truncated": p["truncated"], "device": p["device"],
            })
    if pre_rows:
        _write_csv(results / "foundation_pretrain.csv", pre_rows, list(pre_rows[0]))
    text = markdown_table(summary, order, sizes, fd.TARGET_LEVEL, n_test)
    info_path = work / "prepared.json"
    if info_path.exists():
        info = json.loads(info_path.read_text())
        text += (
            f"\nHeld-out molecules with labels: {len(info['heldout_with_labels'])} of {len(info['heldout_molecules'])} "
            f"({', '.join(info['heldout_with_labels'])}); transfer source {info['transfer_source']}.\n"
        )
    text += "\n" + recommendation(table) + "\n"
    with atomic_path(results / "foundation.md") as tmp:
        tmp.write_text(text)
    print(text)


def recommendation(table: list[dict[str, Any]]) -> str:
    """Which pre-trained start to ship: among those with a force RMSE below hipnn-meta-hcno's at
    every size both have, the one with the lowest geometric-mean ratio; none if no start is."""
    ratios: dict[str, list[float]] = {}
    for row in table:
        if row["start"] not in BASELINES and row["force_ratio_to_hcno"] != "":
            ratios.setdefault(row["start"], []).append(float(row["force_ratio_to_hcno"]))
    if not ratios:
        return f"No pre-trained start has runs at a size where {SHIPPED} has one: nothing to compare."
    better = [s for s in ratios if max(ratios[s]) < 1]
    best = min(better or ratios, key=lambda s: float(np.mean(np.log(ratios[s]))))
    listed = ", ".join(f"{r:.2f}" for r in ratios[best])
    if better:
        return (f"Best start: `{best}` (force RMSE / {SHIPPED}: {listed}, below 1 at every N): ship it with "
                f"`python bench/foundation.py ship --variant {best} --make-default`.")
    return f"Best start: `{best}` (force RMSE / {SHIPPED}: {listed}): not better at every N, keep `{SHIPPED}` as the default."


def _write_csv(path: Path, rows: list[dict[str, Any]], columns: list[str]) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)


def pack(work: Path, results: Path, out: Path, limit_mb: float = 16.0) -> Path:
    """OUT/foundation.tar.gz: results, each pre-training's model.ckpt, metrics and log, every
    run's result.json and the logs; checkpoints are left out if the archive would exceed limit_mb."""
    out.mkdir(parents=True, exist_ok=True)
    archive = out / "foundation.tar.gz"
    for with_models in (True, False):
        with tarfile.open(archive, "w:gz") as tar:
            for path in sorted(results.glob("foundation*")):
                tar.add(path, f"results/{path.name}")
            for name in ("prepared.json",):
                if (work / name).exists():
                    tar.add(work / name, name)
            for path in sorted((work / "pretrain").glob("*/*")):
                if path.name in ("metrics.json", "train_log.csv") or (with_models and path.name == "model.ckpt"):
                    tar.add(path, str(path.relative_to(work)))
            for path in sorted((work / "runs").glob("*/*/*")):
                if path.name in ("result.json", "train_log.csv"):
                    tar.add(path, str(path.relative_to(work)))
            for path in sorted((work / "logs").glob("*.log")):
                tar.add(path, str(path.relative_to(work)))
        if archive.stat().st_size <= limit_mb * 1e6:
            break
    return archive


# --- shipping ---------------------------------------------------------------------------------

SHIP_NAME = "hipnn-meta-chno"
PRETRAINED_DIR = fd.ROOT / "python" / "metamlip" / "pretrained"


def model_card(name: str, variant: str, metrics: dict[str, Any], info: dict[str, Any], table: list[dict[str, str]], weights: int,
               default: bool = False, scans: str | None = None) -> str:
    """The model card of a shipped foundation start (markdown); default: `pretrained:default`
    names it; scans: foundation_scan.py's summary (markdown), if run."""
    s = metrics["settings"]["pretrain"]
    r = metrics["settings"]["reptile"]
    how = {
        "transfer": f"pre-trained on one level, `{info['transfer_source']}` (the broad level closest to MP2 in forces)",
        "joint": "pre-trained on every source level pooled, per-level self energies, one energy head",
        "multihead": "pre-trained on every source level with one energy head per level (shared body)",
        "reptile": "meta-trained with Reptile across the source levels",
    }[metrics["strategy"]]
    lines = [
        f"# {name}", "",
        f"{metrics['model_name']} for H/C/N/O molecules and molecular clusters, {how}: the foundation start for fine-tuning to a new level "
        f"of theory and new molecules (`--init pretrained:{name}`"
        + (", or `--init pretrained:default`, which names this model). `hipnn-meta-hcno` and `hipnn-meta-hcno-ts2` stay available." if default else ")."),
        "",
        "## Use", "",
        "```bash",
        f"metamlip-train --init pretrained:{'default' if default else name} --data mine.extxyz --level my/level --n-train 50 --out runs/mine --compare-scratch",
        "```", "",
        "Fine-tuning adds the new level (a new energy head for a multi-head model, initialised as the mean of the others) "
        "with self energies fitted to what the network does not yet predict. Fine-tune before use: the pre-training "
        "levels are cheap ones.", "",
        "## Training data", "",
        f"The foundation set (`data/foundation`, data cards in `data/foundation/cards/`) and the bundled set "
        f"(`examples/data`), prepared by `bench/foundation_data.py`; `{info['target_level']}` left out entirely, and "
        f"{len(info['heldout_molecules'])} held-out molecules (and the clusters containing them) left out at every level:",
        "", ", ".join(f"`{m}`" for m in info["heldout_molecules"]), "",
        "| level | systems | training | validation |", "| --- | ---: | ---: | ---: |",
    ]
    for level in metrics["levels"]:
        v = info["sources"][level]
        lines.append(f"| `{level}` | {v['systems']} | {v['train']} | {v['val']} |")
    lines += [
        "", "## Strategy and settings", "",
        f"- Model: {metrics['model_name']}, {metrics['architecture']}{weights:,} weights, core repulsion (ZBL) on, float32.",
        f"- `{metrics['strategy']}` (bench/foundation.py variant `{variant}`): batches of {s['batch_size']}, "
        + ("" if r else f"Adam at peak rate {s['learning_rate']:g}, {s['schedule']} schedule with {s['warmup_steps']} warm-up steps, ")
        + f"{metrics['gradient_steps']} gradient steps in {metrics['seconds']:.0f} s on {metrics['device']}; loss: MSE of energy per atom "
        f"+ MSE of force components (weights {s['energy_weight']:g} : {s['force_weight']:g}).",
    ]
    if r:
        lines.append(
            f"- Reptile: k = {r['inner_steps']} inner {r['inner_optimizer']} steps (rate {r['inner_lr']:g}, state {r['inner_state']}), "
            f"epsilon {r['outer_lr']:g} -> {r['outer_lr_end']:g} ({r['outer_schedule']}), {r['meta_batch_size']} level(s) per outer step, "
            f"{r['outer_steps']} outer steps."
        )
    lines += [
        "", "## Validation errors", "", "The pre-trained model itself, on each level's validation frames:", "",
        "| level | frames | energy RMSE (meV/atom) | force RMSE (meV/Å) |", "| --- | ---: | ---: | ---: |",
    ]
    for level, m in metrics["validation"].items():
        if level != "all":
            lines.append(f"| `{level}` | {m['n_configurations']} | {m['energy_rmse_meV_per_atom']:.1f} | {m['force_rmse_meV_per_A']:.0f} |")
    lines += [
        "", f"## Fine-tuning to a level and molecules never seen", "",
        f"`{info['target_level']}` on the held-out molecules (`bench/foundation.py`; {info['n_test']} fixed test frames, "
        "one validation frame per molecule, the `metamlip-train --init` protocol; scratch: the from-scratch protocol). "
        "Force RMSE (meV/Å), mean over seeds (their number in brackets); every start of the experiment:", "",
    ]
    sizes = sorted({int(row["n_train"]) for row in table})
    cells = {(row["start"], int(row["n_train"])): row for row in table}
    lines += ["| start | " + " | ".join(f"N = {n}" for n in sizes) + " |", "| --- |" + " ---: |" * len(sizes)]
    for start in dict.fromkeys(row["start"] for row in table):
        label = f"**{name}** (this model)" if start == variant else start
        values = [cells.get((start, n)) for n in sizes]
        lines.append(f"| {label} | " + " | ".join(f"{v['force_rmse_meV_per_A']} ({v['n_seeds']})" if v else "–" for v in values) + " |")
    mine = [cells.get((variant, n)) for n in sizes]
    for key, against in (("force_ratio_to_scratch", "HIP-NN from scratch"), ("force_ratio_to_hcno", "fine-tuned from `hipnn-meta-hcno`")):
        lines.append(f"| this model / {against} | " + " | ".join(f"{v[key]}" if v and v[key] != "" else "–" for v in mine) + " |")
    if scans:
        lines += ["", "## Energy-surface scans of held-out molecules", "", f"`bench/foundation_scan.py` (variant `{variant}` = this model):", "", scans.strip()]
    return "\n".join(lines) + "\n"


def ship(work: Path, results: Path, variant: str, name: str = SHIP_NAME, make_default: bool = False, limit_mb: float = 20.0) -> Path:
    """Copy WORK/pretrain/VARIANT/model.ckpt to python/metamlip/pretrained/NAME.ckpt with its
    model card NAME.md; make_default points `pretrained:default` at it."""
    source = work / "pretrain" / variant / "model.ckpt"
    if not source.exists():
        raise FileNotFoundError(f"{source}: no pre-trained model of variant {variant!r} (run `pretrain` first)")
    if source.stat().st_size > limit_mb * 1e6:
        raise ValueError(f"{source}: {source.stat().st_size / 1e6:.1f} MB, over the {limit_mb} MB limit of a shipped model")
    metrics = json.loads((work / "pretrain" / variant / "metrics.json").read_text())
    info = json.loads((work / "prepared.json").read_text())
    with open(results / "foundation.csv", newline="") as handle:
        table = list(csv.DictReader(handle))
    potential = load_potential(source)
    a = potential.architecture
    order = potential.hipnn.tensor_order
    metrics["model_name"] = f"HIP-NN-TS (tensor sensitivities, l = {order})" if order else "HIP-NN"
    metrics["architecture"] = (f"{a['n_features']} features, {a['n_sensitivities']} sensitivities, {a['n_interactions']} interactions, "
                               f"{a['n_atom_layers']} atom layers per block, cutoff {a['cutoff']} Å, {potential.hipnn.n_heads} energy head(s), ")
    weights = sum(p.numel() for p in potential.parameters())
    shutil.copyfile(source, PRETRAINED_DIR / f"{name}.ckpt")
    scans = results / "foundation_scan.md"
    card = model_card(name, variant, metrics, info, table, weights, make_default, scans.read_text() if scans.exists() else None)
    (PRETRAINED_DIR / f"{name}.md").write_text(card)
    if make_default:
        init = PRETRAINED_DIR / "__init__.py"
        text = init.read_text()
        old = next(line for line in text.splitlines() if line.startswith("ALIASES = "))
        init.write_text(text.replace(old, f'ALIASES = {{DEFAULT: "{name}"}}  # alias -> shipped model; only the target changes when a better one ships'))
    return PRETRAINED_DIR / f"{name}.ckpt"


# --- command line ---------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prepare", help="build the pre-training set and the target split")
    p.add_argument("--work", default="runs/foundation")
    p.add_argument("--foundation", default=str(fd.FOUNDATION))
    p.add_argument("--no-bundled", action="store_true", help="leave the bundled 7-level set out")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--max-frames", type=int, default=None, help="at most this many frames per source level (quick runs)")
    p.add_argument("--target-only", action="store_true", help="re-read only the target level's labels (the split of what is labelled now)")
    p = sub.add_parser("pretrain", help="one pre-training variant")
    p.add_argument("--work", default="runs/foundation")
    p.add_argument("--variant", choices=list(VARIANTS), required=True)
    p.add_argument("--budget-s", type=float, default=None, help="seconds for this pre-training, data loading included")
    p.add_argument("--deadline", type=float, default=None, help="or: finish by this time (seconds since the epoch)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--max-steps", type=int, default=None, help="at most this many gradient steps")
    p.add_argument("--resume", action="store_true", help="exactly --max-steps steps; a stopped run is continued by the same command")
    p = sub.add_parser("finetune", help="one (start, N, seed) run at the target level")
    p.add_argument("--work", default="runs/foundation")
    p.add_argument("--start", required=True, help="scratch, scratch-ts2, a shipped model (hipnn-meta-hcno, hipnn-meta-hcno-ts2) or a variant")
    p.add_argument("--n", type=int, required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--finetune-steps", type=int, default=None, help="finetune.max_steps (default: metamlip-train's)")
    p.add_argument("--scratch-steps", type=int, default=None, help="training.max_steps for scratch (default: metamlip-train's)")
    p = sub.add_parser("run", help="the whole pipeline within --budget-s")
    p.add_argument("--work", default="runs/foundation")
    p.add_argument("--results", default=str(RESULTS))
    p.add_argument("--foundation", default=str(fd.FOUNDATION))
    p.add_argument("--no-bundled", action="store_true")
    p.add_argument("--max-frames", type=int, default=None)
    p.add_argument("--device", default="cpu", help="where pre-training runs (fine-tunes run on CPU)")
    p.add_argument("--budget-s", type=float, default=3600, help="seconds for everything, report and archive included")
    p.add_argument("--deadline", type=float, default=None, help="finish by this time (seconds since the epoch; instead of --budget-s)")
    p.add_argument("--finetune-reserve-s", type=float, default=150, help="seconds kept for fine-tuning after pre-training")
    p.add_argument("--pretrain-budget-s", type=float, default=None, help="at most this many seconds per pre-training (default: all until the reserve)")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes at once (one thread each)")
    p.add_argument("--variants", nargs="+", default=GPU_VARIANTS, choices=list(VARIANTS))
    p.add_argument("--sizes", nargs="+", type=int, default=list(SIZES))
    p.add_argument("--seeds", nargs="+", type=int, default=[0])
    p.add_argument("--pretrain-max-steps", type=int, default=None)
    p.add_argument("--finetune-steps", type=int, default=None)
    p.add_argument("--scratch-steps", type=int, default=None)
    p.add_argument("--pack", default=None, metavar="OUT", help="then write OUT/foundation.tar.gz (see pack)")
    p = sub.add_parser("report", help="CSV, PNG and table from the finished runs")
    p.add_argument("--work", default="runs/foundation")
    p.add_argument("--results", default=str(RESULTS))
    p = sub.add_parser("pack", help="results and pre-trained checkpoints as OUT/foundation.tar.gz")
    p.add_argument("--work", default="runs/foundation")
    p.add_argument("--results", default=str(RESULTS))
    p.add_argument("--out", required=True)
    p = sub.add_parser("ship", help=f"ship a variant's pre-trained model as pretrained:{SHIP_NAME} with its model card")
    p.add_argument("--work", default="runs/foundation")
    p.add_argument("--results", default=str(RESULTS))
    p.add_argument("--variant", choices=list(VARIANTS), required=True)
    p.add_argument("--name", default=SHIP_NAME)
    p.add_argument("--make-default", action="store_true", help="point pretrained:default at it")
    args = parser.parse_args(argv)
    work = Path(args.work)
    if args.command == "prepare" and args.target_only:
        info = fd.prepare_target(work, Path(args.foundation))
        print(json.dumps({k: info[k] for k in ("heldout_with_labels", "n_test", "n_val", "n_pool")}))
    elif args.command == "prepare":
        info = fd.prepare(work, Path(args.foundation), None if args.no_bundled else fd.BUNDLED, workers=args.workers, max_frames_per_level=args.max_frames)
        print(json.dumps({k: v for k, v in info.items() if k != "banned_systems"}, indent=1))
    elif args.command == "pretrain":
        if (args.budget_s is None) == (args.deadline is None):
            parser.error("pretrain needs one of --budget-s and --deadline")
        if args.resume and not args.max_steps:
            parser.error("pretrain --resume needs --max-steps")
        metrics = pretrain(work, args.variant, args.budget_s or 0.0, args.device, args.max_steps, args.deadline, args.resume)
        print(json.dumps({k: metrics[k] for k in ("variant", "gradient_steps", "truncated", "seconds", "finished") if k in metrics}))
    elif args.command == "finetune":
        overrides: dict[str, dict[str, Any]] = {}
        if args.finetune_steps is not None:
            overrides["finetune"] = {"max_steps": args.finetune_steps}
        if args.scratch_steps is not None and args.start in SCRATCH:
            overrides["training"] = {"max_steps": args.scratch_steps, "patience_steps": min(args.scratch_steps, 3000)}
        print(json.dumps(finetune(work, args.start, args.n, args.seed, args.device, overrides)))
    elif args.command == "run":
        run(args)
    elif args.command == "report":
        report(work, Path(args.results))
    elif args.command == "ship":
        print(ship(work, Path(args.results), args.variant, args.name, args.make_default))
    elif args.command == "pack":
        print(pack(work, Path(args.results), Path(args.out)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
