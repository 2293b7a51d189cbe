#!/usr/bin/env bash
# Every GPU measurement of the speed issue in one call on a lent card, most important first, each
# step bounded so the whole script ends inside BUDGET_S seconds; results land in $OUT (8 files).
#
#   here:    bash bench/prepare_devdata.sh                     (nothing is needed but the checkout)
#   device:  run(command="bash bench/gpu_session.sh", carry=[".devdata"], timeout_s=600)
#   here:    python bench/gpu_report.py <files_at>             (bench/README.md tables, target verdicts)
#            python bench/write_timings.py <files_at>/resnet18.json --path "$FAST" --concurrency <files_at>/concurrency.json
#
# CPU smoke of the plumbing: SMOKE=1 OUT=/tmp/out bash bench/gpu_session.sh
set -u
OUT=${OUT:?set OUT to a folder for the results}
BUDGET_S=${BUDGET_S:-540}
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
START=$(date +%s)
LOG=$OUT/session.log
# The configs' CUDA keys (bench_step.FAST); the same with the fake quantizers as plain op chains,
# which inductor may fuse better than the hand-written autograd functions; and with CUDA graphs.
FAST=bf16=true,teacher_bf16=true,channels_last=true,compile=true,fused_optimizer=true
CHAIN=$FAST,fused_quant=false
GRAPHS=$FAST,compile_mode=reduce-overhead
if [ "${SMOKE:-0}" = 1 ]; then
  SIZE=(--batch 8 --steps 1 --rounds 1 --warmup 1)
  FAST=bf16=true,teacher_bf16=true,channels_last=true,fused_optimizer=true; CHAIN=$FAST,fused_quant=false; GRAPHS=$FAST
  CONC=(--batch 8 --seconds 1 --warmup 1 --jobs 1,2 --runtime compile=false)
else
  SIZE=(--batch 256 --steps 20 --rounds 5 --warmup 10)
  CONC=(--batch 256 --seconds 10 --warmup 10 --jobs 1,2,4)
fi

step() {  # step NAME MAX_SECONDS CMD...: run CMD for at most MAX_SECONDS and what is left of the budget
  local name=$1 max=$2; shift 2
  local left=$(( BUDGET_S - ($(date +%s) - START) ))
  local limit=$(( max < left ? max : left ))
  if [ "$limit" -lt 20 ]; then echo "== $name: skipped, ${left}s left" | tee -a "$LOG"; return; fi
  echo "== $name (limit ${limit}s): $*" | tee -a "$LOG"
  local t0=$(date +%s)
  timeout "$limit" "$@" 2>&1 | grep -v -e "^W[0-9]" -e "Warning" | tee -a "$LOG"
  echo "== $name: exit ${PIPESTATUS[0]} after $(( $(date +%s) - t0 ))s" | tee -a "$LOG"
}

{ date -u; nvidia-smi -L 2>/dev/null || echo "no nvidia-smi"; python3 -c 'import torch, sys; print("python", sys.version.split()[0], "torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no CUDA")'; echo "fpq $(cat .devdata/COMMIT 2>/dev/null || git rev-parse HEAD 2>/dev/null)"; } > "$OUT/env.txt" 2>&1
cat "$OUT/env.txt" | tee -a "$LOG"

# 1. ResNet-18 W2A4, LSQ and FPQ: plain loop, fpq eager, fpq fast, fpq fast with op-chain quantizers
#    -> LSQ <= 0.3x plain, FPQ <= 1.25x LSQ, and which quantizer form inductor fuses better
step resnet18 300 python3 bench/bench_step.py --models resnet18 --methods lsq,fpq "${SIZE[@]}" \
  --also "$FAST" --also "$CHAIN" --json "$OUT/resnet18.json"
# 2. where FPQ's cost goes on the fast path: LSQ+SFP, LSQ+CSD, KD (LSQ and FPQ are in step 1), and FP
step breakdown 120 python3 bench/bench_step.py --models resnet18 --methods fp,lsq+sfp,lsq+csd,kd "${SIZE[@]}" \
  --runtime "$FAST" --json "$OUT/breakdown.json"
# 3. the launch-bound small models with CUDA graphs (ResNet-20, MobileNetV2), for the budget
step small 60 python3 bench/bench_step.py --models resnet20,mobilenetv2 --methods lsq,fpq "${SIZE[@]}" \
  --also "$GRAPHS" --json "$OUT/small.json"
# 4. jobs per GPU: 1, 2 and 4 concurrent ResNet-20 jobs on the one GPU
step concurrency 40 python3 bench/concurrency.py --model resnet20 --method lsq "${CONC[@]}" --json "$OUT/concurrency.json"
# 5. the slot pool on a real GPU: two holders, one GPU, two jobs per GPU -> the same physical device
step pool 25 env FPQ_JOBS_PER_GPU=2 bash bench/gpu_pool_check.sh
# 6. ResNet-50 on the fast path, for the budget (compiles are long: last)
step resnet50 120 python3 bench/bench_step.py --models resnet50 --methods fp,lsq,fpq "${SIZE[@]}" \
  --runtime "$FAST" --json "$OUT/resnet50.json"
echo "== total $(( $(date +%s) - START ))s" | tee -a "$LOG"
