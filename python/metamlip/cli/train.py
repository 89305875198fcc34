"""`metamlip-train`: train, pre-train (five strategies) or fine-tune a HIP-NN potential."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from metamlip import pretrained
from metamlip.data import DataError
from metamlip.nn.checkpoint import CheckpointError
from metamlip.train import distributed
from metamlip.train.config import STRATEGIES, ConfigError, load_config, validate_config
from metamlip.train.interrupt import TrainingInterrupted
from metamlip.workflows import RUN_FILES, run_training


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="metamlip-train",
        description="Train a HIP-NN interatomic potential (energies in eV, forces in eV/A). "
        "Settings come from CONFIG.yaml (schema in README.md); the flags override its keys. "
        "Under torchrun (python -m metamlip.train) the processes train data-parallel.",
    )
    parser.add_argument("config", nargs="?", help="YAML configuration file (optional)")
    parser.add_argument("--data", nargs="+", metavar="FILE", help="data files or globs (.extxyz[.gz], .h5, .npz); FILE::LEVEL sets a default level (data.files)")
    parser.add_argument("--level", help="level of theory to train or fine-tune on, e.g. 'b3lyp/6-31g*' (data.level)")
    parser.add_argument("--n-train", type=int, help="number of training configurations (data.n_train); with --init it also sets the default validation and test sizes")
    parser.add_argument("--n-val", type=float, help="validation configurations, a count or a fraction < 1 (data.n_val); with --init and --n-train default 20%% of N, 5 to 100")
    parser.add_argument("--n-test", type=float, help="test configurations, a count or a fraction < 1 (data.n_test); with --init and --n-train default the rest of the level, at most 1000")
    parser.add_argument("--max-epochs", type=int, help="maximum number of epochs (training.max_epochs)")
    parser.add_argument("--max-steps", type=int, help="maximum number of optimiser steps (training.max_steps; when fine-tuning also finetune.max_steps)")
    parser.add_argument("--seed", type=int, help="seed for initial weights and shuffling (training.seed)")
    parser.add_argument("--strategy", choices=STRATEGIES, help="how other levels are used (strategy); default scratch")
    parser.add_argument("--source-levels", nargs="+", metavar="LEVEL", help="levels to pre-train on (data.source_levels)")
    parser.add_argument("--init", metavar="CKPT", help="fine-tune this checkpoint, or pretrained:NAME, e.g. pretrained:default (init)")
    parser.add_argument("--compare-scratch", action="store_true", help="with --init: also train the same architecture from scratch on the same frames (OUT/scratch) and compare (comparison.csv, comparison.png)")
    parser.add_argument("--list-pretrained", action="store_true", help="list the shipped pre-trained models and exit")
    parser.add_argument("--out", help="output directory (out)")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def _count_or_fraction(value: float | None) -> int | float | None:
    """--n-val/--n-test as the YAML would hold them: 10.0 -> 10 (the schema checks the rest)."""
    return int(value) if value is not None and value >= 1 and value == int(value) else value


def list_pretrained() -> str:
    names = pretrained.available()
    if not names:
        return "no pre-trained models are shipped with this installation"
    aliases = [f"pretrained:{alias}  = pretrained:{target}" for alias, target in pretrained.ALIASES.items() if target in names]
    return "\n".join(aliases + [f"pretrained:{name}  {pretrained.summary(name)}" for name in names])


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.list_pretrained:
        print(list_pretrained())
        return 0
    config = None
    try:
        config = load_config(args.config)
        overrides = {
            ("data", "files"): list(args.data) if args.data else None,
            ("data", "level"): args.level,
            ("data", "n_train"): args.n_train,
            ("data", "n_val"): _count_or_fraction(args.n_val),
            ("data", "n_test"): _count_or_fraction(args.n_test),
            ("data", "source_levels"): args.source_levels,
            ("training", "max_epochs"): args.max_epochs,
            ("training", "max_steps"): args.max_steps,
            ("training", "seed"): args.seed,
        }
        for (section, key), value in overrides.items():
            if value is not None:
                setattr(getattr(config, section), key, value)
        if args.strategy:
            config.strategy = args.strategy
        if args.init:
            config.init = args.init
        if args.max_steps is not None and (config.init is not None or config.strategy != "scratch"):
            config.finetune.max_steps = args.max_steps  # the fine-tuning budget too (--compare-scratch: the same for both)
        if args.out:
            config.out = args.out
        if args.no_progress:
            config.training.progress = config.pretrain.progress = False
        validate_config(config)
        metrics = run_training(config, resume=args.resume, compare_scratch=args.compare_scratch)
    except (ConfigError, DataError, CheckpointError, pretrained.PretrainedError) as error:
        print(f"metamlip-train: error: {error}", file=sys.stderr)
        return 2
    except TrainingInterrupted as stop:
        again = "--resume --compare-scratch" if args.compare_scratch else "--resume"
        print(f"metamlip-train: interrupted; {stop.checkpoint} holds the state: continue with {again}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:  # a second Ctrl-C, or one outside the training loop
        kept = config is not None and any((Path(config.out) / name).exists() for name in RUN_FILES)
        hint = "continue from the last checkpoint with --resume" if kept else "no checkpoint was written yet"
        print(f"metamlip-train: interrupted; {hint}", file=sys.stderr)
        return 130
    finally:
        distributed.shutdown()
    if metrics:
        print(format_summary(metrics, config.out))
    return 0


def format_summary(metrics: dict, out: str) -> str:
    if "strategy" in metrics:
        lines = [f"pre-trained ({metrics['strategy']}) on {', '.join(metrics['levels'])}"]
    else:
        lines = [f"best epoch {metrics['best_epoch']} of {metrics['epochs']}"]
    for split in ("validation", "test"):
        for level, m in metrics.get(split, {}).items():
            if level == "all":
                continue
            lines.append(
                f"{split:>10} {level}: energy RMSE {m['energy_rmse_meV_per_atom']:.2f} meV/atom, "
                f"force RMSE {m['force_rmse_meV_per_A']:.1f} meV/A  (n={m['n_configurations']})"
            )
    files = "model.ckpt, metrics.json" + ("" if "strategy" in metrics else ", metrics.csv, parity.png, loss_curve.png") + ", train_log.csv"
    if "comparison" in metrics:
        lines += ["", metrics["comparison"]]
        files += ", comparison.csv, comparison.png, scratch/"
    lines.append(f"written to {out}/: {files}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
