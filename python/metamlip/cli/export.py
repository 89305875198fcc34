"""`metamlip-export`: one TorchScript file for LAMMPS, OpenMM and ASE (and `--info` on it)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from metamlip.deploy.export import DTYPES, export_checkpoint
from metamlip.deploy.files import ExportedModelError, read_metadata
from metamlip.nn.checkpoint import CheckpointError
from metamlip.pretrained import PretrainedError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="metamlip-export",
        description="Export a trained model (one level of theory) as a TorchScript file that "
        "needs no Python: per-atom energies in eV from positions and pairs in Angstrom "
        "(engine interface in README.md). `--info FILE` prints an exported file's metadata.",
    )
    parser.add_argument("checkpoint", nargs="?", help="training checkpoint (model.ckpt) or pretrained:NAME")
    parser.add_argument("-o", "--output", help="exported file to write (e.g. model.pt)")
    parser.add_argument("--level", help="level of theory to deploy (required when the checkpoint knows several)")
    parser.add_argument("--dtype", choices=sorted(DTYPES), help="precision (default: the checkpoint's)")
    parser.add_argument(
        "--implementation",
        choices=["auto", "torch", "cpp"],
        default="auto",
        help="pair sums: plain PyTorch, or the op library libmetamlip_ops.so (then engines must "
        "load it); auto = cpp when the op library provides them",
    )
    parser.add_argument("--info", metavar="FILE", help="print the metadata of an exported file and exit")
    return parser


def format_info(metadata: dict[str, Any]) -> str:
    units = metadata["units"]
    ops = metadata["op_library"]
    self_energies = ", ".join(f"{k} {v:.6f}" for k, v in metadata["self_energies"].items())
    rows = [
        ("format version", metadata["format_version"]),
        ("metamlip", metadata["metamlip_version"]),
        ("torch", metadata["torch_version"]),
        ("level of theory", metadata["level"]),
        ("elements", " ".join(metadata["elements"])),
        ("atomic numbers", " ".join(str(z) for z in metadata["atomic_numbers"])),
        ("cutoff", f"{metadata['cutoff']} {units['length']}"),
        ("interaction layers", metadata["n_interactions"]),
        ("receptive field", f"{metadata['receptive_field']} {units['length']}"),
        ("units", f"energy {units['energy']}, length {units['length']}"),
        ("dtype", metadata["dtype"]),
        ("pair sums", metadata["pair_sums"]),
        ("op library", f"{ops['file']} (torch.ops.{ops['namespace']}), "
         + ("required to load the model" if ops["required"] else "not called by the model")),
        (f"self energies ({units['energy']})", self_energies),
    ]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.info:
            print(format_info(read_metadata(args.info)))
            return 0
        if not args.checkpoint or not args.output:
            parser.error("CHECKPOINT and -o/--output are required (or --info FILE)")
        metadata = export_checkpoint(args.checkpoint, args.output, args.level, args.dtype, args.implementation)
    except (ExportedModelError, CheckpointError, PretrainedError, ValueError) as error:
        print(f"metamlip-export: error: {error}", file=sys.stderr)
        return 2
    print(
        f"wrote {args.output}: level {metadata['level']}, elements {' '.join(metadata['elements'])}, "
        f"cutoff {metadata['cutoff']} A, {metadata['dtype']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
