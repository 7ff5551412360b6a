#!/bin/bash
# The GPU benchmark: rminas's CUDA backend against the PyTorch reference on the
# same GPU, one after the other.
#
#   bash tests/bench/bench_cuda.sh OUTDIR
#
# 1. rminas --device cuda: one untimed score of the ResNet-like cell (CUDA and
#    cuDNN start-up), the ResNet-like cell again (timed, through `rank`), then the
#    architectures of tests/bench/archs50.txt with `rank` (seconds per
#    architecture in OUTDIR/rminas.csv, written as each is scored: rank_log).
# 2. PyTorch (tests/bench/rmi_ref_gpu.py, the reference's own loop moved to the
#    GPU, TF32 off): one untimed warm-up score, the ResNet-like cell, then the same
#    architectures (OUTDIR/torch.csv, torch.csv.json).
# 3. OUTDIR/summary.md: median seconds per architecture on both sides, the
#    ResNet-like cell on both sides, the ratios PyTorch / rminas, Kendall tau
#    between the two sides' scores (the students start from different weights:
#    rminas has its own generator, so only the ranks can agree) and of each
#    side against cifar10_test, the GPU and the versions.
#
# Each side has its own timeout and keeps what it scored when it runs out; the
# summary covers what both sides scored. Environment (defaults):
#   RMINAS         the rminas binary ($top/rminas)
#   PYTHON         python3 with torch (python3)
#   BENCH_DEVICE   rminas's --device and PyTorch's device (cuda)
#   BENCH_STEPS    training steps per architecture (150)
#   BENCH_ARCHS    architecture list (tests/bench/archs50.txt); BENCH_N: only the first N
#   BENCH_SIDES    "rminas torch" (either alone reuses the other's CSV in OUTDIR)
#   BENCH_T_RMINAS, BENCH_T_TORCH   timeouts in seconds (600, 900)
#   BENCH_THREADS  rminas's CPU threads (unset: rminas's default)
#   BENCH_JOBS     N > 1: then rank the architectures again with N jobs at once
#                  (set jobs): the throughput, wall seconds per architecture, against
#                  PyTorch's mean seconds per architecture (it scores one at a time)
#   BENCH_TORCH_ARGS  more rmi_ref_gpu.py options (e.g. --tf32, --cudnn-benchmark)
#   TORCH_LD_LIBRARY_PATH  LD_LIBRARY_PATH for the PyTorch side only (set: replaces it there)
#   C10            CIFAR-10 binary batches (/tmp/c10bin; ../shared/data/cifar10/make-cifar10-bin)
#   SHARED_DIR     ../shared beside the checkout: data/teachers/resnet20-c10q75.safetensors,
#                  data/nb201/nb201.csv, reference/rmi_ref.py
#   TEACHER, NB201, RMI_REF   override those three paths one by one
set -u
out=${1:?usage: bench_cuda.sh OUTDIR}
top=$(cd "$(dirname "$0")/../.." && pwd)
shared=${SHARED_DIR:-$top/../shared}
rminas=${RMINAS:-$top/rminas}
python=${PYTHON:-python3}
dev=${BENCH_DEVICE:-cuda}
steps=${BENCH_STEPS:-150}
archs=${BENCH_ARCHS:-$top/tests/bench/archs50.txt}
n=${BENCH_N:-0}
c10=${C10:-/tmp/c10bin}
teacher=${TEACHER:-$shared/data/teachers/resnet20-c10q75.safetensors}
nb201=${NB201:-$shared/data/nb201/nb201.csv}
ref=${RMI_REF:-$shared/reference}
resnet='|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|skip_connect~2|'
mkdir -p "$out"
out=$(cd "$out" && pwd)

grep -v '^#' "$archs" | grep . > "$out/archs.txt"
[ "$n" -gt 0 ] && { head -n "$n" "$out/archs.txt" > "$out/archs.tmp"; mv "$out/archs.tmp" "$out/archs.txt"; }
echo "$resnet" > "$out/resnet.txt"
echo "bench_cuda: $(wc -l < "$out/archs.txt") architectures, $steps steps, device $dev"

elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }

rminas_side() {
    rm -f "$out/rminas.csv" "$out/rminas.csv.settings" "$out/rminas_resnet.csv" \
        "$out/rminas_jobs.csv" "$out/rminas_jobs.csv.settings"
    {
        [ -n "${BENCH_THREADS:-}" ] && echo "set threads $BENCH_THREADS"
        cat <<EOF
version
load dataset cifar10 $c10
load teacher resnet20 $teacher
load benchmark nb201 $nb201
set steps $steps
batch select
echo warm-up (untimed):
score $resnet
rank $out/resnet.txt
export csv rank $out/rminas_resnet.csv
set rank_log $out/rminas.csv
rank $out/archs.txt
EOF
        if [ "${BENCH_JOBS:-0}" -gt 1 ]; then
            cat <<EOF
echo throughput with $BENCH_JOBS jobs:
set jobs $BENCH_JOBS
set rank_log $out/rminas_jobs.csv
rank $out/archs.txt
EOF
        fi
    } > "$out/rminas.rmi"
    local t0 rc
    t0=$(date +%s.%N)
    timeout -k 5 "${BENCH_T_RMINAS:-600}" "$rminas" -e --device "$dev" -f "$out/rminas.rmi" \
        > "$out/rminas.log" 2>&1
    rc=$?
    echo "bench_cuda: rminas rc $rc, $(elapsed "$t0") s (log $out/rminas.log)"
    echo "$rc" > "$out/rminas.rc"
}

