#!/usr/bin/env bash
# The GPU speed harness: every path is its own process (bench/bench_path.py, through the `fpq qat`
# path: the cell's RunConfig, train.py's builders and TrainStep, the DeviceLoader) with its own time
# box, appends its row to $OUT/session.json the moment it is measured, and a path that runs out of
# its box is written "over N s" (one that crashes "failed (exit N)", one the budget never reached
# "not run"): no path is left out. At the end, gpu_report.py writes report.md and summary.json.
#
#   here:    bash bench/prepare_devdata.sh        (the commit and the dirty list; the data for `agree`)
#   device:  run(command="bash bench/gpu_harness.sh", carry=[".devdata"], timeout_s=600)
#   here:    cp <files_at>/* bench/results/h200-<date>/
#            python bench/write_timings.py --summary bench/results/h200-<date>/summary.json
#   (bench/gpu_campaign.sh runs this first, then the reference run.)
#
# Order, most important first (ResNet-18 W2A4, batch 256):
#  0. FP, LSQ, LSQ+CSD, FPQ on the CUDA graph with the Triton kernels (runtime.kernels=triton) and
#     with the torch path, side by side; agree-triton: the kernels against the torch path from one
#     state (50 steps' losses of LSQ+CSD; one epoch's train and test accuracy each with the data);
#     0b. the kernels' tile sizes and warps (bench/kernel_tiles.py: tiles.json, the pick);
#  1. agree: the graph step against the eager step from one state (50 steps' losses; one epoch's
#     test accuracy each when .devdata/cifar10.npz is there);
#  2. FP, LSQ, FPQ, LSQ+CSD, each eager (paper.yaml's CUDA keys without compile: bf16, bf16 teacher,
#     NHWC, fused SGD; the torch path) beside the graph rows of part 0;
#  3. GPU sharing: k = 1, 2, 4 FPQ jobs (graph path) as separate processes on the one GPU, then
#     k = 2, 4 under CUDA MPS (started here, stopped after; "MPS: cannot" if it cannot run);
#  4. as time allows: the Hessian trajectory point, FPQ's pieces, the configs' compile path, the
#     other archs' LSQ and FPQ, k = 8.
#
# CPU smoke of the plumbing (tests/test_bench.py): SMOKE=1 OUT=/tmp/out bash bench/gpu_harness.sh
#   TINY_BOX="resnet20/lsq/eager" gives that path a 1-second box and a million warm-up steps (the
#   test's "over" row, whatever the machine's speed); BUDGET_S=0 writes every row "not run";
#   OTHER_ARCHS="..." replaces the list of other archs, CORE_ARCH=resnet20 the first model. With
#   TRITON_INTERPRET=1 (the tests set it) the triton rows run the kernels in Triton's interpreter.
set -u
OUT=${OUT:?set OUT to a folder for the results}
mkdir -p "$OUT"
BUDGET_S=${BUDGET_S:-540}
CORE=${CORE_ARCH:-resnet18}
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
export FPQ_GIT_COMMIT=${FPQ_GIT_COMMIT:-$(cat .devdata/COMMIT 2>/dev/null || git rev-parse HEAD 2>/dev/null || echo unknown)}
START=$(date +%s)
JSON=$OUT/session.json
LOG=$OUT/session.log
EAGER=compile=false,kernels=torch
GRAPH=compile=false,cuda_graph=true,kernels=torch
TRITON=compile=false,cuda_graph=true,kernels=triton
DATA=${AGREE_DATA:-.devdata/cifar10.npz}
if [ "${SMOKE:-0}" = 1 ]; then
  SIZE=(--batch 8 --steps 1 --rounds 1 --warmup 1 --threads 1)
  SHARE=(--seconds 1); AGREE=(--agree-steps 2)
  MIN_LEFT=1; BOX=60; SHARE_BOX=90
  TBOX=300  # the triton rows run in Triton's interpreter on the CPU: minutes, not seconds
  TSIZE=(--batch 2)  # ... so on 2 images a step; the config's own row takes the CPU's torch path
  CONFIG_INTERPRET=0
  TILES=(--batch 2 --size 8 --repeats 1 --seconds 4); TILES_BOX=120  # the interpreter: plumbing, not speed
  OTHER_ARCHS=${OTHER_ARCHS:-resnet20}
  DATA=none
