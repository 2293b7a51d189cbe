#!/usr/bin/env bash
# Fill .devdata/ (git-ignored, carried to the GPU machine: ../shared does not travel) with what the
# GPU scripts need. Run here, in the repository root, before the device call.
#   bash bench/prepare_devdata.sh             mini CIFAR-10, for bench/gpu_session.sh
#   bash bench/prepare_devdata.sh reference   the whole CIFAR-10 (q90, 35 MB) and Snakemake's wheels
#                                               (14 MB, needs PyPI), for reference/run_gpu.sh; no mini set
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${SHARED:-../shared}
mkdir -p .devdata
if [ "${1:-}" = reference ]; then
  # Not the mini set: what travels is at most 64 MiB, and q90 (35 MB) + wheels (14) + the tree (8)
  # + the mini (17) would be 70.
  rm -f .devdata/cifar10-mini.npz
else
  cp "$SHARED/data/cifar10-mini.npz" .devdata/
fi
git rev-parse HEAD > .devdata/COMMIT   # the copy on the GPU machine has no .git
# The copy that travels is the working tree: where tracked files differ from HEAD, the commit alone
# does not name the code. Say so here, and leave the list for the GPU scripts (run.json, env.txt).
git status --porcelain --untracked-files=no > .devdata/DIRTY
if [ -s .devdata/DIRTY ]; then
  echo "warning: uncommitted changes (the run's code is $(cut -c1-7 .devdata/COMMIT) plus these):" >&2
  cat .devdata/DIRTY >&2
fi
if [ "${1:-}" = reference ]; then
  cp "$SHARED/data/cifar10-q90.npz" "$SHARED/data/cifar10_jpeg.py" .devdata/
  # An absolute folder: the wheel script cds elsewhere to slim pulp's wheel (16 MB -> 3), and with a
  # relative one it fails after the downloads, leaving 26 MB. COMPLETE marks a finished folder.
  if [ ! -f .devdata/whl/COMPLETE ]; then
    rm -rf .devdata/whl
    bash "$SHARED/tools/snakemake_wheels.sh" "$PWD/.devdata/whl" && touch .devdata/whl/COMPLETE
  fi
fi
du -sh .devdata
KB=$(du -sk .devdata | cut -f1)
if [ "$KB" -gt $((54 * 1024)) ]; then   # the device tool carries 64 MiB in all, the tree (~8) included
  echo "warning: .devdata holds $((KB / 1024)) MiB: with the working tree it may pass the 64 MiB a call carries" >&2
fi
