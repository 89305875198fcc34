"""Parity plots and learning curves as PNG (matplotlib, no display needed)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from metamlip.atomic import atomic_path  # noqa: E402
from metamlip.train.metrics import Predictions  # noqa: E402


def save_png(fig: plt.Figure, path: str | Path, title: str = "") -> None:
    """Lay out `fig`, write it atomically as a PNG at `path` and close it."""
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)


def _diagonal(ax, ref: np.ndarray, pred: np.ndarray, label: str, unit: str) -> None:
    """The y = x line, the RMSE in the panel title, axis labels."""
    if ref.size:
        low, high = float(min(ref.min(), pred.min())), float(max(ref.max(), pred.max()))
        ax.plot([low, high], [low, high], "k--", lw=0.8)
        rmse = float(np.sqrt(np.mean((pred - ref) ** 2)))
        ax.set_title(f"{label}: RMSE {rmse * 1000:.1f} m{unit}")
    ax.set_xlabel(f"reference {label.lower()} ({unit})")
    ax.set_ylabel(f"predicted {label.lower()} ({unit})")


def relative_energies(pred: Predictions) -> tuple[np.ndarray, np.ndarray]:
    """Energy per atom (eV/atom), reference and predicted, each minus the mean reference energy
    per atom of its (level, molecule) group: what varies within a molecule, not between molecules
    (absolute energies put every molecule at one point). Errors are unchanged by the shift."""
    e_ref = pred.energy_ref / pred.n_atoms
    e_pred = pred.energy_pred / pred.n_atoms
    molecules = pred.molecules or [""] * len(pred.levels)
    groups = np.array([f"{level}\0{molecule}" for level, molecule in zip(pred.levels, molecules)])
    shift = np.zeros_like(e_ref)
    for group in np.unique(groups):
        members = groups == group
        shift[members] = e_ref[members].mean()
    return e_ref - shift, e_pred - shift


def parity_plot(pred: Predictions, path: str | Path, title: str = "") -> None:
    """Energy per atom relative to each molecule's mean, and force components; one colour per
    level. The title names the levels present in `pred`."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.5))
    levels = list(dict.fromkeys(pred.levels))
    e_ref, e_pred = relative_energies(pred)
    config_levels = np.array(pred.levels)
    for level in levels:
        chosen = config_levels == level
        forces = pred.force_levels == level
        axes[0].scatter(e_ref[chosen], e_pred[chosen], s=4, alpha=0.5, label=level)
        axes[1].scatter(pred.force_ref[forces].ravel(), pred.force_pred[forces].ravel(), s=4, alpha=0.5, label=level)
    _diagonal(axes[0], e_ref, e_pred, "Energy/atom − molecule mean", "eV/atom")
    _diagonal(axes[1], pred.force_ref.ravel(), pred.force_pred.ravel(), "Force", "eV/Å")
    if len(levels) > 1:
        axes[0].legend(markerscale=3)
    heading = f"{title}: " if title else ""
    save_png(fig, path, f"{heading}{'level' if len(levels) == 1 else 'levels'} {', '.join(levels)}")


def loss_curve_plot(rows: list[dict], path: str | Path) -> None:
    """Training and validation loss per epoch (log scale)."""
    fig, ax = plt.subplots(figsize=(6, 4))
    epochs = [r["epoch"] for r in rows]
    ax.semilogy(epochs, [r["train_loss"] for r in rows], label="train")
    ax.semilogy(epochs, [r["val_loss"] for r in rows], label="validation")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.legend()
    save_png(fig, path)


def learning_curve_plot(summary: list[dict], path: str | Path, title: str = "") -> None:
    """Force and energy RMSE vs training-set size (log-log), one line per strategy, error
    bars = standard deviation over seeds. summary: rows of metamlip.meta.learning_curve.summarise."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    strategies = list(dict.fromkeys(row["strategy"] for row in summary))
    panels = (("force_rmse_meV_per_A", "force RMSE (meV/Å)"), ("energy_rmse_meV_per_atom", "energy RMSE (meV/atom)"))
    for ax, (key, label) in zip(axes, panels):
        for strategy in strategies:
            rows = sorted((r for r in summary if r["strategy"] == strategy), key=lambda r: r["n_train"])
            ax.errorbar(
                [r["n_train"] for r in rows],
                [r[key] for r in rows],
                yerr=[r[key + "_std"] for r in rows],
                marker="o",
                capsize=3,
                label=strategy,
            )
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("target training configurations N")
        ax.set_ylabel(label)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend()
    save_png(fig, path, title)
