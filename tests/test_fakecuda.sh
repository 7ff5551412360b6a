#!/bin/sh
# The CUDA backend's host code (kernels/cuda.cu, kernels/cuda_conv.cu) on the
# fake GPU of tests/fakecuda: the module rminas-fakecuda.so is those two
# files compiled by g++ against a CPU implementation of the CUDA runtime,
# cuBLAS and cuDNN (tests/fakecuda/fakecuda.cc, strict about streams,
# captures, workspaces and pointers; our kernels run in tests/cuda_emu.h).
# So every make check runs what a GPU run would, minus the real libraries:
# tests/test_cuda against the CPU backend, then the shell with --device cuda
# (rank with 1 and 3 jobs, every RMINAS_CUDA_* variant, a device without
# memory pools, TF32, out of memory, the pool trimmed for a cudaMalloc, no
# device, a search with jobs), and the error paths a GPU takes only when
# something fails (FAKECUDA_FAIL: set-up calls, CUDA-graph recordings, a
# library call, cuDNN's algorithm queries answering what the backend must
# cope with, a kernel's fault in the middle of a search and its resume).
# Any "fakecuda:" line (a fault or a broken CUDA-graph capture) fails the
# test it appears in. TAP output.
set -u
. "${top_srcdir:-.}/tests/tap.sh"
M="$top_builddir/tests/fakecuda/rminas-fakecuda.so"
if [ ! -f "$M" ]; then
  echo "1..0 # SKIP no tests/fakecuda/rminas-fakecuda.so (a build without CUDA)"
  exit 0
fi
RMINAS_CUDA_MODULE=$M
export RMINAS_CUDA_MODULE
unset RMINAS_CUDA_GRAPHS RMINAS_CUDA_BN_FUSED RMINAS_CUDA_KEEP_RELU RMINAS_CUDA_POOL \
  RMINAS_CUDA_FIND RMINAS_CUDA_TF32 RMINAS_CUDA_DEVICE FAKECUDA_DEVICES FAKECUDA_MEM_MB \
  FAKECUDA_FAIL FAKECUDA_POOLS 2>/dev/null

# no "fakecuda:" line in $1 (the output of a run)
clean() {
  if printf '%s\n' "$1" | grep -q 'fakecuda:'; then
    printf '%s\n' "$1" | grep 'fakecuda:' | head -n 5 | sed 's/^/# /'
    return 1
  fi
  return 0
}

# 1. tests/test_cuda: every op and three RMI scores against the CPU backend
# (two steps each, the second replayed from CUDA graphs; a step of batch 32
# takes seconds through the emulator)
out=$(RMINAS_TEST_CUDA_STEPS=2 "$top_builddir/tests/test_cuda" 2>&1)
st=$?
pts=$(printf '%s\n' "$out" | grep -c '^ok ')
bad=$(printf '%s\n' "$out" | grep -c '^not ok ')
if [ "$st" -eq 0 ] && [ "$bad" -eq 0 ] && [ "$pts" -gt 500 ] && clean "$out" &&
   printf '%s\n' "$out" | grep -q 'recorded halves yes'; then
  ok "tests/test_cuda on the fake GPU: $pts points pass, the steps recorded as CUDA graphs"
else
  notok "tests/test_cuda on the fake GPU: status $st, $pts ok, $bad not ok"
  printf '%s\n' "$out" | grep -E '^(not ok|Bail|#)|fakecuda' | head -n 40 | sed 's/^/# /'
fi

# 2. the shell on the fake GPU: a small batch (8 of a pool of 16), 2 steps
cat > "$tmp/base.rmi" <<EOF
load dataset cifar10
load teacher resnet20
set batch 8
set gamma 2
set steps 2
batch select
EOF
A1='|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|skip_connect~2|'
A2='|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|avg_pool_3x3~2|'
A3='|nor_conv_1x1~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|'
printf '%s\n' "$A1" "$A2" "$A3" > "$tmp/archs.txt"

# rank NAME DEVICE JOBS [VAR=VALUE ...]: the three ranked into $tmp/NAME.csv;
# the run's output in $out, its status in $st
rank() {
  name=$1 dev=$2 jobs=$3
  shift 3
  out=$(env "$@" "$R" --device "$dev" -f "$tmp/base.rmi" -c "set jobs $jobs" \
    -c "set score_log $tmp/$name.csv" -c "rank $tmp/archs.txt" \
    -c "export csv curves $tmp/$name.curves" 2>&1)
  st=$?
}
# the scores of a score log, by architecture (score, cka1-3, ce: every digit)
scores() { tail -n +2 "$tmp/$1.csv" 2>/dev/null | cut -d, -f1-6 | sort; }
# same NAME1 NAME2: both logs hold the three with the same scores
same() {
  [ "$(scores "$1" | wc -l)" -eq 3 ] && [ "$(scores "$1")" = "$(scores "$2")" ]
}

