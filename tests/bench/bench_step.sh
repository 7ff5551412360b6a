#!/bin/sh
# Training-step benchmark: rminas (bench_step) against PyTorch (bench_step.py) on this
# machine, in the same run, and the ratio. Usage (from the build tree):
#   sh tests/bench/bench_step.sh [STEPS]      (after `make tests/bench/bench_step`)
# Prints a Markdown table for doc/benchmarks.md.
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
steps=${1:-30}
threads=${THREADS:-$(nproc)}
ours=$(OMP_NUM_THREADS=$threads "$top/tests/bench/bench_step" "$steps")
torch=$(THREADS=$threads /usr/bin/python3 "$top/tests/bench/bench_step.py" "$steps")
echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; $(date -u +%Y-%m-%d)"
echo "PyTorch $(/usr/bin/python3 -c 'import torch; print(torch.__version__)') and rminas ($(RMINAS_CONV= "$top/rminas" --version 2>/dev/null | head -n 1), convolutions: ${RMINAS_CONV:-winograd2}), $threads threads each; batch 32, median of $steps steps"
echo
echo "| model | rminas ms/step | PyTorch ms/step | PyTorch / rminas |"
echo "|---|---|---|---|"
echo "$ours" | while read -r name med mean min; do
  t=$(echo "$torch" | awk -v n="$name" '$1 == n { print $2 }')
  echo "| $name | $med | $t | $(awk -v a="$t" -v b="$med" 'BEGIN { printf "%.2f", a / b }') |"
done
