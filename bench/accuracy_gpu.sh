#!/usr/bin/env bash
# The accuracy benchmark (bench/accuracy.py, issue 12) on a GPU machine without network or venv,
# unattended and within a time budget:
#   1. installs the wheels carried in .whl_mace/ (mace-torch and its needs, hippynn, ase,
#      pydantic, ...) into a private directory (no network, --no-deps);
#   2. seeds the run cache from .whl_mace/bench_accuracy_cache.tar.gz if carried (runs finished
#      elsewhere, and the molecule split's pre-trained start);
#   3. builds the op library (CUDA kernels on when nvcc matches torch) against whatever torch
#      `python3` has, into a staged copy of python/metamlip, as bench/gpu_check.sh does;
#   4. runs `bench/accuracy.py --device DEVICE --jobs JOBS --time-limit ...` for every method,
#      split and N not cached yet: every finished run is cached at once, the rest is stopped at
#      the time limit;
#   5. writes into OUT_DIR: accuracy.csv, accuracy.png and accuracy_table.md (all finished
#      runs), accuracy_gpu.log, and bench_accuracy_cache.tar.gz (each run's result.json and
#      logs, no checkpoints: `tar -xzf ... -C runs/bench_accuracy` merges it into a cache).
#
#   bash bench/accuracy_gpu.sh OUT_DIR [more bench/accuracy.py arguments]
#
# Environment: ACCURACY_BUDGET_S (default 400) bounds the whole script; ACCURACY_JOBS (12) runs
# at once; ACCURACY_DEVICE (cuda; cpu for a dry run); ACCURACY_WHEELS (.whl_mace); PYTHON
# (python3); ACCURACY_BUILD_TIMEOUT_S (240); ACCURACY_BUILD a build directory to reuse (default a
# fresh one); ACCURACY_LOCK (a lock file held while building). ACCURACY_METHODS (default all)
# are trained on DEVICE; ACCURACY_CPU_METHODS, if set, at the same time on the CPU cores,
# ACCURACY_CPU_JOBS (8) at once (small molecules gain little from a GPU that many processes
# share); pass methods only through these two, the other accuracy.py arguments go to both.
# On the lent GPU machine, from the repository root, with .whl_mace carried:
#   ACCURACY_BUDGET_S=390 PYTHONUNBUFFERED=1 timeout 415 bash bench/accuracy_gpu.sh "$OUT"
set -uo pipefail
START=$(date +%s)
cd "$(dirname "$0")/.."
ROOT=$(pwd)
OUT=$(mkdir -p "${1:?usage: accuracy_gpu.sh OUT_DIR [accuracy.py arguments]}" && cd "$1" && pwd)
shift
BUDGET=${ACCURACY_BUDGET_S:-400}
JOBS=${ACCURACY_JOBS:-12}
DEVICE=${ACCURACY_DEVICE:-cuda}
WHEELS=${ACCURACY_WHEELS:-.whl_mace}
PYTHON=$(command -v "${PYTHON:-python3}") || { echo "accuracy_gpu: no ${PYTHON:-python3}"; exit 1; }
PYTHON="$(cd "$(dirname "$PYTHON")" && pwd)/$(basename "$PYTHON")"  # absolute, a venv's link kept
WORK=$(mktemp -d /tmp/metamlip-accuracy-gpu.XXXXXX)
RUNS="$ROOT/runs/bench_accuracy"
exec 3>&1 4>&2 > >(tee "$OUT/accuracy_gpu.log") 2>&1
TEE_PID=$!
echo "# metamlip accuracy benchmark, $(date -u '+%Y-%m-%d %H:%M:%S UTC'), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown), device $DEVICE, $JOBS jobs, budget ${BUDGET} s"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
elapsed() { echo $(( $(date +%s) - START )); }