torch_side() {
    { echo "$resnet"; cat "$out/archs.txt"; } > "$out/torch_archs.txt"
    rm -f "$out/torch.csv" "$out/torch.csv.json"
    local t0 rc pre=()
    [ -n "${TORCH_LD_LIBRARY_PATH+set}" ] && pre=(env "LD_LIBRARY_PATH=$TORCH_LD_LIBRARY_PATH")
    t0=$(date +%s.%N)
    # shellcheck disable=SC2086
    PYTHONUNBUFFERED=1 RMI_REF=$ref RMI_REF_C10=$c10 RMI_REF_NB201=$nb201 RMI_REF_OUT=$out/rmi-ref \
        timeout -k 5 "${BENCH_T_TORCH:-900}" "${pre[@]}" "$python" "$top/tests/bench/rmi_ref_gpu.py" \
        --device "$dev" --steps "$steps" --teacher "$teacher" --archs "$out/torch_archs.txt" \
        --out "$out/torch.csv" ${BENCH_TORCH_ARGS:-} > "$out/torch.log" 2>&1
    rc=$?
    echo "bench_cuda: PyTorch rc $rc, $(elapsed "$t0") s (log $out/torch.log)"
    echo "$rc" > "$out/torch.rc"
}

for side in ${BENCH_SIDES:-rminas torch}; do
    case $side in
    rminas) rminas_side ;;
    torch) torch_side ;;
    *) echo "bench_cuda: unknown side '$side'" ;;
    esac
done

{
    if command -v nvidia-smi > /dev/null 2>&1; then
        nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | head -n 1
    else
        echo "(no nvidia-smi)"
    fi
    lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -n 1
    "$rminas" --version 2>/dev/null | head -n 1
} > "$out/machine.txt"

"$python" - "$out" "$nb201" "$dev" "$steps" <<'PY' | tee "$out/summary.md"
import csv, json, math, os, re, statistics, sys

out, nb201, dev, steps = sys.argv[1:5]


def rows(path):
    try:
        with open(path) as f:
            return [r for r in csv.DictReader(f) if r.get('arch')]
    except OSError:
        return []


def rc(name):
    try:
        return open(os.path.join(out, name + '.rc')).read().strip()
    except OSError:
        return 'not run'


def kendall_tau_b(x, y):
    """Kendall's tau-b (ties in either variable; +inf is a value like any other)."""
    n = len(x)
    conc = disc = tx = ty = 0
    for i in range(n):
        for j in range(i + 1, n):
            dx = (x[i] > x[j]) - (x[i] < x[j])
            dy = (y[i] > y[j]) - (y[i] < y[j])
            if dx == 0 and dy == 0:
                continue
            if dx == 0:
                tx += 1
            elif dy == 0:
                ty += 1
            elif dx == dy:
                conc += 1
            else:
                disc += 1
    den = math.sqrt((conc + disc + tx) * (conc + disc + ty))
    return (conc - disc) / den if den else float('nan')


def fmt(v, spec='%.3f'):
    return spec % v if v is not None else 'n/a'


truth = {}
try:
    with open(nb201) as f:
        truth = {r['arch']: float(r['cifar10_test']) for r in csv.DictReader(f)}
except OSError:
    pass
machine = open(os.path.join(out, 'machine.txt')).read().split('\n')
meta = {}
try:
    meta = json.load(open(os.path.join(out, 'torch.csv.json')))
except (OSError, ValueError):
    pass

ours = rows(os.path.join(out, 'rminas.csv'))
ours_res = rows(os.path.join(out, 'rminas_resnet.csv'))
torch_rows = rows(os.path.join(out, 'torch.csv'))
theirs_res, theirs = torch_rows[:1], torch_rows[1:]
archs = [a.strip() for a in open(os.path.join(out, 'archs.txt')) if a.strip()]
o = {r['arch']: r for r in ours}
t = {r['arch']: r for r in theirs}
common = [a for a in archs if a in o and a in t]

def secs(d, keys):
    return [float(d[a]['seconds']) for a in keys]

def med(v):
    return statistics.median(v) if v else None

o_all, t_all = secs(o, [a for a in archs if a in o]), secs(t, [a for a in archs if a in t])
o_med, t_med = med(secs(o, common)), med(secs(t, common))
o_res = float(ours_res[0]['seconds']) if ours_res else None
t_res = float(theirs_res[0]['seconds']) if theirs_res else None

