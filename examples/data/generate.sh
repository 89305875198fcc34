#!/usr/bin/env bash
# The exact commands that produce the bundled dataset (see README.md in this directory).
# Resumable: rerun it and finished configurations and labels are kept, only missing work is done.
# Production run (2 shared cores), from the repository root:
#   nohup nice -n 10 examples/data/generate.sh > /tmp/metamlip_data.log 2>&1 &
# Environment: PYTHON (default: python3 with metamlip installed), WORKERS (1), THREADS (2),
# CHUNK (frames per saved chunk for the ab initio levels, 10). Do not edit while it runs
# (bash reads scripts as it goes): stop it, edit, rerun.
# xTB on these small molecules runs single-threaded; idle OpenMP threads sleep instead of
# spinning, which matters on a shared, oversubscribed machine.
set -euo pipefail
export OMP_WAIT_POLICY=PASSIVE
cd "$(dirname "$0")"
DATA=("${PYTHON:-python3}" -m metamlip.cli.data)
SAMPLE=(env OMP_NUM_THREADS=1 "${DATA[@]}" sample)
LABEL_ARGS=(--workers "${WORKERS:-1}")
MOLECULES=(CH3CH2OH H3CNH2 HCOOH CH3CONH2)  # ase.build.molecule names; H3CNH2 is methylamine
MD=(--temperatures 300 600 900 --stride 50 --equilibration 1000 --timestep 0.5 --friction 0.01)

stem() { echo "$1" | sed -e 's|/|_|g' -e 's|\*|s|g'; }

label() {  # label INPUT LEVEL OUTPUT CHUNK_SIZE THREADS
  echo "== $(date -Is) label $1 at $2 -> $3"
  "${DATA[@]}" label "$1" --level "$2" -o "$3" --chunk-size "$4" --threads "$5" "${LABEL_ARGS[@]}"
  echo "== $(date -Is) done $2"
}

# Ab initio set: 50 frames per molecule and temperature (600 configurations), seed 0.
[ -f configs.extxyz ] || "${SAMPLE[@]}" "${MOLECULES[@]}" "${MD[@]}" --n-frames 50 --seed 0 -o configs.extxyz
# xTB-only extra set: 170 frames per molecule and temperature (2040 configurations), seed 1.
[ -f extra/configs.extxyz.gz ] || "${SAMPLE[@]}" "${MOLECULES[@]}" "${MD[@]}" --n-frames 170 --seed 1 -o extra/configs.extxyz.gz

for level in gfn2-xtb gfn1-xtb; do
  label configs.extxyz "$level" "$(stem "$level").extxyz.gz" 200 1
  label extra/configs.extxyz.gz "$level" "extra/$(stem "$level").extxyz.gz" 500 1
done
for level in 'hf/sto-3g' 'hf/6-31g*' 'mp2/cc-pvdz' 'b3lyp/6-31g*' 'pbe/def2-svp'; do
  label configs.extxyz "$level" "$(stem "$level").extxyz.gz" "${CHUNK:-10}" "${THREADS:-2}"
done
echo "== $(date -Is) all levels done"
