"""Fine-tuning (and scratch) protocol study for small N on the leave-out splits of bench/accuracy.py.

    OMP_NUM_THREADS=1 nice -n 10 python bench/finetune_protocol.py --split level --n 50 --only base lr1e-3
    python bench/finetune_protocol.py --plot            # the PNG from the CSV, no training

Each variant is {section: {key: value}} on top of the defaults of `metamlip-train --init`
(method finetune) or of `metamlip-train` (method scratch), trained on the same frames as the
peer benchmark (bench/accuracy.py: level split = mp2/cc-pvdz, never seen by the start;
molecule split = acetamide, left out of the start's pre-training). Every run appends one row to
bench/results/finetune_protocol.csv (test force and energy RMSE, steps, best step, seconds, the
settings as JSON, and the defaults they were measured on); bench/results/finetune_protocol.png
shows force RMSE per variant and split. Runs are cached in --work (bench/protocol.py).
"""

from __future__ import annotations

import argparse
import csv
import json
import multiprocessing
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import accuracy  # noqa: E402
import protocol  # noqa: E402

RESULTS = accuracy.ROOT / "bench" / "results"
COLUMNS = ["split", "method", "n_train", "seed", "variant", "settings", "force_rmse_meV_per_A", "energy_rmse_meV_per_atom", "steps", "best_step", "train_seconds", "defaults"]

# name -> (method, overrides). "base" = the defaults being measured.
VARIANTS: dict[str, tuple[str, dict]] = {
    "base": ("finetune", {}),  # the defaults of the time (column `defaults`)
    "heads0": ("finetune", {"finetune": {"head_steps": 0}}),  # the defaults before head_steps
    "zero-shot": ("finetune", {"finetune": {"head_steps": 0, "max_steps": 1}}),  # the start with its refitted self energies only
    "lr1e-3": ("finetune", {"finetune": {"head_steps": 0, "learning_rate": 0.001}}),
    "lr1e-2": ("finetune", {"finetune": {"head_steps": 0, "learning_rate": 0.01}}),
    "lr5e-3": ("finetune", {"finetune": {"head_steps": 0, "learning_rate": 0.005}}),
    "lr1e-2-1500": ("finetune", {"finetune": {"head_steps": 0, "learning_rate": 0.01, "max_steps": 1500}}),
    "lr1e-2-6000": ("finetune", {"finetune": {"head_steps": 0, "learning_rate": 0.01, "max_steps": 6000}}),
    "steps1500": ("finetune", {"finetune": {"head_steps": 0, "max_steps": 1500}}),
    "steps1000": ("finetune", {"finetune": {"head_steps": 0, "max_steps": 1000}}),
    "steps6000": ("finetune", {"finetune": {"head_steps": 0, "max_steps": 6000}}),
    "warmup0": ("finetune", {"training": {"warmup_steps": 0}, "finetune": {"head_steps": 0}}),
    "warmup1000": ("finetune", {"training": {"warmup_steps": 1000}, "finetune": {"head_steps": 0}}),
    "ema-off": ("finetune", {"training": {"ema_decay": None}, "finetune": {"head_steps": 0}}),
    "ema0.999": ("finetune", {"training": {"ema_decay": 0.999}, "finetune": {"head_steps": 0}}),
    "se-data": ("finetune", {"finetune": {"head_steps": 0, "self_energies": "data"}}),
    "heads-only": ("finetune", {"finetune": {"freeze_body": True}}),
    "heads-only-lr1e-2": ("finetune", {"finetune": {"freeze_body": True, "learning_rate": 1e-2}}),
    "heads500": ("finetune", {"finetune": {"head_steps": 500}}),
    "heads500-1500": ("finetune", {"finetune": {"head_steps": 500, "max_steps": 1500}}),
    "heads500-lr1e-2": ("finetune", {"finetune": {"head_steps": 500, "learning_rate": 1e-2}}),
    "heads1000": ("finetune", {"finetune": {"head_steps": 1000}}),
    "l2sp1e-2": ("finetune", {"finetune": {"head_steps": 0, "l2sp": 0.01}}),
    "l2sp1e-1": ("finetune", {"finetune": {"head_steps": 0, "l2sp": 0.1}}),
    "fw10": ("finetune", {"training": {"force_weight": 10.0}, "finetune": {"head_steps": 0}}),
    "ew10": ("finetune", {"training": {"energy_weight": 10.0}, "finetune": {"head_steps": 0}}),
    "batch2": ("finetune", {"training": {"batch_size": 2}, "finetune": {"head_steps": 0}}),
    "batch8": ("finetune", {"training": {"batch_size": 8}, "finetune": {"head_steps": 0}}),
    "scratch": ("scratch", {}),
    "scratch-fw10": ("scratch", {"training": {"force_weight": 10.0}}),
    "scratch-ew10": ("scratch", {"training": {"energy_weight": 10.0}}),
    "scratch-batch2": ("scratch", {"training": {"batch_size": 2}}),
    "scratch-batch8": ("scratch", {"training": {"batch_size": 8}}),
    "scratch-seed1": ("scratch", {"training": {"seed": 1}}),
    "scratch-steps1500": ("scratch", {"training": {"max_steps": 1500}}),
    "scratch-steps3000": ("scratch", {"training": {"max_steps": 3000}}),
}


def defaults_label() -> str:
    """The fine-tuning defaults the rows were measured against (they move as the study lands)."""
    from metamlip.train.config import FinetuneConfig

    f = FinetuneConfig()
    return f"lr {f.learning_rate:g}, steps {f.max_steps}, l2sp {f.l2sp:g}, head_steps {f.head_steps}"


