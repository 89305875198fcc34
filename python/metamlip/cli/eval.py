"""`metamlip-eval`: the learning-curve experiment, energy-surface scans, and test errors."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from metamlip import pretrained
from metamlip.atomic import atomic_path
from metamlip.data import DataError
from metamlip.meta.scan import ScanError
from metamlip.nn.checkpoint import CheckpointError
from metamlip.qm.levels import LevelError
from metamlip.train.config import ConfigError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="metamlip-eval", description="Evaluate strategies and models (eV, Angstrom).")
    commands = parser.add_subparsers(dest="command", required=True)

    curve = commands.add_parser(
        "learning-curve",
        help="every strategy at every target training-set size (resumable)",
        description="Pre-train each strategy once, fine-tune at every size and seed, test on one shared test set; "
        "writes results.csv, results.json, results.md and learning_curve.png. Finished runs are skipped.",
    )
    curve.add_argument("config", help="YAML: a training config plus sizes, seeds, strategies (examples/meta/)")
    curve.add_argument("--out", help="output directory (default: the config's out)")
    curve.add_argument("--no-progress", action="store_true")

    scan = commands.add_parser(
        "scan",
        help="rigid bond/angle/torsion scans: models vs a reference level",
        description="Scan a molecule rigidly along a bond (through dissociation), an angle and a torsion; compare "
        "checkpoints with a reference level computed with PySCF/tblite (cached in OUT/scan.csv). Reports RMSE "
        "(mean offset removed), roughness and wiggle (second finite differences relative to the reference).",
    )
    scan.add_argument("--molecule", required=True, help="ase.build.molecule name (e.g. CH3CH2OH) or a structure file")
    scan.add_argument("--reference", required=True, metavar="LEVEL", help="reference level, e.g. 'hf/6-31g*'")
    scan.add_argument("--model", nargs="+", required=True, metavar="NAME=CKPT", help="checkpoints (or pretrained:NAME) to compare")
    scan.add_argument("--model-level", help="level the models are evaluated at (default: the reference level; a model that does not know it needs this)")
    scan.add_argument("--points", type=int, default=25, help="points per scan")
    scan.add_argument("--bond", nargs=2, type=int, metavar=("I", "J"), help="atoms of the bond (J's side moves)")
    scan.add_argument("--angle", nargs=3, type=int, metavar=("I", "J", "K"))
    scan.add_argument("--torsion", nargs=4, type=int, metavar=("I", "J", "K", "L"))
    scan.add_argument("--out", required=True, help="output directory")

    errors = commands.add_parser("errors", help="energy and force errors of a checkpoint on data")
    errors.add_argument("checkpoint", help="checkpoint or pretrained:NAME")
    errors.add_argument("--data", nargs="+", required=True, help="data files or globs")
    errors.add_argument("--level", help="evaluate as this level of the model (default: each configuration's own)")
    return parser


def run_scan(args: argparse.Namespace) -> str:
    from metamlip.meta import scan as scans_module
    from metamlip.meta.strategies import load_init
    from metamlip.qm.levels import parse_level

    out = Path(args.out)
    atoms = scans_module.load_molecule(args.molecule)
    coordinates = scans_module.default_coordinates(atoms)
    for kind in ("bond", "angle", "torsion"):
        if getattr(args, kind):
            coordinates[kind] = tuple(getattr(args, kind))
    scans = scans_module.make_scans(atoms, coordinates, args.points)
    reference_level = args.reference.strip().lower()
    parse_level(reference_level)  # bad levels and models fail before any quantum chemistry
    potentials = {}
    for entry in args.model:
        name, sep, path = entry.partition("=")
        if not sep:
            name, path = Path(entry).parent.name or entry, entry
        potential = load_init(path)
        known = ", ".join(potential.levels)
        if args.model_level is None and reference_level not in potential.levels:
            raise scans_module.ScanError(
                f"{path}: the model does not know the reference level {reference_level!r} (known: {known}); "
                "pass --model-level LEVEL to compare it at another level"
            )
        level = (args.model_level or reference_level).strip().lower()
        if level not in potential.levels:
            raise scans_module.ScanError(f"{path}: the model does not know level {level!r} (known: {known})")
        potentials[name] = (potential, level)
    reference = scans_module.read_reference_csv(out / "scan.csv", scans)
    if reference is None:
        reference = {s.name: scans_module.reference_energies(s.geometries, reference_level) for s in scans}
    models = {
        name: {s.name: scans_module.model_energies(potential, s.geometries, level) for s in scans}
        for name, (potential, level) in potentials.items()
    }
    metrics = {name: {s.name: scans_module.scan_metrics(reference[s.name], values[s.name]) for s in scans} for name, values in models.items()}
    scans_module.write_scan_csv(out / "scan.csv", scans, reference, models)
    model_levels = {name: level for name, (_, level) in potentials.items()}
    other = sorted(set(model_levels.values()) - {reference_level})
    label = Path(args.molecule).name.split(".")[0] if Path(args.molecule).exists() else args.molecule
    title = f"{label}: models vs {reference_level}" + (f" (models evaluated at {', '.join(other)})" if other else "")
    scans_module.scan_plot(out / "scan.png", scans, reference, models, title)
    summary = {"molecule": args.molecule, "reference": reference_level, "model_levels": model_levels, "metrics": metrics}
    levels_text = "".join(
        f"{name}: evaluated at {level}"
        + ("" if level == reference_level else f" (warning: not the reference level {reference_level})")
        + "\n"
        for name, level in model_levels.items()
    )
    table = levels_text + "\n" + scans_module.scan_summary_markdown(metrics, scans)
    with atomic_path(out / "scan_metrics.json") as tmp:
        tmp.write_text(json.dumps(summary, indent=2) + "\n")
    with atomic_path(out / "scan_metrics.md") as tmp:
        tmp.write_text(f"{title}\n\n{table}")
    return f"{title}\n{table}written to {out}/: scan.csv, scan.png, scan_metrics.json, scan_metrics.md"


def run_errors(args: argparse.Namespace) -> str:
    from metamlip.data import validate_configuration
    from metamlip.data.batching import GraphSet
    from metamlip.meta.strategies import load_init
    from metamlip.train.metrics import error_metrics, predict
    from metamlip.train.run import read_data_files

    potential = load_init(args.checkpoint)
    level = None if args.level is None else args.level.strip().lower()
    dataset = read_data_files(args.data, level)
    for configuration in dataset:  # bad frames are one-line errors, never NaN errors or tracebacks
        validate_configuration(configuration, potential.species, require_energy=True)
    known = ", ".join(potential.levels)
    if level is None:
        unknown = sorted(set(dataset.levels()) - set(potential.levels))
        if unknown:
            raise ConfigError(f"the model does not know level(s) {', '.join(unknown)}: choose one of {known} with --level")
    elif level not in potential.levels:
        raise ConfigError(f"the model does not know level {level!r} (known: {known})")
    metrics = error_metrics(predict(potential, GraphSet(dataset.configurations, potential.cutoff), level=level))
    lines = []
    for level, m in metrics.items():
        force = m["force_rmse_meV_per_A"]
        force_text = "n/a (no forces in the data)" if math.isnan(force) else f"{force:.1f} meV/A"
        lines.append(
            f"{level}: energy RMSE {m['energy_rmse_meV_per_atom']:.2f} meV/atom, force RMSE "
            f"{force_text} (n={m['n_configurations']})"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "learning-curve":
            from metamlip.meta.learning_curve import run_learning_curve

            folder = run_learning_curve(args.config, args.out, progress=not args.no_progress)
            print((folder / "results.md").read_text())
            print(f"written to {folder}/: results.csv, results.json, results.md, learning_curve.png")
        elif args.command == "scan":
            print(run_scan(args))
        else:
            print(run_errors(args))
    except (ConfigError, DataError, CheckpointError, pretrained.PretrainedError, ScanError, LevelError) as error:
        print(f"metamlip-eval: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # training inside learning-curve saved its checkpoint first
        print("metamlip-eval: interrupted; run the same command again to continue (finished work is kept)", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
