#!/bin/sh
# The ranking benchmark of issue 3: score the 100 architectures of the
# reference's seed-2026 sample with rminas and with the PyTorch reference,
# both at the same time, one thread each (one core each of a 2-core machine),
# then report per-architecture time (median, quartiles), the ratio, peak
# resident memory of each side, and Kendall tau / Spearman rho of -score
# against cifar10_test (and of #params / FLOPs).
#
#   sh tests/bench/bench_rank.sh OUTDIR [SEED]
#
# Needs: ./rminas built, CIFAR-10 binaries in $C10 (default /tmp/c10bin, made
# by ../shared/data/cifar10/make-cifar10-bin), Debian's python3-torch and
# python3-scipy on /usr/bin/python3, ../shared beside the checkout. SEED sets
# rminas's init_seed and data_seed (0 = the reference's own); CONV=dnnl|winograd|winograd4
# sets rminas's convolutions (default: its own default); LIMIT=N scores only
# the first N of the 100 on both sides (the sample's order is random, so they
# are a random subset of it). Takes about 1.5-2 h for the 100.
set -eu
out=${1:?usage: bench_rank.sh OUTDIR [SEED]}
seed=${2:-0}
top=$(cd "$(dirname "$0")/../.." && pwd)
shared=${SHARED_DIR:-$top/../shared}
c10=${C10:-/tmp/c10bin}
teacher=$shared/data/teachers/resnet20-c10q75.safetensors
mkdir -p "$out"
/usr/bin/python3 - "$shared/reference/rmi_scores_seed2026.csv" "$out/archs.txt" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
open(sys.argv[2], "w").write("".join(r["arch"] + "\n" for r in rows))
PY
if [ -n "${LIMIT:-}" ]; then
  head -n "$LIMIT" "$out/archs.txt" > "$out/archs.tmp" && mv "$out/archs.tmp" "$out/archs.txt"
fi
cat > "$out/rank.rmi" <<RMI
set threads 1
${CONV:+set conv $CONV}
set init_seed $seed
set data_seed $seed
load dataset cifar10 $c10
load teacher resnet20 $teacher
load benchmark nb201 $shared/data/nb201/nb201.csv
rank $out/archs.txt
export csv rank $out/rminas.csv
RMI
/usr/bin/time -v "$top/rminas" -b -f "$out/rank.rmi" > "$out/rminas.log" 2>&1 &
p1=$!
RMI_THREADS=1 OMP_NUM_THREADS=1 RMI_REF_DIR="$shared/reference" RMI_REF_C10="$c10" \
  RMI_REF_OUT="$out" /usr/bin/time -v /usr/bin/python3 "$top/tests/bench/rmi_ref_threads.py" \
  rank --n 100 --sample-seed 2026 ${LIMIT:+--limit $LIMIT} --teacher "$teacher" \
  --out "$out/reference.csv" \
  > "$out/reference.log" 2>&1 &
p2=$!
wait $p1
wait $p2
/usr/bin/python3 "$top/tests/bench/rank_summary.py" "$out/rminas.csv" "$out/reference.csv" \
  "$out/rminas.log" "$out/reference.log" "$shared/data/nb201/nb201.csv" | tee "$out/summary.txt"
