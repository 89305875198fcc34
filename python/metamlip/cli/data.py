"""``metamlip-data``: sample configurations, label them at a level of theory, summarize files.

    metamlip-data sample CH3CH2OH CH3NH2 --temperatures 300 600 900 --n-frames 50 -o configs.extxyz
    metamlip-data label configs.extxyz --level hf/6-31g* -o hf_6-31gs.extxyz.gz --threads 2
    metamlip-data info hf_6-31gs.extxyz.gz
    metamlip-data library
    metamlip-data campaign run data/foundation/manifest.yaml --shard 1/4
    metamlip-data campaign status data/foundation/manifest.yaml
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path


def _sample(args: argparse.Namespace) -> int:
    from metamlip.qm.extxyz import write_frames
    from metamlip.qm.sampling import SamplingSettings, sample

    settings = SamplingSettings(
        method=args.method, temperatures=tuple(args.temperatures), n_frames=args.n_frames,
        stride=args.stride, equilibration=args.equilibration, timestep=args.timestep,
        friction=args.friction, seed=args.seed)
    frames = sample(args.molecules, settings, progress=not args.quiet)
    write_frames(args.output, frames)
    print(f"wrote {len(frames)} frames to {args.output}")
    return 0


def _label(args: argparse.Namespace) -> int:
    from metamlip.qm.labelling import failures_path, label_file

    s = label_file(args.input, args.output, args.level, workers=args.workers,
                   threads=args.threads, chunk_size=args.chunk_size, progress=not args.quiet,
                   density_fit=args.density_fit)
    per_frame = s.seconds / max(s.n_labelled + s.n_failed, 1)
    print(f"{args.output}: {s.n_input} input frames; {s.n_done_before} already labelled, "
          f"{s.n_failed_before} skipped as recorded failures; labelled {s.n_labelled}, "
          f"failed {s.n_failed} in {s.seconds:.1f} s ({per_frame:.2f} s/frame)")
    if s.n_failed or s.n_failed_before:
        print(f"failures: {failures_path(Path(args.output))}")
    return 0


def _info(args: argparse.Namespace) -> int:
    from metamlip.data import read_dataset
    from metamlip.qm.summary import format_table, summarize

    summaries = [(path, summarize(read_dataset(path), path)) for path in args.files]
    for path, summary in summaries:
        print(format_table(path, summary))
    return 1 if any(summary.problems for _, summary in summaries) else 0


def _library(args: argparse.Namespace) -> int:
    from metamlip.qm.library import load_library

    library = load_library()
    if args.source:
        molecules = [m for m in library.molecules.values() if m.source == args.source]
    else:
        molecules = list(library.molecules.values())
    print(f"{'id':<34} {'formula':<12} {'source':<14} smiles")
    for m in molecules:
        print(f"{m.id:<34} {m.formula:<12} {m.source:<14} {m.smiles}")
    if not args.source or args.source == "cluster":
        for c in library.clusters.values():
            print(f"{c.id:<34} {'':<12} {c.source:<14} {' + '.join(c.members)}")
    n_clusters = len(library.clusters) if not args.source or args.source == "cluster" else 0
    print(f"{len(molecules)} molecules, {n_clusters} clusters")
    return 0


def _campaign(args: argparse.Namespace) -> int:
    from metamlip.qm import campaign
    from metamlip.qm.manifest import load_manifest, parse_shard

    if args.action == "merge" and args.output is None:
        raise ValueError("campaign merge needs -o/--output DIR")
    manifest = load_manifest(args.manifest)
    if args.action == "run":
        shard = parse_shard(args.shard)
        n_units, n_labelled, n_failed = campaign.run(manifest, shard, threads=args.threads,
                                                    progress=not args.quiet, levels=args.levels)
        print(f"campaign {manifest.name} shard {shard[0]}/{shard[1]}: ran {n_units} units, "
              f"labelled {n_labelled} frames, {n_failed} failed")
    print(campaign.format_status(manifest, campaign.status(manifest)))
    if args.action == "status" and args.cards:
        from metamlip.qm.cards import write_cards

        for path in write_cards(manifest, args.cards):
            print(f"wrote {path}")
    if args.action == "merge":
        from metamlip.qm.cards import merge

        for path in merge(manifest, args.output):
            print(f"wrote {path}")
    return 0


def _positive(kind: type) -> Callable[[str], float | int]:
    """An argparse type: a number of ``kind`` greater than zero."""
    def convert(text: str) -> float | int:
        try:
            value = kind(text)
        except ValueError:
            value = 0
        if not value > 0:
            raise argparse.ArgumentTypeError(f"expected a positive {kind.__name__}, got '{text}'")
        return value
    return convert


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with the ``sample``, ``label`` and ``info`` subcommands."""
    parser = argparse.ArgumentParser(prog="metamlip-data", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("sample", help="GFN2-xTB Langevin MD sampling of molecules")
    p.add_argument("molecules", nargs="+", help="ase.build.molecule names or xyz/extxyz files")
    p.add_argument("-o", "--output", type=Path, required=True, help="extxyz file (.gz allowed)")
    p.add_argument("--method", choices=["md", "normal-modes"], default="md",
                   help="Langevin MD (default) or ANI-style normal-mode sampling")
    p.add_argument("--temperatures", type=_positive(float), nargs="+",
                   default=[300.0, 600.0, 900.0], help="K, each > 0 (default: 300 600 900)")
    p.add_argument("--n-frames", type=_positive(int), default=50,
                   help="frames per molecule and temperature (>= 1)")
    p.add_argument("--stride", type=_positive(int), default=50, help="MD steps between kept frames")
    p.add_argument("--equilibration", type=int, default=1000,
                   help="MD steps before the first frame")
    p.add_argument("--timestep", type=_positive(float), default=0.5, help="fs")
    p.add_argument("--friction", type=float, default=0.01, help="Langevin friction, 1/fs")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_sample)

    p = sub.add_parser("label", help="label an extxyz file at a level of theory (resumable)")
    p.add_argument("input", type=Path, help="extxyz with info['config_id'] per frame")
    p.add_argument("--level", required=True,
                   help="gfn1-xtb, gfn2-xtb, hf/<basis>, mp2/<basis> or <functional>/<basis>")
    p.add_argument("-o", "--output", type=Path, required=True, help="extxyz file (.gz allowed)")
    p.add_argument("--workers", type=int, default=1, help="worker processes")
    p.add_argument("--threads", type=int, default=1, help="OpenMP/BLAS threads per worker")
    p.add_argument("--chunk-size", type=int, default=10, help="frames per saved chunk")
    p.add_argument("--density-fit", action="store_true",
                   help="HF/DFT: density-fitted integrals (PySCF's JK-fitting basis of the "
                        "orbital basis; faster for molecules of more than ~12 atoms, forces "
                        "within a few meV/A)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_label)

    p = sub.add_parser("info", help="counts, energy and force ranges per level and molecule; "
                       "exit status 1 if frames have NaN or missing labels")
    p.add_argument("files", nargs="+", help="extxyz (.gz), HDF5 or npz files")
    p.set_defaults(func=_info)

    p = sub.add_parser("library", help="list the molecule library (id, formula, source, SMILES)")
    p.add_argument("--source", help="only this source (g2, organic, heterocycle, nucleobase, "
                   "amino-acid, drug-fragment, cluster)")
    p.set_defaults(func=_library)

    p = sub.add_parser("campaign", help="labelling campaign over the library from a manifest")
    p.add_argument("action", choices=["run", "status", "merge"],
                   help="run (resumable) this shard's units; status of all shards; merge "
                        "finished units into one file per level with data cards")
    p.add_argument("manifest", type=Path, help="campaign manifest (YAML)")
    p.add_argument("--shard", default="1/1",
                   help="run: K/N runs the K-th of N disjoint shares (e.g. a SLURM array task)")
    p.add_argument("--threads", type=_positive(int), default=1,
                   help="run: OpenMP/BLAS threads")
    p.add_argument("--levels", nargs="+", metavar="LEVEL",
                   help="run: only these levels' units (e.g. the DFT levels on larger nodes)")
    p.add_argument("--cards", type=Path, help="status: also write data cards into this directory")
    p.add_argument("-o", "--output", type=Path, help="merge: output directory")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_campaign)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``metamlip-data``; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError) as err:
        print(f"metamlip-data {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
