"""`metamlip-train`: train a HIP-NN potential on one level of theory."""

from __future__ import annotations

import argparse
import sys

from metamlip.data import DataError
from metamlip.train.checkpoint import CheckpointError
from metamlip.train.config import ConfigError, load_config, validate_config
from metamlip.train.run import run_training


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="metamlip-train",
        description="Train a HIP-NN interatomic potential (energies in eV, forces in eV/A). "
        "Settings come from CONFIG.yaml (schema in README.md); the flags override its keys.",
    )
    parser.add_argument("config", nargs="?", help="YAML configuration file (optional)")
    parser.add_argument("--data", nargs="+", metavar="FILE", help="data files (.extxyz[.gz], .h5, .npz); FILE::LEVEL sets a default level (data.files)")
    parser.add_argument("--level", help="level of theory to train on, e.g. 'b3lyp/6-31g*' (data.level)")
    parser.add_argument("--n-train", type=int, help="number of training configurations (data.n_train)")
    parser.add_argument("--max-epochs", type=int, help="maximum number of epochs (training.max_epochs)")
    parser.add_argument("--seed", type=int, help="seed for initial weights and shuffling (training.seed)")
    parser.add_argument("--out", help="output directory (out)")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = load_config(args.config)
        if args.data:
            config.data.files = list(args.data)
        if args.level:
            config.data.level = args.level
        if args.n_train is not None:
            config.data.n_train = args.n_train
        if args.max_epochs is not None:
            config.training.max_epochs = args.max_epochs
        if args.seed is not None:
            config.training.seed = args.seed
        if args.out:
            config.out = args.out
        if args.no_progress:
            config.training.progress = False
        validate_config(config)
        metrics = run_training(config, resume=args.resume)
    except (ConfigError, DataError, CheckpointError) as error:
        print(f"metamlip-train: error: {error}", file=sys.stderr)
        return 2
    print(format_summary(metrics, config.out))
    return 0


def format_summary(metrics: dict, out: str) -> str:
    lines = [f"best epoch {metrics['best_epoch']} of {metrics['epochs']}"]
    for split in ("validation", "test"):
        for level, m in metrics.get(split, {}).items():
            if level == "all":
                continue
            lines.append(
                f"{split:>10} {level}: energy RMSE {m['energy_rmse_meV_per_atom']:.2f} meV/atom, "
                f"force RMSE {m['force_rmse_meV_per_A']:.1f} meV/A  (n={m['n_configurations']})"
            )
    lines.append(f"written to {out}/: model.ckpt, metrics.json, train_log.csv, parity.png, loss_curve.png")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