print('# rminas vs PyTorch, both on %s, same machine' % dev)
print()
print('- GPU: %s' % machine[0])
print('- CPU: %s' % (machine[1] or 'n/a'))
print('- rminas: %s, `--device %s`; PyTorch %s (CUDA %s, cuDNN %s, TF32 %s, cudnn.benchmark %s) on %s'
      % (machine[2] or 'n/a', dev, meta.get('torch', 'n/a'), meta.get('cuda'), meta.get('cudnn'),
         'on' if meta.get('tf32') else 'off', meta.get('cudnn_benchmark'), meta.get('device', 'n/a')))
print('- %s steps per architecture, batch 32, reference teacher %s; both sides run one untimed '
      'warm-up score of the ResNet-like cell first' % (steps, meta.get('teacher', 'resnet20-c10q75')))
print('- timed: rminas, the student\'s initialization and its %s steps (the `seconds` of `rank`; building '
      'the network not included); PyTorch, build_nb201, .to(device) and the %s steps, between two '
      'synchronizations' % (steps, steps))
print('- exit status: rminas %s, PyTorch %s (124/137: stopped by its timeout; the summary covers '
      'what was scored)' % (rc('rminas'), rc('torch')))
print()
print('| | rminas | PyTorch | PyTorch / rminas |')
print('|---|---|---|---|')
print('| ResNet-like cell, s | %s | %s | %s |' % (fmt(o_res), fmt(t_res),
      fmt(t_res / o_res if o_res and t_res else None, '%.2f')))
print('| median s per architecture (%d in both) | %s | %s | %s |' % (len(common), fmt(o_med), fmt(t_med),
      fmt(t_med / o_med if o_med and t_med else None, '%.2f')))
print('| architectures scored | %d of %d | %d of %d | |' % (len(o_all), len(archs), len(t_all), len(archs)))
if o_all and t_all:
    print('| min / max s | %.3f / %.3f | %.3f / %.3f | |' % (min(o_all), max(o_all), min(t_all), max(t_all)))
    print('| total s | %.1f | %.1f | %.2f |' % (sum(o_all), sum(t_all), sum(t_all) / sum(o_all)))
jobs_wall = None
try:
    log = open(os.path.join(out, 'rminas.log')).read()
    m = re.findall(r'^wall time ([0-9.]+) s with ([0-9]+) jobs \(', log, re.M)
    if m:
        jobs_wall, jobs_n = float(m[-1][0]), int(m[-1][1])
except OSError:
    pass
jobs_rows = rows(os.path.join(out, 'rminas_jobs.csv'))
if jobs_wall is not None and jobs_rows:
    per = jobs_wall / len(jobs_rows)
    t_mean = sum(t_all) / len(t_all) if t_all else None
    print('| throughput with %d jobs at once, wall s per architecture (%d) | %.3f | %s (mean, one at a time) | %s |'
          % (jobs_n, len(jobs_rows), per, fmt(t_mean), fmt(t_mean / per if t_mean else None, '%.2f')))
    js = {r['arch']: r['score'] for r in jobs_rows}
    same = sum(1 for a in js if a in o and o[a]['score'] == js[a])
    print()
    print('rminas with %d jobs: %d of %d scores equal to the one-job scores to the last digit.'
          % (jobs_n, same, len(js)))
elif os.environ.get('BENCH_JOBS', '0') not in ('', '0', '1'):
    print()
    print('rminas with jobs: no complete run (see rminas.log)')
print()
if o_all:
    first = float(o[archs[0]]['seconds']) if archs[0] in o else None
    print('rminas: first architecture %s s, median of the others %s s.' % (
        fmt(first), fmt(med([float(o[a]['seconds']) for a in archs[1:] if a in o]))))
if meta.get('warmup_seconds') is not None:
    print('PyTorch: warm-up score (CUDA/cuDNN start-up included, untimed) %.2f s; data selection on the CPU '
          '%.1f s.' % (meta['warmup_seconds'], meta.get('data_seconds', float('nan'))))
print()
if len(common) > 1:
    so = [float(o[a]['score']) for a in common]
    st = [float(t[a]['score']) for a in common]
    print('Kendall tau-b between the two sides\' scores over %d architectures: **%.3f**' %
          (len(common), kendall_tau_b(so, st)))
    acc = [truth.get(a) for a in common]
    if all(v is not None for v in acc):
        print()
        print('Kendall tau-b of -score against NAS-Bench-201 cifar10_test (same %d): rminas %.3f, PyTorch %.3f'
              % (len(common), kendall_tau_b([-v for v in so], acc), kendall_tau_b([-v for v in st], acc)))
    inf_o = sum(math.isinf(v) for v in so)
    inf_t = sum(math.isinf(v) for v in st)
    if inf_o or inf_t:
        print()
        print('+inf scores: rminas %d, PyTorch %d' % (inf_o, inf_t))
else:
    print('Kendall tau: fewer than 2 architectures scored by both sides')
PY
