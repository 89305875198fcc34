"""The paper's experiment in one command: every strategy at every target training-set size.

`metamlip-eval learning-curve CONFIG.yaml`. The config is a training config (README) plus
`sizes` (ints or "all"), `seeds` and `strategies`. For each strategy but scratch the model is
pre-trained once on the source levels (without the target's validation and test geometries)
into OUT/pretrain/STRATEGY; then every (strategy, size, seed) is trained on the target level
into OUT/runs/STRATEGY/nSIZE-seedSEED and scored on one shared test set. The training set of
size N is a molecule-balanced prefix of the seed's shuffle of the target pool, so sizes are
nested; the seed also sets the weights of scratch runs and the batch order. Finished runs are
skipped on a rerun. Writes results.csv, results.json, results.md and learning_curve.png.
"""

from __future__ import annotations

import copy
import csv
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from metamlip.atomic import atomic_path, clean_stale_temporaries
from metamlip.data import validate_configuration
from metamlip.data.batching import GraphSet
from metamlip.meta import strategies
from metamlip.meta.tasks import balanced_order, source_levels, split_sources, split_target
from metamlip.nn.checkpoint import load_potential
from metamlip.train.config import STRATEGIES, Config, ConfigError, config_from_dict, load_yaml
from metamlip.train.device import torch_device
from metamlip.train.metrics import error_metrics, predict
from metamlip.train.plots import learning_curve_plot
from metamlip.train.run import read_data_files, select_level
from metamlip.train.trainer import Trainer

RESULT_COLUMNS = [
    "strategy", "n_train", "seed", "energy_rmse_meV_per_atom", "energy_mae_meV_per_atom",
    "force_rmse_meV_per_A", "force_mae_meV_per_A", "best_epoch", "seconds",
]


@dataclass
class CurveConfig:
    config: Config
    sizes: list[int | str]
    seeds: list[int]
    strategies: list[str]


def load_curve_config(path: str | Path) -> CurveConfig:
    values = load_yaml(path)
    sizes = values.pop("sizes", [10, 25, 50, 100, "all"])
    seeds = values.pop("seeds", [0, 1, 2])
    chosen = values.pop("strategies", list(STRATEGIES))
    try:
        config = config_from_dict(values)
    except ConfigError as error:
        raise ConfigError(f"{path}: {error}") from error
    unknown = [s for s in chosen if s not in STRATEGIES]
    if unknown:
        raise ConfigError(f"{path}: unknown strateg(ies) {', '.join(unknown)} (known: {', '.join(STRATEGIES)})")
    for size in sizes:
        if size != "all" and (not isinstance(size, int) or size < 1):
            raise ConfigError(f"{path}: sizes must be positive integers or 'all', got {size!r}")
    if not seeds or not sizes or not chosen:
        raise ConfigError(f"{path}: sizes, seeds and strategies must not be empty")
    return CurveConfig(config, list(sizes), [int(s) for s in seeds], list(chosen))


def _write_json(path: Path, values: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(values, indent=2) + "\n")


