"""Training-protocol study: metamlip on the splits of bench/accuracy.py with chosen settings.

    OMP_NUM_THREADS=1 python bench/protocol.py --split level --n 50 --method scratch \\
        --variant base='{}' --variant ema='{"training": {"ema_decay": 0.99}}'

Each variant is {section: {key: value}} on top of metamlip-train's defaults (for --method
finetune: those of --init); rows are appended to bench/results/protocol.csv (and printed):
test force and energy RMSE, optimiser steps, seconds. Runs are cached in --work.
"""

from __future__ import annotations

import argparse
import csv
import json
import multiprocessing
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import accuracy  # noqa: E402

COLUMNS = ["split", "method", "n_train", "seed", "variant", "settings", "force_rmse_meV_per_A", "energy_rmse_meV_per_atom", "steps", "best_step", "train_seconds"]


def run_variant(split_name: str, n: int, seed: int, method: str, name: str, overrides: dict, work: Path, pretrained: str) -> dict:
    from metamlip.data import read_dataset

    data = read_dataset(str(accuracy.TARGET_FILE))
    split = accuracy.SPLITS[split_name](data, [n])
    init = None
    if method == "finetune":
        init = pretrained if split.molecule is None else str(
            accuracy.pretrain_without(split.molecule, pretrained, accuracy.pretrain_dir(work, split.molecule, None), None)
        )
    key = json.dumps(overrides, sort_keys=True)
    directory = work / "protocol" / split_name / method / f"n{n}-seed{seed}" / name
    result = accuracy.cached(directory, lambda: accuracy.train_metamlip(split, n, seed, init, pretrained, directory, overrides))
    return {**{k: result.get(k) for k in COLUMNS}, "variant": name, "settings": key}


def append_rows(rows: list[dict], path: Path, columns: list[str] = COLUMNS) -> None:
    """Append rows to a CSV, writing the header when the file is new."""
    path.parent.mkdir(parents=True, exist_ok=True)
    new = not path.exists()
    with open(path, "a", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        if new:
            writer.writeheader()
        writer.writerows(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--split", choices=["level", "molecule"], default="level")
    parser.add_argument("--n", type=int, default=50)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--method", choices=["scratch", "finetune"], default="scratch")
    parser.add_argument("--variant", action="append", required=True, metavar="NAME=JSON")
    parser.add_argument("--pretrained", default="pretrained:hipnn-meta-hcno")
    parser.add_argument("--work", default=str(accuracy.ROOT / "runs" / "bench_accuracy" / "full"))
    parser.add_argument("--out", default=str(accuracy.ROOT / "bench" / "results" / "protocol.csv"))
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    variants = [(v.split("=", 1)[0], json.loads(v.split("=", 1)[1])) for v in args.variant]
    tasks = [(args.split, args.n, seed, args.method, name, o, Path(args.work), args.pretrained) for name, o in variants for seed in args.seeds]
    with ProcessPoolExecutor(args.jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        rows = list(pool.map(run_variant, *zip(*tasks)))
    append_rows(rows, Path(args.out))
    for r in rows:
        print(f"{r['variant']:>16} seed {r['seed']}: force {r['force_rmse_meV_per_A']:.1f} meV/Å, energy {r['energy_rmse_meV_per_atom']:.2f} meV/atom, "
              f"steps {r['steps']} (best {r['best_step']}), {r['train_seconds']:.0f} s  {r['settings']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
