#!/usr/bin/env bash
# One exploratory run of a preset with extra overrides, resumable, one thread, CSV log:
#   bash benchmarks/probe.sh <name> <task> <seed> [overrides...]
#   bash benchmarks/probe.sh dop_cont_g90 balance 0 algorithm=dop env.continuous_actions=true algorithm.gamma=0.9
# Writes benchmarks/runs/probes/<task>/<name>_s<seed>/ (training_log.csv, checkpoints) and <name>_s<seed>.log;
# run it again to resume from the last checkpoint (SIGINT stops it with a checkpoint).
set -euo pipefail
[ $# -ge 3 ] || { echo "error: usage: bash benchmarks/probe.sh <name> <task> <seed> [overrides...]" >&2; exit 2; }
name=$1 task=$2 seed=$3; shift 3
root=$(cd "$(dirname "$0")/.." && pwd)
out="$root/benchmarks/runs/probes/$task"
mkdir -p "$out"
exec marl-train "experiment=$task" "seed=$seed" threads=1 'logger=[csv]' resume=auto "$@" \
  "hydra.run.dir=$out/${name}_s$seed" >>"$out/${name}_s$seed.log" 2>&1
