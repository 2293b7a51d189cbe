#!/usr/bin/env bash
# The reference run (config/reference.yaml) on a lent GPU machine, with Snakemake, in one or two
# device calls in a row (reference/README.md, "Next edition", has the exact calls):
#   here:    bash bench/prepare_devdata.sh reference
#   device:  run(command="BUDGET_S=540 bash reference/run_gpu.sh", carry=[".devdata"], timeout_s=600)
#   device, at once (the machine keeps git-ignored outputs ~30 s after a call):
#            run(command="CONTINUATION=1 BUDGET_S=<budget_left_s - 60> bash reference/run_gpu.sh",
#                carry=[".devdata"], timeout_s=<BUDGET_S + 30>)
#   here:    fpq unpack <files_at>/reference.tar.gz --block --into reference/blocks   (the last call's pack
#            becomes the study's next block: a config with `blocks:` trains only the seeds no block finished)
# A second call continues the first's DAG: finished jobs stay done (their outputs are still there),
# an interrupted training resumes from its last epoch's checkpoint (--rerun-incomplete).
# Each call is time-boxed: at the box Snakemake gets SIGTERM (it starts no new job), GRACE_S later
# SIGINT goes to its process group (the running jobs stop; their checkpoints stay), then SIGKILL if
# need be. Whatever happened, the tables and figures are (re)built from what exists and packed:
# reference.tar.gz holds the results (no weights) and a run.json that says which call it came
# from, whether the DAG completed, and what is still missing. The GPU machine has torch, pandas,
# tabulate, matplotlib, jinja2 but no Snakemake: its wheels come in .devdata/whl.
set -u
OUT=${OUT:?set OUT to a folder for the results}
BUDGET_S=${BUDGET_S:-540}          # the whole script; one device call allows 600
GRACE_S=${GRACE_S:-15}             # after the box: no new jobs, the running ones may finish an epoch
RESERVE_S=${RESERVE_S:-30}         # stopping the jobs, then index, tables, figures and the pack (~12 s)
JOBS_PER_GPU=${JOBS_PER_GPU:-3}
CONFIG=${CONFIG:-config/reference.yaml}
CONTINUATION=${CONTINUATION:-0}    # 1: continue an earlier call's DAG; stop at once if none is here
STOP_WHEN=${STOP_WHEN:-}           # tests only: a glob; once a file matches, the box counts as over
DATA_LABEL=${DATA_LABEL:-CIFAR-10 (q90 copy)}
START=$(date +%s)
LOG=$OUT/session.log
# The tree copied to a GPU machine may carry a stale .git (on 2026-11-27 it named the checkout's first
# commit): the commit it was copied from comes with .devdata (prepare_devdata.sh) and wins.
export FPQ_GIT_COMMIT=${FPQ_GIT_COMMIT:-$(cat .devdata/COMMIT 2>/dev/null || git rev-parse HEAD 2>/dev/null || echo unknown)}
CODE_DIRTY=$([ -s .devdata/DIRTY ] && echo true || { [ -f .devdata/DIRTY ] && echo false || echo unknown; })
BIN=$(mktemp -d)                   # the `fpq` command the rules call: the checkout, uninstalled
export PYTHONPATH=$PWD:/tmp/site${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 PATH=$BIN:$PATH
say() { echo "== $(( $(date +%s) - START ))s: $*" | tee -a "$LOG"; }
SM=
stop_group() { [ -n "$SM" ] && kill -0 "$SM" 2>/dev/null && kill -INT -- "-$SM" 2>/dev/null; }
trap 'stop_group; exit 143' TERM INT

say "install Snakemake from .devdata/whl; fpq runs from the checkout"
if ! python3 -c "import snakemake" 2>/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .devdata/whl/*.whl >>"$LOG" 2>&1
fi
printf '#!/bin/sh\nexec python3 -m fpq.cli "$@"\n' > "$BIN/fpq" && chmod +x "$BIN/fpq"
{ date -u; nvidia-smi -L 2>/dev/null; python3 -c 'import torch, sys, snakemake; print("python", sys.version.split()[0], "torch", torch.__version__, "cuda", torch.version.cuda, "snakemake", snakemake.__version__, torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no CUDA")'; echo "fpq $FPQ_GIT_COMMIT (uncommitted changes when prepared: $CODE_DIRTY)"; } > "$OUT/env.txt" 2>&1
cat "$OUT/env.txt" | tee -a "$LOG"

CALL=$(python3 reference/chain.py begin "$CONFIG" 2>>"$LOG") || { say "cannot read the chain of calls"; exit 2; }
say "call $CALL of this DAG on this machine"
if [ "$CONTINUATION" = 1 ] && [ "$CALL" = 1 ]; then
  say "CONTINUATION=1 but no earlier call left results here (a fresh machine?): nothing to continue;" \
      "the first call's pack is the result"
  exit 3
fi

if grep -q '\.devdata/cifar10\.npz' "$CONFIG" && [ -f .devdata/cifar10-q90.npz ] && [ ! -f .devdata/cifar10.npz ]; then
  say "unpack the whole CIFAR-10 (q90 copy)"
  python3 .devdata/cifar10_jpeg.py unpack .devdata/cifar10-q90.npz .devdata/cifar10.npz >>"$LOG" 2>&1
  # Every run has the data as an input: a fixed old date, so that a copy unpacked again by a later
  # call (carry replaces .devdata) is not newer than the results and reruns nothing.
  touch -d @946684800 .devdata/cifar10.npz
fi

LEFT=$(( BUDGET_S - ($(date +%s) - START) - RESERVE_S - GRACE_S ))
say "snakemake for at most ${LEFT}s (+${GRACE_S}s grace), $JOBS_PER_GPU jobs on the GPU"
T0=$(date +%s)
set -m                             # Snakemake and its jobs in a process group of their own
FPQ_JOBS_PER_GPU=$JOBS_PER_GPU python3 -m snakemake --cores all --resources gpu="$JOBS_PER_GPU" \
  --configfile "$CONFIG" --keep-going --rerun-incomplete > "$OUT/snakemake.log" 2>&1 &
SM=$!
set +m
STOPPED=0 KILLED=0
alive() { kill -0 "$SM" 2>/dev/null; }
wait_up_to() { local i=0; while alive && [ "$i" -lt "$1" ]; do sleep 1; i=$((i + 1)); done; }
while alive; do
  if [ $(( $(date +%s) - T0 )) -ge "$LEFT" ] || { [ -n "$STOP_WHEN" ] && compgen -G "$STOP_WHEN" >/dev/null; }; then
    STOPPED=1
    say "time box: SIGTERM to Snakemake (no new jobs), ${GRACE_S}s for the running ones"
    kill -TERM "$SM" 2>/dev/null
    wait_up_to "$GRACE_S"
    if alive; then say "SIGINT to Snakemake and its jobs"; kill -INT -- "-$SM" 2>/dev/null; wait_up_to 20; fi
    if alive; then
      say "SIGKILL to Snakemake and its jobs"; kill -KILL -- "-$SM" 2>/dev/null; KILLED=1
    fi
    break
  fi
  sleep 1
done
wait "$SM" 2>/dev/null
CODE=$?
if [ "$KILLED" = 1 ]; then   # a killed Snakemake keeps its lock on the outputs: the next call needs it gone
  python3 -m snakemake --unlock --configfile "$CONFIG" >>"$LOG" 2>&1
fi
SM=
WALL=$(( $(date +%s) - T0 ))
say "snakemake exit $CODE after ${WALL}s$([ $STOPPED = 1 ] && echo ', stopped by the time box')"

say "tables and figures from the run index (whatever finished), for the pack"
# Built in STAGE, not in the config's folders: there they would be Snakemake's targets, present, and
# a next call's Snakemake would run nothing. The index depends on the config alone.
STAGE=$(mktemp -d)
RESULTS=$(python3 reference/chain.py results "$CONFIG")
BLOCKS=$(python3 reference/chain.py blocks "$CONFIG")   # a study made of sittings: its blocks pooled in
[ -f "$RESULTS/index.json" ] || fpq index --configfile "$CONFIG" >>"$LOG" 2>&1
fpq tables --index "$RESULTS/index.json" --results "$RESULTS" --out "$STAGE/tables" ${BLOCKS:+--blocks "$BLOCKS"} >>"$LOG" 2>&1
fpq figures --index "$RESULTS/index.json" --results "$RESULTS" --out "$STAGE/figures" ${BLOCKS:+--blocks "$BLOCKS"} >>"$LOG" 2>&1
python3 reference/chain.py run-json "$CONFIG" snakemake_exit="$CODE" snakemake_wall_s="$WALL" \
  stopped_by_time_box="$STOPPED" code="$FPQ_GIT_COMMIT" code_dirty_when_prepared="$CODE_DIRTY" \
  jobs_per_gpu="$JOBS_PER_GPU" data="$DATA_LABEL" config_file="$CONFIG" > "$OUT/run.json" 2>>"$LOG"
python3 reference/chain.py pack "$CONFIG" "$STAGE/tables" "$STAGE/figures" "$OUT/reference.tar.gz" "$OUT/run.json" \
  2>&1 | tee -a "$LOG"
cp "$CONFIG" "$OUT/"
python3 reference/chain.py summary "$OUT/run.json" | tee -a "$LOG"
rm -rf "$STAGE" "$BIN"
say "done"
