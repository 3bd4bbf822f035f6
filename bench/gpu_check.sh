#!/usr/bin/env bash
# The GPU check with its log kept beside the JSON: bash bench/gpu_check.sh [out-dir] [args...]
set -uo pipefail
cd "$(dirname "$0")/.."
out="${1:-gpu_check}"
shift || true
mkdir -p "$out"
export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
python bench/gpu_check.py --out "$out/gpu_check.json" "$@" 2>&1 | tee "$out/gpu_check.log"
