#!/usr/bin/env bash
# The GPU speed harness of round 3 (successor of gpu_session.sh): every path is its own process
# (bench/bench_path.py) with its own time box, appends its row to $OUT/session.json the moment it
# is measured, and a path that runs out of its box is written as "over N s" (one that crashes as
# "failed (exit N)", one the session budget never reached as "not run"): no path is left out.
#
#   here:    bash bench/prepare_devdata.sh        (the commit and the dirty list; the harness needs no data)
#   device:  run(command="bash bench/gpu_harness.sh", carry=[".devdata/COMMIT", ".devdata/DIRTY"], timeout_s=600)
#   here:    python bench/gpu_report.py <files_at> --summary bench/results/h200-<date>/summary.json
#            python bench/write_timings.py --summary bench/results/h200-<date>/summary.json
#
# Order, most important first: ResNet-18 W2A4 (FP, LSQ, LSQ+CSD, FPQ and FPQ's pieces: teacher
# forward, CSD, the CSD oracle, SFP) on the eager fast path, at most 4 minutes of boxes; then the
# keys that build something (teacher CUDA graph, compiled CSD, the configs' whole-step compile,
# each boxed at 60 s, the most a default path may take to build); then the other archs.
# "eager" = config/paper.yaml's runtime on CUDA (bf16, bf16 teacher, NHWC, fused SGD) without
# torch.compile; "config" = exactly what paper.yaml asks (today: compile on CUDA).
#
# CPU smoke of the plumbing (tests/test_bench.py): SMOKE=1 OUT=/tmp/out bash bench/gpu_harness.sh
#   TINY_BOX="resnet18/lsq/config" gives that path a 1-second box (the test's forced "over" row);
#   OTHER_ARCHS="..." replaces the list of other archs, CORE_ARCH=resnet20 the first model (the test's
#   CPU time; on a GPU it stays resnet18, the model of the targets).
set -u
OUT=${OUT:?set OUT to a folder for the results}
mkdir -p "$OUT"
BUDGET_S=${BUDGET_S:-540}
CORE=${CORE_ARCH:-resnet18}
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
export FPQ_GIT_COMMIT=${FPQ_GIT_COMMIT:-$(cat .devdata/COMMIT 2>/dev/null || git rev-parse HEAD 2>/dev/null || echo unknown)}
START=$(date +%s)
SUFFIX=${PARTS:+-p${PARTS// /}}  # a second call's files (PARTS=3: session-p3.json ...) do not overwrite the first's
JSON=$OUT/session$SUFFIX.json
LOG=$OUT/session$SUFFIX.log
EAGER=compile=false
CONFIG=
GRAPH=compile=false,teacher_cuda_graph=true
CSDC=compile=false,csd_compile=true
if [ "${SMOKE:-0}" = 1 ]; then
  SIZE=(--batch 8 --steps 1 --rounds 1 --warmup 1 --threads 1)
  MIN_LEFT=1; BOX=60; BUILD_BOX=60; PIECE_BOX=60
  CSDC=$EAGER  # no inductor build on the CPU smoke (minutes there); the row and its plumbing stay
  OTHER_ARCHS=${OTHER_ARCHS:-resnet20}
else
  SIZE=(--batch 256 --steps 10 --rounds 3 --warmup 5)
  MIN_LEFT=15; BOX=35; BUILD_BOX=60; PIECE_BOX=25  # 4 x 35 + 4 x 25 = 240 s: ResNet-18's core
  OTHER_ARCHS=${OTHER_ARCHS:-resnet20 mobilenetv2 resnet50 mobilenetv1}
fi

part() { case " ${PARTS:-1 2 3} " in *" $1 "*) return 0;; *) return 1;; esac; }  # PARTS=3: a second call

path() {  # path ARCH PATH VARIANT RUNTIME BOX: one process, at most BOX s and what is left of the budget
  local arch=$1 name=$2 variant=$3 runtime=$4 box=$5
  [ "${TINY_BOX:-}" = "$arch/$name/$variant" ] && box=1
  local ids=(--arch "$arch" --path "$name" --variant "$variant" --runtime "$runtime" --json "$JSON")
  local left=$(( BUDGET_S - ($(date +%s) - START) ))
  if [ "$left" -lt "$MIN_LEFT" ]; then
    python3 bench/bench_path.py "${ids[@]}" --skipped 2>&1 | tee -a "$LOG"; return
  fi
  local limit=$(( box < left ? box : left ))
  echo "== $arch $name [$variant] (box ${limit}s) $runtime" >> "$LOG"
  timeout -k 5 "$limit" python3 bench/bench_path.py "${ids[@]}" "${SIZE[@]}" >> "$LOG" 2>&1
  local rc=$?
  if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
    python3 bench/bench_path.py "${ids[@]}" --over "$limit" 2>&1 | tee -a "$LOG"
  elif [ "$rc" != 0 ]; then
    python3 bench/bench_path.py "${ids[@]}" --failed "$rc" 2>&1 | tee -a "$LOG"
    tail -n 5 "$LOG"
  else
    tail -n 1 "$LOG"
  fi
}

{ date -u; nvidia-smi -L 2>/dev/null || echo "no nvidia-smi"
  python3 -c 'import torch, sys; print("python", sys.version.split()[0], "torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no CUDA")'
  echo "fpq $FPQ_GIT_COMMIT"
  [ -s .devdata/DIRTY ] && { echo "uncommitted changes in the copy:"; cat .devdata/DIRTY; }; } > "$OUT/env$SUFFIX.txt" 2>&1
tee -a "$LOG" < "$OUT/env$SUFFIX.txt"

# 1. ResNet-18 W2A4 on the eager fast path: the four methods of the targets, then FPQ's pieces.
if part 1; then
  for p in fp lsq lsq+csd fpq; do path "$CORE" "$p" eager "$EAGER" "$BOX"; done
  for p in teacher csd csd-reference sfp; do path "$CORE" "$p" eager "$EAGER" "$PIECE_BOX"; done
fi
# 2. What building costs and whether it pays: the teacher's CUDA graph, CSD compiled alone, and the
#    configs' own path (whole-step torch.compile), each in the 60 s a default path may take to build.
if part 2; then
  path "$CORE" fpq graph "$GRAPH" "$BOX"
  path "$CORE" teacher graph "$GRAPH" "$PIECE_BOX"
  path "$CORE" csd csdc "$CSDC" 40
  path "$CORE" fpq csdc "$CSDC" "$BUILD_BOX"
  path "$CORE" lsq config "$CONFIG" "$BUILD_BOX"
  path "$CORE" fpq config "$CONFIG" "$BUILD_BOX"
fi
# 3. The other archs, LSQ and FPQ, as time allows (what is not reached is written "not run").
if part 3; then for a in $OTHER_ARCHS; do for p in lsq fpq; do path "$a" "$p" eager "$EAGER" "$BOX"; done; done; fi
python3 bench/gpu_report.py "$OUT" --summary "$OUT/summary$SUFFIX.json" > "$OUT/report$SUFFIX.md" 2>> "$LOG"
echo "== total $(( $(date +%s) - START ))s" | tee -a "$LOG"