else
  SIZE=(--batch 256 --steps 10 --rounds 3 --warmup 5)
  SHARE=(--seconds 6); AGREE=(--agree-steps 50)
  MIN_LEFT=12; BOX=${BOX:-25}; SHARE_BOX=${SHARE_BOX:-30}
  TBOX=${TBOX:-$BOX}
  TSIZE=(); CONFIG_INTERPRET=${TRITON_INTERPRET:-0}
  TILES=(--seconds 40); TILES_BOX=${TILES_BOX:-50}
  OTHER_ARCHS=${OTHER_ARCHS:-resnet20 mobilenetv2 resnet50 mobilenetv1}
fi

path() {  # path ARCH PATH VARIANT RUNTIME BOX [extra args]: one process, at most BOX s and what is left
  local arch=$1 name=$2 variant=$3 runtime=$4 box=$5
  shift 5
  [ "${TINY_BOX:-}" = "$arch/$name/$variant" ] && { box=1; set -- "$@" --warmup 1000000; }
  local ids=(--arch "$arch" --path "$name" --variant "$variant" --runtime "$runtime" --json "$JSON")
  local left=$(( BUDGET_S - ($(date +%s) - START) ))
  if [ "$left" -lt "$MIN_LEFT" ]; then
    python3 bench/bench_path.py "${ids[@]}" --skipped 2>&1 | tee -a "$LOG"; return
  fi
  local limit=$(( box < left ? box : left ))
  echo "== $arch $name [$variant] (box ${limit}s) $runtime $*" >> "$LOG"
  timeout -k 5 "$limit" python3 bench/bench_path.py "${ids[@]}" "${SIZE[@]}" "$@" >> "$LOG" 2>&1
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

MPS_DIR=/tmp/fpq-harness-mps
mps_start() {  # the MPS control daemon for the shared rows; one line and a non-zero status if it cannot
  command -v nvidia-cuda-mps-control >/dev/null || { echo "MPS: cannot (no nvidia-cuda-mps-control)" | tee -a "$LOG"; return 1; }
  mkdir -p "$MPS_DIR/pipe" "$MPS_DIR/log"
  CUDA_MPS_PIPE_DIRECTORY=$MPS_DIR/pipe CUDA_MPS_LOG_DIRECTORY=$MPS_DIR/log nvidia-cuda-mps-control -d >> "$LOG" 2>&1 \
    || { echo "MPS: cannot (the daemon did not start)" | tee -a "$LOG"; return 1; }
  echo "MPS: daemon started" | tee -a "$LOG"
}
mps_stop() { echo quit | CUDA_MPS_PIPE_DIRECTORY=$MPS_DIR/pipe nvidia-cuda-mps-control >> "$LOG" 2>&1; sleep 1; }

{ date -u; nvidia-smi -L 2>/dev/null || echo "no nvidia-smi"
  python3 -c 'import torch, sys; print("python", sys.version.split()[0], "torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no CUDA")'
  echo "fpq $FPQ_GIT_COMMIT"
  [ -s .devdata/DIRTY ] && { echo "uncommitted changes in the copy:"; cat .devdata/DIRTY; }; } > "$OUT/env.txt" 2>&1
tee -a "$LOG" < "$OUT/env.txt"
if [ "$DATA" != none ] && [ ! -f "$DATA" ] && [ -f .devdata/cifar10-q90.npz ]; then
  python3 .devdata/cifar10_jpeg.py unpack .devdata/cifar10-q90.npz "$DATA" >> "$LOG" 2>&1
  touch -d @946684800 "$DATA"  # as reference/run_gpu.sh does: older than any result
fi
AGREE_ARGS=("${AGREE[@]}"); [ -f "$DATA" ] && AGREE_ARGS+=(--data "$DATA")

# 0. The Triton kernels first: the four methods on the graph path with kernels=triton and with the
#    torch path, side by side, then the kernels against the torch path from one state.
for p in fp lsq lsq+csd fpq; do
  path "$CORE" "$p" graph-triton "$TRITON" "$TBOX" "${TSIZE[@]}"
  path "$CORE" "$p" graph "$GRAPH" "$BOX"
done
path "$CORE" agree-triton graph-triton "$TRITON" $(( TBOX > 90 ? TBOX : 90 )) "${AGREE_ARGS[@]}" "${TSIZE[@]}"
# 0b. The kernels' tiles and warps: each candidate timed on ResNet-18's maps, its row in tiles.json
#     at once; gpu_report.py --choose passes the fastest agreeing one on (KERNEL_TUNING).
LEFT=$(( BUDGET_S - ($(date +%s) - START) ))
if [ "$LEFT" -ge "$MIN_LEFT" ]; then
  BOX_T=$(( TILES_BOX < LEFT ? TILES_BOX : LEFT ))
  echo "== kernel tiles (box ${BOX_T}s)" >> "$LOG"
  timeout -k 5 "$BOX_T" python3 bench/kernel_tiles.py --json "$OUT/tiles.json" "${TILES[@]}" >> "$LOG" 2>&1
  tail -n 1 "$LOG"
else
  echo "kernel tiles: not run (the budget is spent)" | tee -a "$LOG"
fi
# 1. Graph against eager from one state (before the eager rows: a box cut short after it still
#    leaves the graph chosen, gpu_report.py's "fpq [eager] not measured").
path "$CORE" agree graph "$GRAPH" 60 "${AGREE_ARGS[@]}"
# 2. The same four methods eager (the graph rows are above).
for p in fp lsq fpq lsq+csd; do path "$CORE" "$p" eager "$EAGER" "$BOX"; done
# 3. Jobs sharing the GPU: plain time slicing, then MPS.
for k in 1 2 4; do path "$CORE" fpq "share$k" "$GRAPH" "$SHARE_BOX" --jobs "$k" "${SHARE[@]}"; done
if [ "${SMOKE:-0}" != 1 ] && mps_start; then
  for k in 2 4; do CUDA_MPS_PIPE_DIRECTORY=$MPS_DIR/pipe path "$CORE" fpq "share$k-mps" "$GRAPH" "$SHARE_BOX" --jobs "$k" "${SHARE[@]}"; done
  mps_stop
fi
python3 bench/gpu_report.py "$OUT" --summary "$OUT/summary.json" > "$OUT/report.md" 2>> "$LOG"
# 4. As time allows (each "not run" once the budget is spent; TAIL=0 leaves it out).
[ "${TAIL:-1}" = 0 ] && { echo "== total $(( $(date +%s) - START ))s" | tee -a "$LOG"; exit 0; }
path "$CORE" hessian graph "$GRAPH" "$BOX" --steps 2 --rounds 2 --warmup 1
for p in teacher csd sfp; do path "$CORE" "$p" eager "$EAGER" "$BOX"; done
TRITON_INTERPRET=$CONFIG_INTERPRET path "$CORE" fpq config "" 60
for a in $OTHER_ARCHS; do for p in lsq fpq; do path "$a" "$p" graph "$GRAPH" "$BOX"; done; done
for a in $OTHER_ARCHS; do for p in lsq fpq; do path "$a" "$p" graph-triton "$TRITON" "$TBOX" "${TSIZE[@]}"; done; done
path "$CORE" fpq share8 "$GRAPH" "$SHARE_BOX" --jobs 8 "${SHARE[@]}"
python3 bench/gpu_report.py "$OUT" --summary "$OUT/summary.json" > "$OUT/report.md" 2>> "$LOG"
echo "== total $(( $(date +%s) - START ))s" | tee -a "$LOG"
