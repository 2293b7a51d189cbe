#!/usr/bin/env bash
# Fill .devdata/ (git-ignored, carried to the GPU machine: ../shared does not travel) with what the
# GPU scripts need. Run here, in the repository root, before the device call.
#   bash bench/prepare_devdata.sh             mini CIFAR-10, for bench/gpu_session.sh
#   bash bench/prepare_devdata.sh reference   + the whole CIFAR-10 (q90, 35 MB) and Snakemake's wheels
#                                               (14 MB, needs PyPI), for reference/run_gpu.sh
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${SHARED:-../shared}
mkdir -p .devdata
cp "$SHARED/data/cifar10-mini.npz" .devdata/
git rev-parse HEAD > .devdata/COMMIT   # the copy on the GPU machine has no .git
if [ "${1:-}" = reference ]; then
  cp "$SHARED/data/cifar10-q90.npz" "$SHARED/data/cifar10_jpeg.py" .devdata/
  [ -d .devdata/whl ] || bash "$SHARED/tools/snakemake_wheels.sh" .devdata/whl
fi
du -sh .devdata