rank cpu cpu 1
rank one cuda 1
if [ "$st" -eq 0 ] && clean "$out" && [ "$(scores one | wc -l)" -eq 3 ]; then
  ok "rank on the fake GPU: three architectures scored"
else
  notok "rank on the fake GPU (status $st)"; printf '%s\n' "$out" | tail -n 5 | sed 's/^/# /'
fi
# against the CPU: the same convolutions, the rest in another order of rounding
scores cpu > "$tmp/c.txt"
scores one > "$tmp/g.txt"
worst=$(join -t, "$tmp/c.txt" "$tmp/g.txt" | awk -F, '
  { for (i = 2; i <= 6; i++) { d = $i - $(i + 5); if (d < 0) d = -d; if (d > m) m = d } }
  END { printf "%.2g", m + 0 }')
if awk "BEGIN { exit !($worst < 1e-3) }" && [ "$(scores cpu | wc -l)" -eq 3 ]; then
  ok "the fake GPU's scores are the CPU's within 1e-3 after 2 steps (worst $worst)"
else
  notok "the fake GPU's scores against the CPU's: worst difference $worst"
fi

rank three cuda 3
if [ "$st" -eq 0 ] && clean "$out" && same one three; then
  ok "rank with 3 jobs (threads, streams, slots) gives one job's scores to the last digit"
else
  notok "rank with 3 jobs against 1 (status $st)"; printf '%s\n' "$out" | tail -n 5 | sed 's/^/# /'
fi
# the learning curves of the device steps (the second queued, downloaded
# with the score's history): both steps of the three, the last loss the
# score, the same with 3 jobs
last_losses() { awk -F, 'NR > 1 { last[$1] = $3 } END { for (a in last) print a "," last[a] }' "$1" | sort; }
if [ "$(wc -l < "$tmp/one.curves")" -eq 7 ] && cmp -s "$tmp/one.curves" "$tmp/three.curves" &&
   [ "$(last_losses "$tmp/one.curves")" = "$(tail -n +2 "$tmp/one.csv" | cut -d, -f1-2 | sort |
        awk -F, '{ printf "%s,%.9g\n", $1, $2 }')" ]; then
  ok "export csv curves on the fake GPU: 2 steps of the three, the last loss the score, 3 jobs the same"
else
  notok "export csv curves on the fake GPU"; sed 's/^/# /' "$tmp/one.curves"
fi

# every variant of the backend computes the same numbers on the fake GPU,
# and so does a device without memory pools (plain cudaMalloc, as
# RMINAS_CUDA_POOL=0, because the device says so)
for v in RMINAS_CUDA_GRAPHS=0 RMINAS_CUDA_BN_FUSED=0 RMINAS_CUDA_KEEP_RELU=0 \
         RMINAS_CUDA_POOL=0 RMINAS_CUDA_FIND=1 FAKECUDA_POOLS=0; do
  rank var cuda 2 "$v"
  if [ "$st" -eq 0 ] && clean "$out" && same one var; then
    ok "$v (2 jobs): the default's scores to the last digit"
  else
    notok "$v (2 jobs) against the default (status $st)"
    printf '%s\n' "$out" | tail -n 5 | sed 's/^/# /'
    scores one > "$tmp/a.txt"; scores var > "$tmp/b.txt"
    diff "$tmp/a.txt" "$tmp/b.txt" | head -n 6 | sed 's/^/# /'
  fi
  rm -f "$tmp/var.csv"
done

# Helpers for the failures on request (FAKECUDA_FAIL) below.
# fired N: the output in $out names N injected failures
fired() { [ "$(printf '%s\n' "$out" | grep -c '^FAKECUDA_FAIL: call ')" -eq "$1" ]; }
# the errors and injected failures of $out (after a notok), as TAP comments
show_failures() {
  printf '%s\n' "$out" | grep -E 'error|FAKECUDA_FAIL|fakecuda' | head -n 6 | sed 's/^/# /'
}
# just one error line in $out, matching $1
one_error() {
  [ "$(printf '%s\n' "$out" | grep -c '^error')" -eq 1 ] && printf '%s\n' "$out" | grep -Eq "$1"
}

# Failures the backend gets over, three rules at a time (FAKECUDA_FAIL: the
# N-th call of a function fails; ":capture" counts only calls made while
# capturing). Recordings: the capture cannot begin, ends invalidated (as
# when something in it could not be captured), cannot be instantiated, or a
# library call inside it fails; each time the evaluator runs that half op
# by op from then on. cuDNN's algorithm queries for a convolution shape
# (forward, backward data, backward filter) answering that only the
# non-deterministic algorithms are supported (one of them is taken), or
# listing less workspace than the algorithms need (the workspace-size
# queries are believed; the fake fails a pass given less than its
# algorithm needs), and the workspace-size queries asking 4 times what the
# algorithms need (at a planned shape: the backend gives it). Allocations that find no memory once, from the pool
# and plain (each tried again after the pool gives back what it holds).
# Each time the scores are the default's to the last digit, with no error.

# queries N:WORD: the rules for the three heuristics queries of one shape
queries() {
  q=cudnnGetConvolution
  echo "${q}ForwardAlgorithm_v7:$1,${q}BackwardDataAlgorithm_v7:$1,${q}BackwardFilterAlgorithm_v7:$1"
}
# sizes N:WORD: the same for the three workspace-size queries
sizes() {
  q=cudnnGetConvolution
  echo "${q}ForwardWorkspaceSize:$1,${q}BackwardDataWorkspaceSize:$1,${q}BackwardFilterWorkspaceSize:$1"
}
# got_over RULES N WHAT: the three ranked with FAKECUDA_FAIL=RULES, N of
# the rules firing: the default's scores, no error
got_over() {
  rank var cuda 1 "FAKECUDA_FAIL=$1"
  if [ "$st" -eq 0 ] && clean "$out" && fired "$2" && ! printf '%s\n' "$out" | grep -q '^error' &&
     same one var; then
    ok "$3: the default's scores, no error"
  else
    notok "$3 ($1): status $st"
    show_failures
  fi
  rm -f "$tmp/var.csv"
}
for f in cudaStreamBeginCapture:1,cudaStreamEndCapture:1,cudaGraphInstantiate:2 \
         cudnnConvolutionForward:1:capture,cublasSgemm:3:capture,cudnnConvolutionBackwardData:5:capture \
         "$(queries 1:nondeterministic)" "$(queries 2:less)" "$(sizes 1:more)" \
         cudaMallocAsync:3,cudaMallocAsync:40,cudaMalloc:1; do
  got_over "$f" 3 "failures the backend gets over ($f)"
done

# A pool that cannot be set up (no default pool, or one of its attributes
# refused): the backend allocates with plain cudaMalloc, never calling
# cudaMallocAsync (its rule does not fire).
for f in cudaDeviceGetDefaultMemPool:1 cudaMemPoolSetAttribute:2; do
  got_over "$f,cudaMallocAsync:1" 1 "a pool that cannot be set up (${f%%:*} fails): plain cudaMalloc"
done

# Failures outside a recording, not sticky: a cuDNN call's failed status,
# a job's thread that cannot make its stream (the second one made), the
# pinned host memory for read-backs that cannot be had, host memory for
# the convolution cache that cannot be had (its first growth, the fifth
# shape's entry), and a convolution's set-up by cuDNN's heuristics, by
# Find or by a workspace-size query, failing or listing no algorithm it
# supports: at the teacher's first plan, in the batch selection (the next
# plan of the shape sets it up again), or at a shape no plan set up (the
# teacher's passes at the RMI batch of 8 after the selection planned it for
# its pool of 16: set up again at its next pass after a plan), there also
# a size query asking more workspace than was planned for the shape at the
# larger batch (a fourth field says what the injected failure's line must
# name). The command stops with an error that
# names the call, its file and line, and the reason; then two ranks in the
# same process (2 jobs) score what is left, to the default's scores.
for c in "FAKECUDA_FAIL=cudnnConvolutionBackwardFilter:1|cuda_conv.cu|CUDNN_STATUS_EXECUTION_FAILED" \
         "FAKECUDA_FAIL=cudaStreamCreateWithFlags:2|cuda.cu|out of memory" \
         "FAKECUDA_FAIL=cudaMallocHost:1|cuda.cu|out of memory" \
         "FAKECUDA_FAIL=realloc:1|cuda_conv.cu|out of host memory" \
         "FAKECUDA_FAIL=calloc:5|cuda_conv.cu|out of host memory" \
         "FAKECUDA_FAIL=cudnnGetConvolutionBackwardDataAlgorithm_v7:1|cuda_conv.cu|CUDNN_STATUS_INTERNAL_ERROR" \
         "FAKECUDA_FAIL=cudnnGetConvolutionForwardAlgorithm_v7:1:unsupported|cuda_conv.cu|no forward algorithm for this convolution" \
         "RMINAS_CUDA_FIND=1 FAKECUDA_FAIL=cudnnFindConvolutionBackwardDataAlgorithm:1:unsupported|cuda_conv.cu|no backward-data algorithm for this convolution" \
         "FAKECUDA_FAIL=cudnnGetConvolutionBackwardFilterAlgorithm_v7:1:unsupported|cuda_conv.cu|no backward-filter algorithm for this convolution" \
         "RMINAS_CUDA_FIND=1 FAKECUDA_FAIL=cudnnFindConvolutionForwardAlgorithm:1|cuda_conv.cu|CUDNN_STATUS_INTERNAL_ERROR" \
         "FAKECUDA_FAIL=cudnnGetConvolutionForwardAlgorithm_v7:7|cuda_conv.cu|CUDNN_STATUS_INTERNAL_ERROR|on batch 8," \
         "RMINAS_CUDA_FIND=1 FAKECUDA_FAIL=cudnnFindConvolutionBackwardFilterAlgorithm:7|cuda_conv.cu|CUDNN_STATUS_INTERNAL_ERROR|on batch 8," \
         "FAKECUDA_FAIL=cudnnGetConvolutionBackwardDataWorkspaceSize:2|cuda_conv.cu|CUDNN_STATUS_INTERNAL_ERROR" \
         "FAKECUDA_FAIL=cudnnGetConvolutionBackwardFilterWorkspaceSize:7:more|cuda_conv.cu|the chosen algorithm needs [0-9]+ bytes of workspace, [0-9]+ planned|on batch 8,"; do
  vars=${c%%|*} rest=${c#*|}
  file=${rest%%|*} rest=${rest#*|}
  why=${rest%%|*} on=
  case $rest in *'|'*) on=${rest#*|} ;; esac
  call=${vars##*=}
  call=${call%%:*}
  what="$call fails"
  case $vars in
    *:unsupported) what="$call lists no algorithm it supports" ;;
    *:more) what="$call asks more workspace than was planned" ;;
  esac
  [ -n "$on" ] && what="$what at a shape no plan set up"
  # (vars unquoted: one or two assignments)
  out=$(env $vars "$R" --device cuda -f "$tmp/base.rmi" -c "set jobs 2" \
    -c "set score_log $tmp/var.csv" -c "rank $tmp/archs.txt" -c "rank $tmp/archs.txt" 2>&1)
  st=$?
  if [ "$st" -eq 1 ] && clean "$out" && fired 1 &&
     printf '%s\n' "$out" | grep -q "^FAKECUDA_FAIL: call .* fails.*$on" &&
     one_error "^error: (batch|rank): CUDA backend, [^ ]*$file:[0-9]+: $call failed: $why\$" &&
     same one var; then
    ok "$what: a clear error (call, file:line, reason), then the default's scores in the same process"
  else
    notok "$what ($vars: status $st)"
    show_failures
  fi
  rm -f "$tmp/var.csv"
done

# set-up calls that fail: --device cuda ends with status 2 and names the
# call; in the shell, set device cuda is refused and the device stays cpu
for f in cudaStreamCreateWithFlags cublasCreate cudnnCreate; do
  out=$(FAKECUDA_FAIL=$f "$R" --device cuda -c version 2>&1)
  st=$?
  out2=$(FAKECUDA_FAIL=$f "$R" -c "set device cuda" -c "show device" 2>&1)
  if [ "$st" -eq 2 ] && printf '%s\n' "$out" | grep -Eq "CUDA backend, [^ ]*cuda.cu:[0-9]+: $f failed: " &&
     ! printf '%s\n' "$out" | grep -q '^rminas [0-9]' &&
     printf '%s\n' "$out2" | grep -Eq "^error: set: CUDA backend, .*: $f failed" &&
     printf '%s\n' "$out2" | grep -Eq '^device +cpu '; then
    ok "$f fails: --device cuda says so (status 2), set device cuda leaves cpu"
  else
    notok "$f fails (status $st)"; printf '%s\n' "$out" "$out2" | head -n 4 | sed 's/^/# /'
  fi
done

# score_of: the last score printed in $out
score_of() { printf '%s\n' "$out" | sed -n 's/.* score \([0-9.]*\) .*/\1/p' | tail -n 1; }

# TF32: the convolutions' inputs rounded to 10 mantissa bits on the fake's
# tensor cores; the settings line says so, the scores move a little
out=$(RMINAS_CUDA_TF32=1 "$R" --device cuda -f "$tmp/base.rmi" -c "score $A1" 2>&1)
st=$?
s32=$(scores one | grep -F "$A1" | cut -d, -f2)
s19=$(score_of)
if [ "$st" -eq 0 ] && clean "$out" && [ -n "$s19" ] &&
   awk "BEGIN { d = $s19 - $s32; if (d < 0) d = -d; exit !(d > 1e-7 && d < 2e-2) }"; then
  ok "RMINAS_CUDA_TF32=1: the score moves from $s32 to $s19 (TF32 rounding), not more than 2e-2"
else
  notok "RMINAS_CUDA_TF32=1 (status $st, float32 $s32, tf32 '$s19')"
  printf '%s\n' "$out" | tail -n 5 | sed 's/^/# /'
fi
# TF32 with Find: Find's list has tensor-op algorithms, one converting to
# half (skipped) and a non-deterministic one; the deterministic tensor-op
# algorithm taken computes what the heuristics' choice does in TF32
out=$(RMINAS_CUDA_TF32=1 RMINAS_CUDA_FIND=1 "$R" --device cuda -f "$tmp/base.rmi" -c "score $A1" 2>&1)
st=$?
sf=$(score_of)
if [ "$st" -eq 0 ] && clean "$out" && [ -n "$sf" ] && [ "$sf" = "$s19" ]; then
  ok "RMINAS_CUDA_TF32=1 with RMINAS_CUDA_FIND=1: the TF32 score $sf, the same as printed with the heuristics"
else
  notok "RMINAS_CUDA_TF32=1 with RMINAS_CUDA_FIND=1 (status $st, '$sf', heuristics $s19)"
  printf '%s\n' "$out" | tail -n 5 | sed 's/^/# /'
fi
echo "$A2" > "$tmp/a2.txt"
RMINAS_CUDA_TF32=1 "$R" --device cuda -f "$tmp/base.rmi" -c "set score_log $tmp/tf.csv" \
  -c "rank $tmp/a2.txt" > /dev/null 2>&1
check "a TF32 score log is refused in float32" 1 "math float32 here, tf32 in the log" -- \
  --device cuda -f "$tmp/base.rmi" -c "set score_log $tmp/tf.csv" -c "rank $tmp/archs.txt"

# out of memory (60 MiB: the teacher and the batch fit, a student does not):
# a clear error that says what the GPU had, nothing crashes, the shell goes on
out=$(FAKECUDA_MEM_MB=60 "$R" --device cuda -f "$tmp/base.rmi" -c "score $A1" -c version 2>&1)
st=$?
if [ "$st" -eq 1 ] && clean "$out" && printf '%s\n' "$out" |
     grep -Eq '^error: score: cannot allocate .* bytes\): CUDA out of memory: [0-9]+ bytes asked, [0-9]+ of 62914560 free on the GPU' &&
   printf '%s\n' "$out" | grep -q '^rminas [0-9]'; then
  ok "out of GPU memory is a clear error and the shell goes on"
else
  notok "out of GPU memory (status $st)"; printf '%s\n' "$out" | tail -n 6 | sed 's/^/# /'
fi
# What the pool holds unused is given back when a plain cudaMalloc runs out:
# a batch selection over 768 images leaves the pool holding about 190 MiB
# of the 240, and the two job threads' buffers (cuBLAS's workspace and the
# batch-norm sums, 33 MiB each, cudaMalloc'd) then fit only once the pool
# is trimmed. The scores are the default's.
out=$(FAKECUDA_MEM_MB=240 "$R" --device cuda -f "$tmp/base.rmi" -c "set batch 384" \
  -c "batch select" -c "set batch 8" -c "batch select" -c "set jobs 2" \
  -c "set score_log $tmp/var.csv" -c "rank $tmp/archs.txt" 2>&1)
st=$?
if [ "$st" -eq 0 ] && clean "$out" && same one var; then
  ok "a thread's cudaMalloc that finds the pool holding the memory: trimmed, the default's scores"
else
  notok "the pool trimmed for a thread's cudaMalloc (status $st)"; show_failures
fi
rm -f "$tmp/var.csv"
# no device
out=$(FAKECUDA_DEVICES=0 "$R" --device cuda -c version 2>&1)
st=$?
if [ "$st" -eq 2 ] && printf '%s\n' "$out" | grep -q 'no CUDA device'; then
  ok "no GPU: --device cuda ends with status 2 and says why"
else
  notok "no GPU (status $st)"; printf '%s\n' "$out" | tail -n 3 | sed 's/^/# /'
fi
out=$(FAKECUDA_DEVICES=2 RMINAS_CUDA_DEVICE=5 "$R" --device cuda -c version 2>&1)
st=$?
if [ "$st" -eq 2 ] && printf '%s\n' "$out" | grep -q 'RMINAS_CUDA_DEVICE=5: there are 2 CUDA devices'; then
  ok "a device number that does not exist is a clear error"
else
  notok "RMINAS_CUDA_DEVICE=5 of 2 (status $st)"; printf '%s\n' "$out" | tail -n 3 | sed 's/^/# /'
fi

# RMI-NAS with 3 jobs scoring ahead, the benchmark for the result
# search STATE VAR=VALUE...: that search, its state in $tmp/STATE.json and
# its evaluations in $tmp/STATE.csv; output in $out, status in $st
search() {
  name=$1
  shift
  out=$(env "$@" "$R" --device cuda -f "$tmp/base.rmi" -c "load benchmark nb201" -c "set jobs 3" \
    -c "set seed 3" -c "set state $tmp/$name.json" \
    -c "search start rminas n_warm 6 n_collect 2 n_fitting 50 trees 5" -c "search run" \
    -c "export csv search $tmp/$name.csv" 2>&1)
  st=$?
}
search s
answer=$(printf '%s\n' "$out" | grep '^arch |')
if [ "$st" -eq 0 ] && clean "$out" && [ -n "$answer" ]; then
  ok "an RMI-NAS search with 3 jobs on the fake GPU runs to its end"
else
  notok "RMI-NAS search with 3 jobs on the fake GPU (status $st)"
  printf '%s\n' "$out" | tail -n 8 | sed 's/^/# /'
fi

# The same search, a kernel faulting at its 25th SGD step (2 a cell, with
# 3 jobs: about the 12th evaluation; sticky, every later call fails, as on
# a GPU): it stops with an error that says the GPU stays failed; a new
# rminas resumes it from its state file and ends with the same
# evaluations, in the same order, with the same scores and answer as the
# search never interrupted.
search f FAKECUDA_FAIL=k_sgd:25
saved=$(($(wc -l < "$tmp/f.csv") - 1))
out2=$("$R" --device cuda -c "search resume $tmp/f.json" -c "export csv search $tmp/f.csv" 2>&1)
st2=$?
# eval, phase, arch, score, prob, good (not the seconds)
cut -d, -f1-4,10,11 "$tmp/s.csv" > "$tmp/s.cut"
cut -d, -f1-4,10,11 "$tmp/f.csv" > "$tmp/f.cut"
if [ "$st" -eq 1 ] && clean "$out" && fired 1 && printf '%s\n' "$out" |
     grep -q '^error: search: .*unspecified launch failure (the GPU stays failed until rminas restarts; a search resumes from its state file)$' &&
   [ "$saved" -gt 0 ] && [ "$saved" -lt "$(($(wc -l < "$tmp/s.cut") - 1))" ] &&
   [ "$st2" -eq 0 ] && clean "$out2" && cmp -s "$tmp/s.cut" "$tmp/f.cut" &&
   [ "$(printf '%s\n' "$out2" | grep '^arch |')" = "$answer" ]; then
  ok "a kernel's fault stops the search after $saved of $(($(wc -l < "$tmp/s.cut") - 1)) evaluations with a clear error; resumed, the same evaluations and answer"
else
  notok "a kernel's fault in a search, then its resume (status $st then $st2, $saved saved)"
  printf '%s\n' "$out" "$out2" | grep -E 'error|FAKECUDA_FAIL|fakecuda|^arch' | head -n 8 | sed 's/^/# /'
  diff "$tmp/s.cut" "$tmp/f.cut" | head -n 6 | sed 's/^/# /'
fi

finish
