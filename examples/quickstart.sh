#!/usr/bin/env bash
# The end-to-end quickstart that `make demo` runs (from the repository root, venv active or
# its bin/ on PATH): data -> training -> export -> molecular dynamics in LAMMPS and OpenMM.
# Re-running it continues the same training run instead of starting over.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=demo_out/quickstart

echo "== The bundled multi-level dataset"
metamlip-data info examples/data/*.extxyz.gz

echo "== Training HIP-NN on the GFN2-xTB labels"
resume=()
[ -f "$OUT/last.ckpt" ] && resume=(--resume)
metamlip-train examples/quickstart.yaml "${resume[@]}"

echo "== Exporting the trained model for LAMMPS, OpenMM and ASE"
metamlip-export "$OUT/model.ckpt" -o "$OUT/model.pt" --dtype float64
metamlip-export --info "$OUT/model.pt"

echo "== LAMMPS: 200 NVE steps of 27 molecules (examples/lammps/in.metamlip)"
(cd examples/lammps && lmp -nocite -in in.metamlip -var steps 200 -log ../../demo_out/lammps.log)

echo "== OpenMM: Langevin MD of ethanol in vacuum, NVE of a periodic box (examples/openmm/md.py)"
python examples/openmm/md.py --model "$OUT/model.pt" --steps 200

echo "== Done. Plots: $OUT/parity.png (test-set parity), $OUT/loss_curve.png;"
echo "   model: $OUT/model.pt; MD output: demo_out/lammps.log, demo_out/openmm/"
