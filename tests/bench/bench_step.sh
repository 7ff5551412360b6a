#!/bin/sh
# Training-step benchmark: rminas (bench_step) against PyTorch (bench_step.py) on this
# machine, in the same run, and the ratio. Usage (from the build tree):
#   sh tests/bench/bench_step.sh [STEPS]      (after `make tests/bench/bench_step`)
# Prints a Markdown table for doc/benchmarks.md.
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
steps=${1:-30}
ours=$("$top/tests/bench/bench_step" "$steps")
torch=$(/usr/bin/python3 "$top/tests/bench/bench_step.py" "$steps")
echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; $(date -u +%Y-%m-%d)"
echo "PyTorch $(/usr/bin/python3 -c 'import torch; print(torch.__version__)') with $(/usr/bin/python3 -c 'import torch; print(torch.get_num_threads())') threads vs rminas with OpenMP $(nproc) threads; batch 32, median of $steps steps"
echo
echo "| model | rminas ms/step | PyTorch ms/step | PyTorch / rminas |"
echo "|---|---|---|---|"
echo "$ours" | while read -r name med mean min; do
  t=$(echo "$torch" | awk -v n="$name" '$1 == n { print $2 }')
  echo "| $name | $med | $t | $(awk -v a="$t" -v b="$med" 'BEGIN { printf "%.2f", a / b }') |"
done
