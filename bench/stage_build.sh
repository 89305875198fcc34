# Sourced by the GPU scripts (bench/gpu_check.sh, bench/accuracy_gpu.sh, bench/foundation_gpu.sh):
# builds the op library (CUDA kernels on when torch has CUDA and a matching nvcc exists) and, unless
# the cmake arguments turn it off, the LAMMPS plugin, against whatever torch $PYTHON has, into a
# staged copy of python/metamlip: no venv, no network, no install into the repository.
#
#   source bench/stage_build.sh
#   stage_build SCRATCH LOG_DIR [cmake arguments]      # from the repository root
#
# Reads PYTHON (absolute path of the interpreter), STAGE_BUILD_DIR (a build directory to reuse;
# default SCRATCH/build), STAGE_BUILD_TIMEOUT_S (default 240), STAGE_BUILD_LOCK (a lock file held
# while building: serialises builds on a shared machine), STAGE_BUILD_KEEP_GOING (1: a failing
# target does not stop the others). Sets STAGE (the staged package root, put first on
# PYTHONPATH), BUILD_STATUS (0: built and installed) and BUILD_SECONDS; puts nvcc on PATH and
# torch's lib/ on LD_LIBRARY_PATH; writes LOG_DIR/configure.log and LOG_DIR/build.log and prints
# the configure's `metamlip:` lines, the build's errors and one summary line.

stage_build() {
  local scratch=$1 logs=$2
  shift 2
  local dir torch_lib py_bin cmake ninja build begin
  for dir in /usr/local/cuda/bin /usr/local/cuda-*/bin; do
    [ -x "$dir/nvcc" ] && case ":$PATH:" in *":$dir:"*) ;; *) export PATH="$PATH:$dir" ;; esac
  done
  torch_lib=$("$PYTHON" -c "import os, torch; print(os.path.join(os.path.dirname(torch.__file__), 'lib'))")
  export LD_LIBRARY_PATH="$torch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  STAGE="$scratch/pkg"
  mkdir -p "$STAGE" "$logs" && cp -r python/metamlip "$STAGE/" && rm -rf "$STAGE/metamlip/lib"
  # cmake and ninja: on PATH, else beside the interpreter (pip's cmake and ninja packages).
  py_bin=$(dirname "$PYTHON")
  cmake=$(command -v cmake || echo "$py_bin/cmake")
  ninja=$(command -v ninja || { [ -x "$py_bin/ninja" ] && echo "$py_bin/ninja"; })
  build=${STAGE_BUILD_DIR:-$scratch/build}
  local args=(-S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DPython_EXECUTABLE="$PYTHON" "$@")
  local keep_going=()
  if [ -n "$ninja" ]; then
    args+=(-G Ninja -DCMAKE_MAKE_PROGRAM="$ninja")
    [ "${STAGE_BUILD_KEEP_GOING:-0}" = 1 ] && keep_going=(-- -k 0)
  elif [ "${STAGE_BUILD_KEEP_GOING:-0}" = 1 ]; then
    keep_going=(-- -k)
  fi
  if [ -n "${STAGE_BUILD_LOCK:-}" ]; then exec 9>>"$STAGE_BUILD_LOCK"; flock 9; fi
  begin=$(date +%s)
  BUILD_STATUS=0
  timeout 120 "$cmake" "${args[@]}" >"$logs/configure.log" 2>&1 || BUILD_STATUS=$?
  grep -E "metamlip:|CMake Error|error:" "$logs/configure.log"
  if [ "$BUILD_STATUS" -eq 0 ]; then
    timeout "${STAGE_BUILD_TIMEOUT_S:-240}" "$cmake" --build "$build" --parallel "$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)" "${keep_going[@]}" \
      >"$logs/build.log" 2>&1 || BUILD_STATUS=$?
    grep -E "error|FAILED" "$logs/build.log" | head -40
    # installs what was built, also when a target failed (the parts that need it then skip)
    "$cmake" --install "$build" --prefix "$STAGE" >/dev/null 2>&1 || { [ "$BUILD_STATUS" -eq 0 ] && BUILD_STATUS=1; }
  fi
  exec 9>&-
  BUILD_SECONDS=$(( $(date +%s) - begin ))
  echo "# build: exit status $BUILD_STATUS after ${BUILD_SECONDS} s; installed: $(ls "$STAGE/metamlip/lib" 2>/dev/null | tr '\n' ' ')"
  export PYTHONPATH="$STAGE${PYTHONPATH:+:$PYTHONPATH}"
}
