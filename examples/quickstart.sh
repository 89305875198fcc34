#!/usr/bin/env bash
# The end-to-end quickstart that `make demo` runs (from the repository root, venv active or
# its bin/ on PATH). Re-running it continues the same run instead of starting over.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== The bundled multi-level dataset"
metamlip-data info examples/data/*.extxyz.gz

echo "== Training HIP-NN on the GFN2-xTB labels"
resume=()
[ -f demo_out/quickstart/last.ckpt ] && resume=(--resume)
metamlip-train examples/quickstart.yaml "${resume[@]}"

echo "== Plots: demo_out/quickstart/parity.png (test-set parity), demo_out/quickstart/loss_curve.png"
