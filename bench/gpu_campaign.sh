#!/usr/bin/env bash
# The GPU campaign in one prepared script: the speed harness first (bench/gpu_harness.sh, its parts
# 1-3), then the reference run (config/reference.yaml through reference/run_gpu.sh) on the path the
# harness chose (the CUDA graph when it agreed with eager and is faster) with the jobs per GPU it
# measured to pay. Two device calls in a row continue one DAG (the machine keeps git-ignored files
# ~30 s after a call): one call pair is one sitting, one block of the study (reference/README.md):
# it trains its own teacher and the seeds no committed block in reference/blocks finished.
# HARNESS_S=0 skips the harness (its choices of 2026-12-04 are used): the whole budget goes to the DAG.
#   here:    bash bench/prepare_devdata.sh reference
#   device:  run(command="bash bench/gpu_campaign.sh", carry=[".devdata"], timeout_s=600)
#   device:  run(command="CONTINUATION=1 BUDGET_S=<budget_left_s - 60> bash bench/gpu_campaign.sh",
#                carry=[".devdata"], timeout_s=<BUDGET_S + 30>)
#   here:    tar -xzf <files_at>/bench.tar.gz -C bench/results/   (the harness: session.json, summary.json ...)
#            fpq unpack <files_at>/reference.tar.gz --block --into reference/blocks   (the last call's pack:
#            the new block), then fpq tables / fpq figures --blocks reference/blocks --out reference/tables|figures
# $OUT gets at most 8 files: bench.tar.gz (call 1), and run_gpu.sh's env.txt, session.log,
# snakemake.log, run.json, reference.tar.gz and the config it ran.
set -u
OUT=${OUT:?set OUT to a folder for the results}
BUDGET_S=${BUDGET_S:-570}
HARNESS_S=${HARNESS_S:-230}
START=$(date +%s)
STATE=${CAMPAIGN_STATE:-results/campaign.env}   # git-ignored, not carried: stays on the machine for call 2
mkdir -p "$(dirname "$STATE")"
if [ "${CONTINUATION:-0}" != 1 ] && [ "$HARNESS_S" = 0 ]; then
  # No harness this time: the choices measured on 2026-12-04 (bench/results/h200-2026-12-04): the
  # CUDA graph, 3 jobs at once (sharing adds no throughput, but the jobs' starts overlap), no MPS.
  # The Triton kernels were not measured then: the torch path.
  printf 'CUDA_GRAPH=true\nKERNELS=torch\nJOBS_PER_GPU=3\nFPQ_MPS=0\n' > "$STATE"
elif [ "${CONTINUATION:-0}" != 1 ]; then
  mkdir -p "$OUT/bench"
  echo "== harness, at most ${HARNESS_S}s"
  OUT=$OUT/bench BUDGET_S=$HARNESS_S TAIL=0 bash bench/gpu_harness.sh
  python3 bench/gpu_report.py "$OUT/bench" --choose > "$STATE" 2>> "$OUT/bench/session.log" \
    || printf 'CUDA_GRAPH=false\nKERNELS=torch\nJOBS_PER_GPU=3\nFPQ_MPS=0\n' > "$STATE"
  tar -czf "$OUT/bench.tar.gz" -C "$OUT" bench && rm -rf "$OUT/bench"
fi
. "$STATE"
KERNELS=${KERNELS:-torch}
export FPQ_KERNEL_TUNING=${KERNEL_TUNING:-}  # the tiles the harness measured fastest (kernels=triton only)
echo "== the reference run: cuda_graph=$CUDA_GRAPH, kernels=$KERNELS, $JOBS_PER_GPU jobs per GPU, MPS $FPQ_MPS"
CONFIG=${REFERENCE_CONFIG:-config/reference.yaml}
# Same run identities either way (speed keys are not part of them): the path the harness chose.
# The Triton kernels only where they agreed with the torch path and were faster (gpu_report --choose).
CONFIG_PATH=$(dirname "$STATE")/reference-path.yaml
sed -e "s/cuda_graph: true\([,}]\)/cuda_graph: $CUDA_GRAPH, kernels: $KERNELS\1/" \
    -e "s/^\( *\)cuda_graph: true *$/\1cuda_graph: $CUDA_GRAPH\n\1kernels: $KERNELS/" "$CONFIG" > "$CONFIG_PATH"
CONFIG=$CONFIG_PATH
LEFT=$(( BUDGET_S - ($(date +%s) - START) ))
export FPQ_MPS
CONFIG=$CONFIG BUDGET_S=$LEFT JOBS_PER_GPU=$JOBS_PER_GPU bash reference/run_gpu.sh
