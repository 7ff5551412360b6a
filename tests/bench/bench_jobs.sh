#!/bin/sh
# Throughput of concurrent scoring (set jobs): rank the first N architectures
# of the reference's seed-2026 sample (../shared/reference/
# rmi_scores_seed2026.csv) with one job of T threads, then with T jobs of one
# thread each, on the same machine in the same run; prints each run's wall
# ranking time (without loading and batch selection), the ratio, and whether
# the two gave the same scores.
#
#   sh tests/bench/bench_jobs.sh OUTDIR [N [T [STEPS]]]
#
# Defaults: N 10, T the cores (nproc), STEPS 150. Needs ./rminas built and
# CIFAR-10 binaries in $C10 (default /tmp/c10bin, made by
# ../shared/data/cifar10/make-cifar10-bin). Run it on an idle machine.
set -eu
out=${1:?usage: bench_jobs.sh OUTDIR [N [T [STEPS]]]}
n=${2:-10}
t=${3:-$(nproc)}
steps=${4:-150}
top=$(cd "$(dirname "$0")/../.." && pwd)
shared=${SHARED_DIR:-$top/../shared}
c10=${C10:-/tmp/c10bin}
mkdir -p "$out"
sed -n '2,$p' "$shared/reference/rmi_scores_seed2026.csv" | cut -d, -f2 | head -n "$n" > "$out/archs.txt"
run() { # NAME THREADS JOBS
  cat > "$out/$1.rmi" <<RMI
set threads $2
set jobs $3
set steps $steps
set init_seed 1
set data_seed 1
load dataset cifar10 $c10
load teacher resnet20 $shared/data/teachers/resnet20-c10q75.safetensors
batch select
rank $out/archs.txt
export csv rank $out/$1.csv
RMI
  "$top/rminas" -b -f "$out/$1.rmi" > "$out/$1.log" 2>&1
  # the ranking's own wall time (not loading, not the batch selection)
  sed -n 's/^wall time \([0-9.]*\) s with.*/\1/p' "$out/$1.log"
}
w1=$(run threads "$t" 1)
wj=$(run jobs 1 "$t")
same=no
[ "$(cut -d, -f1-6 "$out/threads.csv")" = "$(cut -d, -f1-6 "$out/jobs.csv")" ] && same=yes
{
  echo "machine: $(nproc) cores, $(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -1)"
  echo "$n architectures, $steps steps: 1 job x $t threads $w1 s, $t jobs x 1 thread $wj s" \
    "(ratio $(echo "$w1 $wj" | awk '{printf "%.2f", $1 / $2}')); the same scores to 9 digits: $same"
} | tee "$out/summary.txt"
