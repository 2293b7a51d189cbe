#!/usr/bin/env bash
# Every GPU measurement of issue 6 in one call on a lent card, most important first, each step
# bounded so the whole script ends inside BUDGET_S seconds; results land in $OUT (at most 8 files).
#
#   device run:  bash bench/gpu_session.sh        (carry .devdata: the mini CIFAR-10 for the policy check)
#   here:        python bench/gpu_report.py <files_at>   (table, target verdicts)
#                python bench/write_timings.py <files_at>/resnet18.json --path <fast label>   (budget)
#
# CPU smoke of the plumbing: SMOKE=1 OUT=/tmp/out bash bench/gpu_session.sh
set -u
OUT=${OUT:?set OUT to a folder for the results}
BUDGET_S=${BUDGET_S:-540}
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
START=$(date +%s)
LOG=$OUT/session.log
FAST=bf16=true,teacher_bf16=true,channels_last=true,compile=true,fused_optimizer=true
GRAPHS=$FAST,compile_mode=reduce-overhead
if [ "${SMOKE:-0}" = 1 ]; then
  SIZE=(--batch 8 --steps 1 --rounds 1 --warmup 1)
  FAST=bf16=true,teacher_bf16=true,channels_last=true,fused_optimizer=true; GRAPHS=$FAST
  POLICY=(--seeds 2 --train 256 --teacher-epochs 1 --epochs 1 --device auto)
else
  SIZE=(--batch 256 --steps 20 --rounds 5 --warmup 10)
  POLICY=(--seeds 3 --train 5000 --teacher-epochs 15 --epochs 5 --device cuda)
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

{ date -u; nvidia-smi -L 2>/dev/null || echo "no nvidia-smi"; python3 -c 'import torch, sys; print("python", sys.version.split()[0], "torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no CUDA")'; } > "$OUT/env.txt" 2>&1
cat "$OUT/env.txt" | tee -a "$LOG"

# 1. targets 1 and 2: ResNet-18 plain loop, fpq eager (fused, fp32) and fpq fast, side by side
step resnet18 300 python3 bench/bench_step.py --models resnet18 --methods fp,lsq,fpq "${SIZE[@]}" \
  --also "$FAST" --json "$OUT/resnet18.json"
# 2. target 3: ResNet-20 LSQ at batch 256, compiled, and compiled with CUDA graphs (launch-bound model)
step resnet20 200 python3 bench/bench_step.py --models resnet20 --methods lsq "${SIZE[@]}" \
  --also "$FAST" --also "$GRAPHS" --json "$OUT/resnet20.json"
# 3. precision policy of the fast keys on real data (FPQ W2A4, seeds), fp32 vs bf16 student + teacher
step policy 150 python3 bench/policy_check.py --method fpq --key bf16,teacher_bf16 \
  --npz .devdata/cifar10-mini.npz "${POLICY[@]}" --json "$OUT/policy.json"
# 4. eager paths only (no compile) of the other models, for the budget and the eager ratios
step eager 150 python3 bench/bench_step.py --models resnet20,mobilenetv2 --methods fp,lsq,fpq "${SIZE[@]}" \
  --json "$OUT/eager.json"
echo "== total $(( $(date +%s) - START ))s" | tee -a "$LOG"