def latest_rows(csv_path: Path) -> dict[tuple, dict]:
    """The last row of each (split, N, variant, seed) in the CSV."""
    with open(csv_path, newline="") as handle:
        return {(r["split"], int(r["n_train"]), r["variant"], r["seed"]): r for r in csv.DictReader(handle)}


def table(csv_path: Path) -> str:
    """Markdown: per variant, test force / energy RMSE on each split and N (mean over seeds, seeds in brackets)."""
    import numpy as np

    latest = latest_rows(csv_path)
    panels = sorted({k[:2] for k in latest}, key=lambda p: (p[0] != "level", p[1]))
    names = [v for v in VARIANTS if any(k[2] == v for k in latest)]
    lines = ["| variant | settings | " + " | ".join(f"{s} N={n}: force / energy" for s, n in panels) + " |",
             "| --- | --- |" + " ---: |" * len(panels)]
    for name in names:
        cells = []
        for split, n in panels:
            rows = [r for k, r in latest.items() if k[:3] == (split, n, name)]
            if not rows:
                cells.append("")
                continue
            force = np.mean([float(r["force_rmse_meV_per_A"]) for r in rows])
            energy = np.mean([float(r["energy_rmse_meV_per_atom"]) for r in rows])
            cells.append(f"{force:.1f} / {energy:.1f}" + (f" ({len(rows)} seeds)" if len(rows) > 1 else ""))
        lines.append(f"| {name} | `{json.dumps(VARIANTS[name][1])}` ({VARIANTS[name][0]}) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(csv_path: Path, png_path: Path) -> None:
    """Force RMSE per variant (mean over seeds): one row of panels per split, one column per N;
    grey bars are training from scratch, the dashed line the defaults before head_steps (heads0)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    latest = latest_rows(csv_path)
    splits = sorted({k[0] for k in latest}, key=lambda name: name != "level")
    sizes = sorted({k[1] for k in latest})
    figure, axes = plt.subplots(len(splits), len(sizes), figsize=(5 * len(sizes), 6 * len(splits)), squeeze=False)
    for row, split in enumerate(splits):
        for col, n in enumerate(sizes):
            ax = axes[row][col]
            names = sorted({k[2] for k in latest if k[:2] == (split, n)})
            values = {v: np.mean([float(r["force_rmse_meV_per_A"]) for k, r in latest.items() if k[:3] == (split, n, v)]) for v in names}
            order = sorted(names, key=lambda v: -values[v])
            ax.barh(order, [values[v] for v in order], color=["tab:grey" if VARIANTS.get(v, ("",))[0] == "scratch" else "tab:blue" for v in order])
            right = 2.0 * min(values.values())  # the start (zero-shot) can be far off: clipped, value printed
            for k, v in enumerate(order):
                ax.text(min(values[v], right), k, f" {values[v]:.0f}", va="center", fontsize=7)
            if "heads0" in values:
                ax.axvline(values["heads0"], color="k", lw=0.8, ls="--")
            ax.set_xlim(0, right * 1.1)
            ax.set_xlabel("test force RMSE (meV/Å), mean over seeds")
            ax.set_title(f"{split} split, N = {n}")
            ax.tick_params(axis="y", labelsize=7)
    figure.tight_layout()
    figure.savefig(png_path, dpi=100)
    plt.close(figure)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--split", choices=list(accuracy.SPLITS), default="level")
    parser.add_argument("--n", type=int, default=50)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--only", nargs="+", choices=list(VARIANTS), help="variants to run (default: all)")
    parser.add_argument("--tag", default="", help="suffix of the cached run directories (rerun variants after the defaults changed)")
    parser.add_argument("--pretrained", default="pretrained:hipnn-meta-hcno")
    parser.add_argument("--work", default=str(accuracy.ROOT / "runs" / "bench_accuracy" / "full"))
    parser.add_argument("--out", default=str(RESULTS / "finetune_protocol.csv"))
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--plot", action="store_true", help="only redraw the PNG from the CSV and print the table")
    args = parser.parse_args()
    out = Path(args.out)
    if not args.plot:
        names = args.only or list(VARIANTS)
        tasks = [(args.split, args.n, seed, name) for name in names for seed in args.seeds]
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(args.jobs, mp_context=context) as pool:
            futures = {pool.submit(run_tagged, *task, args.tag, Path(args.work), args.pretrained): task for task in tasks}
            for future in as_completed(futures):
                r = future.result()
                protocol.append_rows([r], out, COLUMNS)
                print(f"{r['split']} N={r['n_train']} {r['variant']:>18} seed {r['seed']}: force {r['force_rmse_meV_per_A']:.1f} meV/Å, "
                      f"energy {r['energy_rmse_meV_per_atom']:.2f} meV/atom, steps {r['steps']} (best {r['best_step']}), "
                      f"{r['train_seconds']:.0f} s  {r['settings']}", flush=True)
    plot(out, out.with_suffix(".png"))
    print(table(out))
    return 0


def run_tagged(split: str, n: int, seed: int, name: str, tag: str, work: Path, pretrained: str) -> dict:
    method, overrides = VARIANTS[name]
    row = protocol.run_variant(split, n, seed, method, name + (f"-{tag}" if tag else ""), overrides, work, pretrained)
    return {**row, "variant": name, "method": method, "defaults": defaults_label()}


if __name__ == "__main__":
    sys.exit(main())