# --- 1. Wheels --------------------------------------------------------------------------------
if compgen -G "$WHEELS/*.whl" >/dev/null; then
  SITE="$WORK/site"
  if "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" "$WHEELS"/*.whl; then
    echo "# installed $(ls "$WHEELS"/*.whl | wc -l) wheels from $WHEELS after $(elapsed) s"
  else
    echo "# wheel install failed: the methods that need them may fail"
  fi
  export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
  export PATH="$SITE/bin:$PATH"
fi

# --- 2. Seed the cache ------------------------------------------------------------------------
if [ -f "$WHEELS/bench_accuracy_cache.tar.gz" ]; then
  mkdir -p "$RUNS" && tar -xzf "$WHEELS/bench_accuracy_cache.tar.gz" -C "$RUNS" \
    && echo "# cache seeded: $(find "$RUNS" -name result.json | wc -l) finished runs"
fi

# --- 3. Build the op library into a staged copy of the package ------------------------------
source bench/stage_build.sh
STAGE_BUILD_DIR=${ACCURACY_BUILD:-} STAGE_BUILD_LOCK=${ACCURACY_LOCK:-} STAGE_BUILD_TIMEOUT_S=${ACCURACY_BUILD_TIMEOUT_S:-240} \
  stage_build "$WORK" "$OUT" -DMETAMLIP_LAMMPS_PLUGIN=OFF
if [ "$BUILD_STATUS" -ne 0 ]; then
  tail -30 "$OUT/build.log" 2>/dev/null || tail -30 "$OUT/configure.log"
fi
"$PYTHON" -c "import torch, metamlip, mace, hippynn; print('# python', __import__('sys').version.split()[0], 'torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'metamlip from', metamlip.__file__)" \
  || echo "# imports failed: see above"

# --- 4. The benchmark, within what is left of the budget ---------------------------------------
COLLECT_S=25  # kept for step 5
LIMIT=$(( BUDGET - $(elapsed) - COLLECT_S ))
[ "$LIMIT" -lt 1 ] && LIMIT=1  # nothing left: only collect what is cached
echo "# running bench/accuracy.py for at most ${LIMIT} s"
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 PYTHONUNBUFFERED=1 TQDM_DISABLE=1  # one line per finished run, no bar
device_methods=()
[ -n "${ACCURACY_METHODS:-}" ] && device_methods=(--methods $ACCURACY_METHODS)
cpu_pid=""
if [ -n "${ACCURACY_CPU_METHODS:-}" ]; then  # at the same time, on the CPU cores
  "$PYTHON" bench/accuracy.py --device cpu --methods $ACCURACY_CPU_METHODS --jobs "${ACCURACY_CPU_JOBS:-8}" --time-limit "$LIMIT" \
    --no-timing --work "$RUNS" --results "$WORK/cpu_results" "$@" 2>&1 | sed -u 's/^/[cpu] /' &
  cpu_pid=$!
fi
"$PYTHON" bench/accuracy.py --device "$DEVICE" "${device_methods[@]}" --jobs "$JOBS" --time-limit "$LIMIT" --no-timing \
  --work "$RUNS" --results "$OUT" "$@"
status=$?
if [ -n "$cpu_pid" ]; then wait "$cpu_pid" || status=1; fi
echo "# bench/accuracy.py: exit status $status after $(elapsed) s"

# --- 5. Results: every finished run (also those cached before), and the cache ---------------------
"$PYTHON" bench/accuracy.py --cached-only --no-timing --work "$RUNS" --results "$OUT" "$@" >"$OUT/accuracy_table.md" 2>/dev/null \
  || echo "# collecting the table failed"
grep -E "^\|" "$OUT/accuracy_table.md"
(cd "$RUNS" && find . \( -name result.json -o -name train_log.csv -o -name hippynn_log.txt -o -name '*.log' -o -name '*_train.txt' \
  -o -path './*/errors/*' -o -path './*/pretrain/*' \) -type f ! -name '*.lock' ! -name last.ckpt -print0 | tar -czf "$OUT/bench_accuracy_cache.tar.gz" --null -T -)
echo "# cache: $(tar -tzf "$OUT/bench_accuracy_cache.tar.gz" | grep -c result.json) results in bench_accuracy_cache.tar.gz; total $(elapsed) s"
rm -rf "$WORK"
exec 1>&3 2>&4
wait "$TEE_PID" 2>/dev/null
exit "$status"
