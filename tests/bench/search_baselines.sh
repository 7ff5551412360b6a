#!/bin/sh
# Search algorithms with the benchmark evaluator (the paper's training-based
# baselines: a table lookup stands for training): RMI-NAS's loop, random
# search, REA and REINFORCE, each over SEEDS seeds at the same budget, on the
# 12-epoch table (what a cheap training run would see) and on the 200-epoch
# table (an oracle). Prints a markdown table of the chosen architectures'
# 200-epoch cifar10_test accuracy (mean +- std over seeds) and evaluations.
#
#   sh tests/bench/search_baselines.sh [SEEDS] [BUDGET]     (about a minute)
set -eu
seeds=${1:-10}
budget=${2:-150}
top=$(cd "$(dirname "$0")/../.." && pwd)
R="$top/rminas"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "| algorithm | evaluator | budget | seeds | cifar10_test of the answer (mean +- std) | evaluations (mean) |"
echo "|---|---|---|---|---|---|"
for table in nb201-12 nb201; do
  for algo in rminas random rea reinforce; do
    : > "$tmp/acc"
    s=1
    while [ "$s" -le "$seeds" ]; do
      extra=
      [ "$table" = nb201-12 ] && extra="-c 'load benchmark nb201-12'"
      out=$(eval "\"$R\" -b -c 'load benchmark nb201' $extra -c 'set evaluator benchmark' \
        -c 'set benchmark_column cifar10_valid' -c 'set seed $s' -c 'set budget $budget' \
        -c 'set cap $budget' -c 'search start $algo' -c 'search run' -c 'search result'")
      acc=$(printf '%s\n' "$out" | sed -n 's/.* cifar10_test \([0-9][0-9.]*\).*/\1/p' | tail -1)
      ev=$(printf '%s\n' "$out" | sed -n 's/^  \([0-9]*\) evaluations.*/\1/p' | tail -1)
      echo "$acc $ev" >> "$tmp/acc"
      s=$((s + 1))
    done
    awk -v a="$algo" -v t="$table" -v b="$budget" -v n="$seeds" '
      { x += $1; xx += $1 * $1; e += $2 }
      END { m = x / NR; sd = sqrt(xx / NR - m * m); 
            printf "| %s | %s cifar10_valid | %d | %d | %.2f +- %.2f | %.0f |\n", a, t, b, n, m, sd, e / NR }' "$tmp/acc"
  done
done
