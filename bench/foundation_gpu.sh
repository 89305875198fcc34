#!/usr/bin/env bash
# The foundation experiment unattended on a GPU machine (issue 13): builds the op library (CUDA
# kernels on when torch has CUDA and nvcc exists) against whatever torch `python3` has, without
# a venv, then runs `bench/foundation.py run`: the data, every pre-training strategy (parallel
# processes on the GPU, each with a wall-time budget), the learning curves at the held-out level
# on the held-out molecules (CPU processes, one thread each), the report; and copies the results
# (CSV, PNG, table, and foundation.tar.gz with the pre-trained checkpoints, <= 16 MB) into OUT.
#
#   bash bench/foundation_gpu.sh OUT_DIR
#
# Environment: FOUNDATION_BUDGET_S (default 400) bounds the whole run, build included;
# FOUNDATION_DEVICE (cuda) where pre-training runs; FOUNDATION_ARGS more flags for `run`
# (default: every variant of GPU_VARIANTS, seeds 0 and 1); FOUNDATION_WORK a work directory
# to reuse (default: a fresh one under /tmp); FOUNDATION_SITE a directory where the wheels are
# already installed; FOUNDATION_LOCK a lock file held while building (shared machines);
# FOUNDATION_BUILD a build directory to reuse (default: a fresh one), FOUNDATION_BUILD_TIMEOUT
# seconds for the build (default 200).
# Needs PYTHON (default python3) with torch, numpy, cmake, ninja; pydantic and ase (and the
# packages they need) are installed from .whl/ when python3 lacks them (no network, --no-deps).
#
# From the repository root of a bare GPU machine, with .whl/ carried:
#   timeout 415 bash bench/foundation_gpu.sh "$OUT"
set -uo pipefail
START=$(date +%s)
cd "$(dirname "$0")/.."
OUT=$(mkdir -p "${1:-foundation_results}" && cd "${1:-foundation_results}" && pwd)
PYTHON=$(command -v "${PYTHON:-python3}") || { echo "foundation_gpu: no ${PYTHON:-python3}"; exit 1; }
BUDGET=${FOUNDATION_BUDGET_S:-400}
DEVICE=${FOUNDATION_DEVICE:-cuda}
ARGS=${FOUNDATION_ARGS:---seeds 0 1}
NPROC=$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)
TMP=$(mktemp -d /tmp/metamlip-foundation.XXXXXX)
WORK=${FOUNDATION_WORK:-$TMP/work}
exec 3>&1 4>&2 > >(tee "$OUT/foundation_gpu.log") 2>&1
TEE_PID=$!
echo "# metamlip foundation run, $(date -u '+%Y-%m-%d %H:%M:%S UTC'), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown), budget ${BUDGET} s, device $DEVICE, $NPROC CPUs"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total --format=csv,noheader

# --- Missing Python packages from .whl/ (no network, no dependency resolution). --------------
SITE=${FOUNDATION_SITE:-}
if [ -z "$SITE" ] && ! "$PYTHON" -c "import pydantic, ase" 2>/dev/null; then
  SITE="$TMP/site"
  wheels=$(ls .whl/pydantic-*.whl .whl/pydantic_core-*.whl .whl/annotated_types-*.whl .whl/typing_extensions-*.whl \
    .whl/typing_inspection-*.whl .whl/ase-*.whl 2>/dev/null)
  echo "# installing $(echo $wheels | wc -w) wheels into $SITE"
  "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$SITE" $wheels \
    || echo "# wheel install failed"
fi
[ -n "$SITE" ] && export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"

# --- Build the op library only (no LAMMPS plugin) into a staged copy of the package. ----------
source bench/stage_build.sh
STAGE_BUILD_DIR=${FOUNDATION_BUILD:-} STAGE_BUILD_LOCK=${FOUNDATION_LOCK:-} STAGE_BUILD_TIMEOUT_S=${FOUNDATION_BUILD_TIMEOUT:-200} \
  stage_build "$TMP" "$OUT" -DMETAMLIP_LAMMPS_PLUGIN=OFF
build_status=$BUILD_STATUS
"$PYTHON" -c "import torch, metamlip.ops as o; print('# torch', torch.__version__, 'cuda', torch.cuda.is_available(), '; ops from', o.__file__)" || build_status=1

# --- The experiment, within what is left of the budget. --------------------------------------
status=$build_status
if [ $build_status -eq 0 ]; then
  # shellcheck disable=SC2086
  PYTHONUNBUFFERED=1 "$PYTHON" bench/foundation.py run --work "$WORK" --results "$OUT/results" --device "$DEVICE" \
    --deadline "$(( START + BUDGET - 3 ))" --workers "$NPROC" --pack "$OUT" $ARGS
  status=$?
  ls -la "$OUT" "$OUT/results" 2>/dev/null
fi
echo "# total $(( $(date +%s) - START )) s, exit status $status"
[ -z "${FOUNDATION_WORK:-}" ] && rm -rf "$TMP"
exec 1>&3 2>&4
wait "$TEE_PID" 2>/dev/null
exit $status
