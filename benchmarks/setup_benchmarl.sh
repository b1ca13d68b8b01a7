#!/usr/bin/env bash
# Set up BenchMARL in its own virtual environment for benchmarks/compare_benchmarl.py.
#
#   bash benchmarks/setup_benchmarl.sh            # -> benchmarks/.venv-benchmarl
#
# BenchMARL needs torchrl < 0.12 (and its matching tensordict), so it cannot share marl-torchrl's
# environment (torchrl 0.14). torch is installed first, at the same version as ours (TORCH_VERSION,
# default: the torch of the current python), so both sides run the same kernels; on a machine without
# a GPU it comes from a local wheel or the PyTorch CPU index, never with CUDA packages.
# Environment: VENV (default benchmarks/.venv-benchmarl), PYTHON (default python3),
# BENCHMARL_VERSION (default 1.5.2), TORCH_CPU_INDEX (default the PyTorch CPU wheel index).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$ROOT/benchmarks/.venv-benchmarl}"
PYTHON="${PYTHON:-python3}"
BENCHMARL_VERSION="${BENCHMARL_VERSION:-1.5.2}"
TORCH_CPU_INDEX="${TORCH_CPU_INDEX:-https://download.pytorch.org/whl/cpu}"
TORCH_VERSION="${TORCH_VERSION:-$("$PYTHON" -c 'import torch; print(torch.__version__.split("+")[0])' 2>/dev/null || echo 2.13.0)}"

if [[ ! -x "$VENV/bin/python" ]]; then
    "$PYTHON" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip)
"${PIP[@]}" install --quiet --upgrade pip

if nvidia-smi -L >/dev/null 2>&1; then
    "${PIP[@]}" install "torch===$TORCH_VERSION"
elif "${PIP[@]}" download --quiet --no-deps --no-index "torch==$TORCH_VERSION" -d "$VENV/.wheels" >/dev/null 2>&1; then
    "${PIP[@]}" install "torch==$TORCH_VERSION"   # a local wheel (pip's find-links)
else
    "${PIP[@]}" install "torch==$TORCH_VERSION" --index-url "$TORCH_CPU_INDEX"
fi
# torchrl/tensordict < 0.12 with the torch above kept (no torch upgrade pulled in by the resolver)
"${PIP[@]}" install "benchmarl==$BENCHMARL_VERSION" "torchrl>=0.10,<0.12" "tensordict>=0.10,<0.12" vmas \
    "torch==$TORCH_VERSION"
"$VENV/bin/python" - <<'EOF'
import benchmarl, tensordict, torch, torchrl, vmas
print(f"BenchMARL {benchmarl.__version__}: torch {torch.__version__}, torchrl {torchrl.__version__}, "
      f"tensordict {tensordict.__version__}, vmas {vmas.__version__}")
EOF
echo "BenchMARL ready: $VENV/bin/python"
