#!/usr/bin/env bash
# The end-to-end quickstart that `make demo` runs (from the repository root, venv active or
# its bin/ on PATH): data -> training -> meta-learned fine-tuning -> export -> molecular dynamics
# in LAMMPS and OpenMM. Re-running it continues the training runs instead of starting over.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=demo_out/quickstart

echo "== The bundled multi-level dataset"
metamlip-data info examples/data/*.extxyz.gz

train() {  # train OUT_DIR ARGS...: metamlip-train, continuing OUT_DIR's run if it has one
  local out=$1; shift
  local resume=()
  [ -f "$out/last.ckpt" ] && resume=(--resume)
  metamlip-train "$@" --out "$out" "${resume[@]}"
}

echo "== Training HIP-NN on the GFN2-xTB labels"
train "$OUT" examples/quickstart.yaml

echo "== Fine-tuning the default pre-trained model to MP2/cc-pVDZ (a level it never saw) on 50"
echo "   configurations, in one command, against training from scratch on the same 50 frames,"
echo "   both with 1500 optimiser steps (the defaults: 3000 fine-tuning, 6000 from scratch; README)"
train demo_out/mp2-finetuned --init pretrained:default --data examples/data/mp2_cc-pvdz.extxyz.gz \
  --level mp2/cc-pvdz --n-train 50 --compare-scratch --max-steps 1500

echo "== Exporting the trained model for LAMMPS, OpenMM and ASE"
metamlip-export "$OUT/model.ckpt" -o "$OUT/model.pt" --dtype float64
metamlip-export --info "$OUT/model.pt"

echo "== LAMMPS: 200 NVE steps of 27 molecules (examples/lammps/in.metamlip)"
(cd examples/lammps && lmp -nocite -in in.metamlip -var steps 200 -log ../../demo_out/lammps.log)

echo "== OpenMM: Langevin MD of ethanol in vacuum, NVE of a periodic box (examples/openmm/md.py)"
python examples/openmm/md.py --model "$OUT/model.pt" --steps 200

echo "== Done. Plots: $OUT/parity.png (test-set parity), $OUT/loss_curve.png,"
echo "   demo_out/mp2-finetuned/{parity,comparison}.png (fine-tuned vs scratch);"
echo "   model: $OUT/model.pt; MD output: demo_out/lammps.log, demo_out/openmm/"