class LearningCurve:
    def __init__(self, curve: CurveConfig, out: str | Path | None = None, progress: bool = True) -> None:
        self.curve = curve
        self.config = curve.config
        self.out = Path(out or self.config.out)
        self.progress = progress
        self.config.training.progress = self.config.pretrain.progress = False

    def prepare(self) -> None:
        c = self.config
        dataset = read_data_files(c.data.files)
        _, c.data.level = select_level(dataset, c.data.level)
        self.target = split_target(dataset, c.data)
        self.species = sorted(c.model.species) if c.model.species else dataset.elements()
        for config in dataset:
            validate_configuration(config, self.species)
        needs_sources = any(s != "scratch" for s in self.curve.strategies)
        exclude = (self.target.val + self.target.test) if c.data.exclude_target_geometries else None
        self.sources = split_sources(dataset, source_levels(dataset, c.data), c.data, exclude) if needs_sources else {}
        cutoff = c.model.cutoff
        self.val = GraphSet(self.target.val.configurations, cutoff)
        self.test = GraphSet(self.target.test.configurations, cutoff)
        n_pool = len(self.target.pool)
        self.sizes = [n_pool if s == "all" else int(s) for s in self.curve.sizes]
        too_big = [s for s in self.sizes if s > n_pool]
        if too_big:
            raise ConfigError(f"sizes {too_big} exceed the {n_pool} target configurations left after validation and test")
        self.sizes = sorted(set(self.sizes))

    def pretrained_path(self, strategy: str) -> Path:
        return self.out / "pretrain" / strategy / "model.ckpt"

    def pretrain(self, strategy: str) -> None:
        directory = self.out / "pretrain" / strategy
        if (directory / "metrics.json").exists():
            return
        config = copy.deepcopy(self.config)
        config.strategy = strategy
        _, metrics = strategies.pretrain(config, self.sources, self.species, directory, resume=True)
        _write_json(directory / "metrics.json", metrics)

    def run_dir(self, strategy: str, n_train: int, seed: int) -> Path:
        return self.out / "runs" / strategy / f"n{n_train}-seed{seed}"

    def train_one(self, strategy: str, n_train: int, seed: int) -> dict[str, Any]:
        directory = self.run_dir(strategy, n_train, seed)
        done = directory / "metrics.json"
        if done.exists():
            return json.loads(done.read_text())
        start = time.perf_counter()
        config = copy.deepcopy(self.config)
        config.strategy = strategy
        config.training.seed = seed
        config.data.n_train = n_train
        indices = balanced_order(self.target.pool, seed)[:n_train]
        train_data = self.target.pool.subset(indices)
        train = GraphSet(train_data.configurations, self.config.model.cutoff)
        if strategy == "scratch":
            potential = strategies.fresh_potential(config, train_data, [self.target.level], self.species)
        else:
            potential = load_potential(self.pretrained_path(strategy)).double()
            potential = strategies.add_target_level(potential, self.target.level, train_data, config.finetune)
            config.model = type(config.model)(**strategies.architecture_of(potential))
        settings = config.training
        potential = potential.to(getattr(torch, settings.dtype)).to(settings.device)
        potential.hipnn.set_implementation(settings.implementation)
        trainer = Trainer(potential, train, self.val, settings, directory, config.to_dict())
        potential = trainer.fit(resume=True)
        test = error_metrics(predict(potential, self.test, level=self.target.level))[self.target.level]
        row = {
            "strategy": strategy,
            "n_train": n_train,
            "seed": seed,
            **{k: test[k] for k in RESULT_COLUMNS[3:7]},
            "best_epoch": trainer.state.best_epoch,
            "seconds": time.perf_counter() - start,
        }
        _write_json(done, row)
        (directory / "last.ckpt").unlink(missing_ok=True)
        return row

    def jobs(self) -> list[tuple]:
        jobs: list[tuple] = [("pretrain", s) for s in self.curve.strategies if s != "scratch"]
        for n_train in self.sizes:
            for seed in self.curve.seeds:
                for strategy in self.curve.strategies:
                    jobs.append(("train", strategy, n_train, seed))
        return jobs

    def run(self) -> list[dict[str, Any]]:
        torch_device(self.config.training.device, "training.device")
        torch_device(self.config.pretrain.device, "pretrain.device")
        clean_stale_temporaries(self.out)
        self.prepare()
        rows = []
        jobs = self.jobs()
        bar = tqdm(jobs, desc="learning curve", disable=not self.progress, unit="run")
        for job in bar:
            if job[0] == "pretrain":
                bar.set_postfix_str(f"pre-train {job[1]}")
                self.pretrain(job[1])
            else:
                bar.set_postfix_str(f"{job[1]} N={job[2]} seed={job[3]}")
                rows.append(self.train_one(*job[1:]))
        bar.close()
        self.write_results(rows)
        return rows

    def write_results(self, rows: list[dict[str, Any]]) -> None:
        with atomic_path(self.out / "results.csv") as tmp:
            with open(tmp, "w", newline="") as handle:
                writer = csv.DictWriter(handle, fieldnames=RESULT_COLUMNS)
                writer.writeheader()
                writer.writerows(rows)
        summary = summarise(rows)
        c = self.config
        _write_json(
            self.out / "results.json",
            {
                "target_level": c.data.level,
                "source_levels": list(self.sources),
                "n_test": len(self.test),
                "n_val": len(self.val),
                "sizes": self.sizes,
                "seeds": self.curve.seeds,
                "strategies": self.curve.strategies,
                "runs": rows,
                "summary": summary,
                "config": c.to_dict(),
            },
        )
        with atomic_path(self.out / "results.md") as tmp:
            tmp.write_text(markdown_table(summary, self.curve.strategies, self.sizes, c.data.level, len(self.test)))
        learning_curve_plot(summary, self.out / "learning_curve.png", title=f"target {c.data.level}")


def summarise(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mean and standard deviation over seeds per (strategy, n_train)."""
    groups: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["strategy"], int(row["n_train"])), []).append(row)
    out = []
    for (strategy, n_train), group in groups.items():
        entry: dict[str, Any] = {"strategy": strategy, "n_train": n_train, "n_seeds": len(group)}
        for key in ("energy_rmse_meV_per_atom", "force_rmse_meV_per_A"):
            values = np.array([g[key] for g in group], dtype=float)
            entry[key] = float(values.mean())
            entry[key + "_std"] = float(values.std(ddof=1)) if len(values) > 1 else 0.0
        out.append(entry)
    return out


def markdown_table(summary: list[dict[str, Any]], order: list[str], sizes: list[int], level: str, n_test: int) -> str:
    """Force and energy RMSE (mean ± std over seeds) per strategy (rows) and N (columns)."""
    cell = {(s["strategy"], s["n_train"]): s for s in summary}
    lines = [f"Target level `{level}`, test set of {n_test} configurations; mean ± std over seeds.", ""]
    for key, title in (("force_rmse_meV_per_A", "Force RMSE (meV/Å)"), ("energy_rmse_meV_per_atom", "Energy RMSE (meV/atom)")):
        lines += [f"**{title}**", "", "| strategy | " + " | ".join(f"N={n}" for n in sizes) + " |"]
        lines.append("| --- |" + " --- |" * len(sizes))
        for strategy in order:
            values = []
            for n in sizes:
                entry = cell.get((strategy, n))
                values.append("–" if entry is None else f"{entry[key]:.1f} ± {entry[key + '_std']:.1f}")
            lines.append(f"| {strategy} | " + " | ".join(values) + " |")
        lines.append("")
    return "\n".join(lines)


def run_learning_curve(path: str | Path, out: str | Path | None = None, progress: bool = True) -> Path:
    """Run (or finish) the experiment of the config at `path`; returns the output directory."""
    curve = LearningCurve(load_curve_config(path), out, progress)
    curve.run()
    return curve.out
