"""What a run reports besides metrics.json: metrics.csv, and the comparison of two runs on the
same test set (`metamlip-train --compare-scratch`: fine-tuned vs from scratch) as a printed
table, comparison.csv and comparison.png. Energies in meV/atom, forces in meV/Å."""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.ticker import MaxNLocator

from metamlip.atomic import atomic_path
from metamlip.train.metrics import Predictions, error_metrics
from metamlip.train.plots import plt, relative_energies, save_png

ERROR_KEYS = ("energy_rmse_meV_per_atom", "energy_mae_meV_per_atom", "force_rmse_meV_per_A", "force_mae_meV_per_A")
METRICS_COLUMNS = ("split", "level", "n_configurations", *ERROR_KEYS)
COMPARISON_COLUMNS = ("model", "start", "level", "n_train", "n_test", *ERROR_KEYS, "best_epoch", "epochs", "steps", "train_seconds")


def _write_csv(path: Path, columns: tuple[str, ...], rows: list[dict[str, Any]]) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)


def write_metrics_csv(metrics: dict[str, Any], path: str | Path) -> None:
    """One row per (split, level) of a run's metrics (validation, test; level "all" included)."""
    rows = [
        {"split": split, "level": level, **values}
        for split in ("validation", "test")
        for level, values in metrics.get(split, {}).items()
    ]
    _write_csv(Path(path), METRICS_COLUMNS, rows)


@dataclass
class RunResult:
    """One trained model evaluated on the shared test set."""

    name: str  # "fine-tuned", "scratch"
    start: str  # the checkpoint it started from, or "scratch"
    predictions: Predictions  # on the test set
    log: list[dict[str, float]]  # train_log.csv rows: epoch, step, val_force_mse (eV/Å)^2, seconds, ...
    n_train: int
    best_epoch: int

    def row(self) -> dict[str, Any]:
        errors = error_metrics(self.predictions)["all"]
        return {
            "model": self.name,
            "start": self.start,
            "level": ",".join(dict.fromkeys(self.predictions.levels)),
            "n_train": self.n_train,
            "n_test": errors["n_configurations"],
            **{k: errors[k] for k in ERROR_KEYS},
            "best_epoch": self.best_epoch,
            "epochs": len(self.log),
            "steps": int(self.log[-1]["step"]) if self.log else 0,
            "train_seconds": float(self.log[-1]["seconds"]) if self.log else 0.0,
        }


def format_comparison(rows: list[dict[str, Any]]) -> str:
    """A fixed-width table of the comparison rows, then the ratios of the first row to the second."""
    header = f"{'model':<11} {'N':>5} {'test':>5} {'E RMSE':>8} {'E MAE':>8} {'F RMSE':>8} {'F MAE':>8} {'steps':>6} {'s':>6}"
    lines = [f"test set, level {rows[0]['level']}: energy in meV/atom, forces in meV/A", header]
    for r in rows:
        lines.append(
            f"{r['model']:<11} {r['n_train']:>5} {r['n_test']:>5} {r['energy_rmse_meV_per_atom']:>8.2f} "
            f"{r['energy_mae_meV_per_atom']:>8.2f} {r['force_rmse_meV_per_A']:>8.1f} {r['force_mae_meV_per_A']:>8.1f} "
            f"{r['steps']:>6} {r['train_seconds']:>6.0f}"
        )
    if len(rows) == 2:
        first, second = rows

        def ratio(key: str) -> str:
            value = first[key] / second[key] if second[key] else math.nan
            return f"{value:.2f}x"

        lines.append(
            f"{first['model']} / {second['model']}: force RMSE {ratio('force_rmse_meV_per_A')}, "
            f"energy RMSE {ratio('energy_rmse_meV_per_atom')}"
        )
    return "\n".join(lines)


def comparison_plot(results: list[RunResult], path: str | Path, title: str = "") -> None:
    """Test-set parity of every run (energy per atom relative to each molecule's mean, force
    components; RMSE in the legends) and validation force RMSE per optimiser step."""
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.6))
    parity: list[list[np.ndarray]] = [[], []]  # every plotted value, per parity panel
    for rank, result in enumerate(results):
        pred = result.predictions
        errors = error_metrics(pred)["all"]
        panels = (
            (relative_energies(pred), f"RMSE {errors['energy_rmse_meV_per_atom']:.2f} meV/atom"),
            ((pred.force_ref.ravel(), pred.force_pred.ravel()), f"RMSE {errors['force_rmse_meV_per_A']:.0f} meV/Å"),
        )
        for k, ((ref, predicted), rmse) in enumerate(panels):
            # the first run (fine-tuned) on top: it is the tighter cloud
            axes[k].scatter(ref, predicted, s=4, alpha=0.4, label=f"{result.name}: {rmse}", zorder=len(results) - rank)
            parity[k] += [ref, predicted]
        val_force = [math.sqrt(row["val_force_mse"]) * 1000 if row.get("val_force_mse", -1.0) >= 0 else math.nan for row in result.log]
        axes[2].semilogy([row["step"] for row in result.log], val_force, label=result.name)
    for ax, values, (quantity, unit) in zip(axes, parity, (("energy/atom − molecule mean", "eV/atom"), ("force component", "eV/Å"))):
        values = np.concatenate(values) if values else np.zeros(0)
        if values.size:
            ax.plot([values.min(), values.max()], [values.min(), values.max()], "k--", lw=0.8)
        ax.xaxis.set_major_locator(MaxNLocator(5))
        ax.set_xlabel(f"reference {quantity} ({unit})")
        ax.set_ylabel(f"predicted {quantity} ({unit})")
        ax.legend(markerscale=3, fontsize=8)
    axes[0].set_title("test set: energy")
    axes[1].set_title("test set: forces")
    axes[2].set_title("learning: validation forces")
    axes[2].set_xlabel("optimiser step")
    axes[2].set_ylabel("validation force RMSE (meV/Å)")
    axes[2].grid(True, which="both", alpha=0.3)
    axes[2].legend(fontsize=8)
    save_png(fig, path, title)


def write_comparison(results: list[RunResult], out_dir: str | Path, title: str = "") -> str:
    """comparison.csv and comparison.png in out_dir; returns the printed table."""
    out_dir = Path(out_dir)
    rows = [r.row() for r in results]
    _write_csv(out_dir / "comparison.csv", COMPARISON_COLUMNS, rows)
    comparison_plot(results, out_dir / "comparison.png", title)
    return format_comparison(rows)
