#!/usr/bin/env bash
# GPU slot pool check (fpq/plan/gpu_slots.py), for a GPU machine: two `fpq gpu-slot` holders start at
# once; each then initializes CUDA on the device it was given and prints the PHYSICAL GPU behind it
# (name, UUID, PCI bus) and, while it holds CUDA, the compute processes per GPU UUID.
# Expect: FPQ_JOBS_PER_GPU=1 on one GPU -> the second holder waits ~5 s for the first;
#         FPQ_JOBS_PER_GPU=2 -> both at once on the same UUID; N GPUs -> different UUIDs.
# Usage, from the repo root: [FPQ_JOBS_PER_GPU=2] bash bench/gpu_pool_check.sh   (copy in $OUT/pool_check.txt)
set -u
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" FPQ_JOBS_PER_GPU="${FPQ_JOBS_PER_GPU:-1}"
export FPQ_GPU_LOCK_DIR="$(mktemp -d)"  # a pool of its own: real fpq jobs on this node are not disturbed
PROBE='import os, subprocess, time, torch
p, e = torch.cuda.get_device_properties(0), os.environ
torch.ones(1, device="cuda")
print(time.strftime("%T"), "holder", e["HOLDER"], "pid", os.getpid(),
      "CUDA_VISIBLE_DEVICES=" + e["CUDA_VISIBLE_DEVICES"], torch.cuda.get_device_name(0), "uuid", p.uuid,
      "pci %04x:%02x:%02x" % (p.pci_domain_id, p.pci_bus_id, p.pci_device_id), flush=True)
time.sleep(1)
subprocess.run(["nvidia-smi", "--query-compute-apps=pid,gpu_uuid", "--format=csv"])
time.sleep(2)'

hold() {  # $1: holder number. Take a slot for 5 s, then probe the device it printed.
    local out="$FPQ_GPU_LOCK_DIR/holder$1.out" dev
    python3 -m fpq.cli gpu-slot --hold 5 > "$out" &
    local pid=$!
    while [ ! -s "$out" ] && kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
    dev=$(head -n 1 "$out")
    echo "$(date +%T) holder $1: gpu-slot printed '${dev:-nothing}'"
    [ -n "$dev" ] && [ "$dev" != cpu ] && HOLDER=$1 CUDA_VISIBLE_DEVICES=$dev python3 -c "$PROBE"
    wait "$pid"
}

{
    echo "== $(date -Is) $(hostname) FPQ_JOBS_PER_GPU=$FPQ_JOBS_PER_GPU" \
         "CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES-unset}"
    nvidia-smi -L
    hold 1 & hold 2 &
    wait
    echo "== lock files: $(ls "$FPQ_GPU_LOCK_DIR" | grep lock | tr '\n' ' ')"
} 2>&1 | tee ${OUT:+"$OUT/pool_check.txt"}
rm -rf "$FPQ_GPU_LOCK_DIR"
