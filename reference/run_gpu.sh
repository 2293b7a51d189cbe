#!/usr/bin/env bash
# The reference run (config/reference.yaml) on a lent GPU machine, with Snakemake, in one call.
#   here:    bash bench/prepare_devdata.sh reference
#   device:  run(command="bash reference/run_gpu.sh", carry=[".devdata"], timeout_s=600)
#   here:    fpq unpack <files_at>/reference.tar.gz --into reference/   (then reference/README.md)
# The GPU machine has torch, pandas, tabulate, matplotlib, jinja2 but no Snakemake: its wheels come
# in .devdata/whl. Whatever happens, the results that exist are packed: Snakemake is time-boxed
# (--keep-going), then tables and figures are (re)built from the run index, missing runs listed.
set -u
OUT=${OUT:?set OUT to a folder for the results}
BUDGET_S=${BUDGET_S:-540}          # the whole script; the device call allows 600
JOBS_PER_GPU=${JOBS_PER_GPU:-3}
CONFIG=${CONFIG:-config/reference.yaml}
START=$(date +%s)
LOG=$OUT/session.log
# The tree copied to a GPU machine may carry a stale .git (on 2026-11-27 it named the checkout's first
# commit): the commit it was copied from comes with .devdata (prepare_devdata.sh) and wins.
export FPQ_GIT_COMMIT=${FPQ_GIT_COMMIT:-$(cat .devdata/COMMIT 2>/dev/null || git rev-parse HEAD 2>/dev/null || echo unknown)}
BIN=$(mktemp -d)                   # the `fpq` command the rules call: the checkout, uninstalled
export PYTHONPATH=$PWD:/tmp/site${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 PATH=$BIN:$PATH
say() { echo "== $(( $(date +%s) - START ))s: $*" | tee -a "$LOG"; }

say "install Snakemake from .devdata/whl; fpq runs from the checkout"
if ! python3 -c "import snakemake" 2>/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .devdata/whl/*.whl >>"$LOG" 2>&1
fi
printf '#!/bin/sh\nexec python3 -m fpq.cli "$@"\n' > "$BIN/fpq" && chmod +x "$BIN/fpq"
{ date -u; nvidia-smi -L 2>/dev/null; python3 -c 'import torch, sys, snakemake; print("python", sys.version.split()[0], "torch", torch.__version__, "cuda", torch.version.cuda, "snakemake", snakemake.__version__, torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no CUDA")'; echo "fpq $FPQ_GIT_COMMIT"; } > "$OUT/env.txt" 2>&1
cat "$OUT/env.txt" | tee -a "$LOG"

if [ -f .devdata/cifar10-q90.npz ] && [ ! -f .devdata/cifar10.npz ]; then
  say "unpack the whole CIFAR-10 (q90 copy)"
  python3 .devdata/cifar10_jpeg.py unpack .devdata/cifar10-q90.npz .devdata/cifar10.npz >>"$LOG" 2>&1
fi

LEFT=$(( BUDGET_S - ($(date +%s) - START) - 45 ))   # 45 s kept for tables, figures and the pack
say "snakemake for at most ${LEFT}s, $JOBS_PER_GPU jobs on the GPU"
T0=$(date +%s)
FPQ_JOBS_PER_GPU=$JOBS_PER_GPU timeout "$LEFT" python3 -m snakemake --cores all --resources gpu="$JOBS_PER_GPU" \
  --configfile "$CONFIG" --keep-going --rerun-incomplete > "$OUT/snakemake.log" 2>&1
CODE=$?
WALL=$(( $(date +%s) - T0 ))
say "snakemake exit $CODE after ${WALL}s"

say "tables and figures from the run index (whatever finished)"
fpq index --configfile "$CONFIG" >>"$LOG" 2>&1
fpq tables --configfile "$CONFIG" >>"$LOG" 2>&1
fpq figures --configfile "$CONFIG" >>"$LOG" 2>&1
GPU=$(python3 -c 'import torch; print(torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none")' 2>/dev/null)
TORCH=$(python3 -c 'import torch; print(torch.__version__)' 2>/dev/null)
COMMIT=$FPQ_GIT_COMMIT
INFO="{\"gpu\": \"$GPU\", \"torch\": \"$TORCH\", \"code\": \"$COMMIT\", \"snakemake_exit\": $CODE, \"snakemake_wall_s\": $WALL, \"jobs_per_gpu\": $JOBS_PER_GPU, \"data\": \"CIFAR-10 (q90 copy)\", \"config_file\": \"$CONFIG\", \"date\": \"$(date -u +%FT%TZ)\"}"
fpq pack --configfile "$CONFIG" --out "$OUT/reference.tar.gz" --info "$INFO" 2>&1 | tee -a "$LOG"
cp "$CONFIG" "$OUT/"
say "done"
