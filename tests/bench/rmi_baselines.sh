#!/bin/sh
# Search baselines with the RMI score as evaluator (issue 4): random search,
# REA and REINFORCE over SEEDS at BUDGET evaluations, with the paper's RMI
# settings, the default teacher and full CIFAR-10, one thread each. Every
# score goes through the score log LOG, so a random search with the seed of
# an RMI-NAS run (whose evaluations are in LOG: `search load STATE` with
# `set score_log LOG`) costs nothing, REA starts from that warm-up too, and a
# killed run continues from its state file OUT/ALGO_sSEED.json when this
# script is started again. Prints one row per run and the mean +- std of
# the answer's 200-epoch cifar10_test per algorithm.
#
#   sh tests/bench/rmi_baselines.sh C10DIR LOG OUT [SEEDS] [BUDGET] [ALGOS]
#   (defaults: seeds "1 2 3", budget 100, algorithms "random rea")
#
# Two of these with other SEEDS or ALGOS can run at once on the same LOG.
# About 35 s per evaluation that LOG does not hold (2-core Zen 3, 1 thread).
set -eu
c10=${1:?usage: rmi_baselines.sh C10DIR LOG OUT [SEEDS] [BUDGET] [ALGOS]}
log=${2:?usage}
out=${3:?usage}
seeds=${4:-1 2 3}
budget=${5:-100}
algos=${6:-random rea}
top=$(cd "$(dirname "$0")/../.." && pwd)
R=${RMINAS:-$top/rminas}
mkdir -p "$out"
echo "| algorithm | seed | evaluations | from the log | seconds of scoring | answer | cifar10_test |"
echo "|---|---|---|---|---|---|---|"
for algo in $algos; do
  : > "$out/$algo.acc"
  for s in $seeds; do
    st="$out/${algo}_s$s.json"
    if [ -f "$st" ]; then
      run="-c 'search resume $st'"
    else
      run="-c 'set seed $s' -c 'set state $st' -c 'search start $algo budget $budget' -c 'search run'"
    fi
    eval "\"$R\" -b -c 'set threads 1' -c 'load dataset cifar10 $c10' -c 'load teacher resnet20' \
      -c 'load benchmark nb201' -c 'set score_log $log' $run -c 'search result' \
      -c 'export csv search $out/${algo}_s$s.csv'" > "$out/${algo}_s$s.log" 2>&1
    res=$(sed -n 's/^arch //p' "$out/${algo}_s$s.log" | tail -1)
    acc=$(sed -n 's/.* cifar10_test \([0-9][0-9.]*\).*/\1/p' "$out/${algo}_s$s.log" | tail -1)
    /usr/bin/python3 - "$out/${algo}_s$s.csv" "$algo" "$s" "$res" "$acc" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
cached = sum(r.get("cached") == "1" for r in rows)
secs = sum(float(r["seconds"]) for r in rows)
arch = sys.argv[4].replace("|", "\\|")  # a table cell
print(f"| {sys.argv[2]} | {sys.argv[3]} | {len(rows)} | {cached} | {secs:.0f} | `{arch}` | {sys.argv[5]} |")
PY
    echo "$acc" >> "$out/$algo.acc"
  done
done
for algo in $algos; do
  awk -v a="$algo" '{ x += $1; xx += $1 * $1 }
    END { m = x / NR; sd = sqrt(xx / NR - m * m);
          printf "%s: cifar10_test of the answer %.2f +- %.2f over %d seeds\n", a, m, sd, NR }' \
    "$out/$algo.acc"
done
