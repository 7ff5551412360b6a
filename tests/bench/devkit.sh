#!/bin/bash
# A prebuilt kit for one short run on a remote GPU machine that has CUDA,
# cuDNN and PyTorch but none of rminas's build dependencies.
#
#   bash tests/bench/devkit.sh pack     here: build and collect the kit
#   bash tests/bench/devkit.sh run      there, from the repository root, with $OUT set
#
# pack copies the working tree (tracked and untracked-not-ignored files) to
# .devkit/src, builds rminas and the test programs there (configure flags:
# DEVKIT_CONFIGURE, default "--with-cuda=/usr/local/cuda --without-dnnl"),
# and writes what the run needs into .devkit/carry (carry that one path):
#   pkg.tar.xz   rminas, its CUDA backend rminas-cuda.so, tests/test_* and the shared libraries they need that
#                are neither glibc nor CUDA (lib/; libstdc++ and libgcc_s in
#                lib/fallback/, used only where the machine has none)
#   shared/      a copy of ../shared's data and reference in the same layout
#                (the CIFAR-10 JPEG tarball and make-cifar10-bin, the teacher
#                resnet20-c10q75 or those DEVKIT_TEACHERS names,
#                nb201.csv unless the tree's examples/data/nb201.csv is the same
#                file, rmi_ref.py), so SHARED_DIR works there
# pack keeps .devkit/src between calls and rebuilds only what changed
# (DEVKIT_FRESH=1: from scratch). It adds /.devkit/ to .git/info/exclude.
#
# run unpacks the kit to /tmp/rk, finds cuDNN, cuBLAS and the CUDA runtime,
# logs the machine and the library resolution to $OUT/env.txt, converts
# CIFAR-10 to /tmp/c10 (in the background), then runs the steps of
# DEVKIT_STEPS (default "test sanity profile ktrace jobs bench search tf32 train"; empty: none), each under its own
# timeout, none stopping the next:
#   test      tests/test_cuda (TAP)                         DEVKIT_T_TEST (60 s)
#   alltests  every tests/test_* program of the kit          DEVKIT_T_ALLTESTS (120 s)
#   memcheck  tests/test_cuda under compute-sanitizer's memcheck, DEVKIT_MEMCHECK_STEPS
#             (2) RMI steps, plain cudaMalloc (DEVKIT_MEMCHECK_POOL, 0: the sanitizer
#             sees each buffer's bounds)                     DEVKIT_T_MEMCHECK (150 s)
#             (not in the default steps: add it, e.g. DEVKIT_STEPS="test memcheck"; it
#             also runs right after a failed test step, one not timed out, unless
#             DEVKIT_MEMCHECK_ON_FAIL=0, after test_cuda once more with batch norm in
#             three kernels, RMINAS_CUDA_BN_FUSED=0: step test_unfused)
#   sanity    rminas --device cuda: load, teacher eval, batch, score the ResNet-like cell
#                                                            DEVKIT_T_SANITY (60 s)
#   profile   where a score's time goes: the ResNet-like cell scored (150 steps) with
#             CUDA graphs, op by op (RMINAS_CUDA_GRAPHS=0), and under `profile on`
#             (every operation waited for and timed; the table by operation and
#             by convolution shape), with cuDNN's timed algorithm choice
#             (RMINAS_CUDA_FIND=1), with run 2's kernels (RMINAS_CUDA_BN_FUSED=0
#             RMINAS_CUDA_KEEP_RELU=0) and with TF32 convolutions (RMINAS_CUDA_TF32=1)
#                                                            DEVKIT_T_PROFILE (70 s)
#   ktrace    the GPU's own account (tests/bench/ktrace.c, CUPTI): the cell scored
#             twice, then 8 architectures ranked with 8 jobs, DEVKIT_TRACE_STEPS (50)
#             steps each; every kernel and memset, CUDA graph nodes included: time
#             by kernel, per graph launch, and the gaps between launches
#                                                            DEVKIT_T_KTRACE (60 s)
#   jobs      rank 12 architectures with 1 job, with DEVKIT_JOBS_N (4) and 8, and with 4
#             without the memory pool (RMINAS_CUDA_POOL=0): the same scores, and the
#             wall times                                      DEVKIT_T_JOBS (90 s)
#   bench     tests/bench/bench_cuda.sh (rminas vs PyTorch on this GPU; rminas also
#             with BENCH_JOBS (4) jobs at once: the throughput)
#                                                            DEVKIT_T_BENCH (250 s)
#             of which rminas BENCH_T_RMINAS (100 s), PyTorch BENCH_T_TORCH (130 s)
#   search    a full RMI-NAS search on NAS-Bench-201 (examples/search_nb201.rmi with
#             the real CIFAR-10 and the reference teacher, set jobs DEVKIT_SEARCH_JOBS, by
#             default the faster of 4 and 8 in the jobs step)
#                                                            DEVKIT_T_SEARCH (170 s)
#   tf32      TF32 on both sides (RMINAS_CUDA_TF32=1: rminas's convolutions on tensor
#             cores; PyTorch --tf32): bench_cuda.sh on the ResNet-like cell and the
#             first DEVKIT_TF32_N (4) of archs50.txt, each side's scores and seconds
#             beside its float32 ones from the bench step       DEVKIT_T_TF32 (75 s)
#   train     whole networks on the device: the reference teacher fine-tuned for
#             DEVKIT_TRAIN_EPOCHS (1) epochs, then the ResNet-like cell trained
#             as a network, test accuracy before and after   DEVKIT_T_TRAIN (60 s)
#             (last: it runs if the search leaves time)
# Every step's timeout is also cut to what is left of DEVKIT_DEADLINE (480 s
# after the start), so the whole run ends in time. Other knobs:
# DEVKIT_DEVICE (cuda), DEVKIT_SANITY_STEPS (150), DEVKIT_JOBS_STEPS (150), DEVKIT_SEARCH_OPTS (extra "search start rminas" options,
# e.g. "n_warm 10 n_collect 3"), DEVKIT_SEARCH_STEPS (150), BENCH_* (bench_cuda.sh).
# Results under $OUT, at most 5 files: env.txt, run.log (everything printed),
# summary.md (the benchmark's), report.txt (the short version) and
# results.tar.gz (every step's log and CSV; refreshed after each step).
set -u
self=$(cd "$(dirname "$0")" && pwd)/$(basename "$0")
top=$(cd "$(dirname "$0")/../.." && pwd)
kit=$top/.devkit

die() { echo "devkit: $*" >&2; exit 1; }

# ---------------------------------------------------------------- pack
pack() {
    set -eu
    local shared=${SHARED_DIR:-$top/../shared}
    local flags=${DEVKIT_CONFIGURE:---with-cuda=/usr/local/cuda --without-dnnl}
    local jobs=${DEVKIT_JOBS:-2}
    local src=$kit/src carry=$kit/carry pkg=$kit/pkg
    cd "$top"
    grep -qx '/.devkit/' .git/info/exclude 2>/dev/null || echo '/.devkit/' >> .git/info/exclude
    [ "${DEVKIT_FRESH:-0}" = 1 ] && rm -rf "$src"
    mkdir -p "$src"

    # The working tree: copy what changed, drop what left it.
    git ls-files -co --exclude-standard | while IFS= read -r f; do
        [ -f "$f" ] && printf '%s\n' "$f"
    done | sort > "$kit/files.new"
    if [ -f "$kit/files" ]; then
        comm -23 "$kit/files" "$kit/files.new" | while IFS= read -r f; do
            rm -f "$src/$f"
        done
    fi
    local n=0
    while IFS= read -r f; do
        if ! cmp -s "$f" "$src/$f"; then
            mkdir -p "$src/$(dirname "$f")"
            cp -p "$f" "$src/$f"
            n=$((n + 1))
        fi
    done < "$kit/files.new"
    mv "$kit/files.new" "$kit/files"
    echo "devkit: $n files copied to $src ($(wc -l < "$kit/files") in the tree)"

    # Build: configure only when new or when the flags changed; automake's
    # rules rerun autotools when configure.ac or Makefile.am change.
    cd "$src"
    if [ ! -f config.status ] || [ "$(cat "$kit/configure.flags" 2>/dev/null)" != "$flags" ]; then
        autoreconf -fi
        # shellcheck disable=SC2086
        ./configure $flags
        printf '%s' "$flags" > "$kit/configure.flags"
    fi
    make -j"$jobs" rminas rminas-cuda.so
    make -j"$jobs" check TESTS=

    # The package: binaries and their non-glibc, non-CUDA libraries.
    rm -rf "$pkg"
    mkdir -p "$pkg/tests" "$pkg/lib/fallback"
    cp -p rminas rminas-cuda.so "$pkg/"
    local t
    for t in tests/test_*; do
        case $t in *.c | *.h | *.sh | *.py | *.o | *.log | *.trs) continue ;; esac
        [ -f "$t" ] && [ -x "$t" ] && [ "$(head -c 4 "$t" | od -An -c | tr -d ' ')" = '177ELF' ] \
            && cp -p "$t" "$pkg/tests/"
    done
    # Debug info stays in rminas (cuda-gdb is there); the tests lose theirs
    # unless DEVKIT_STRIP=0.
    if [ "${DEVKIT_STRIP:-1}" = 1 ]; then
        strip --strip-debug "$pkg"/tests/test_*
    fi
    local lib name path
    for t in "$pkg/rminas" "$pkg/rminas-cuda.so" "$pkg"/tests/test_*; do ldd "$t"; done \
        | awk '$2 == "=>" && $3 ~ /^\// { print $1, $3 }' | sort -u \
        | while read -r name path; do
            case $name in
            linux-vdso* | ld-linux* | libc.so* | libm.so* | libpthread.so* | libdl.so* | \
            librt.so* | libresolv.so* | libutil.so* | libcud* | libcublas* | libnvrtc* | \
            libnvJitLink*) continue ;;
            libstdc++.so* | libgcc_s.so*) lib=$pkg/lib/fallback ;;
            *) lib=$pkg/lib ;;
            esac
            cp -L "$path" "$lib/$name"
        done
    # ktrace.so (the step ktrace: LD_PRELOADed, opens libcupti itself) and the
    # toolkit's libcupti in lib/cupti/, off the library path: the step has
    # ktrace try it first (the version of the headers ktrace.c is built with),
    # then the machine's own
    local cuda=${DEVKIT_CUDA:-/usr/local/cuda} cupti
    gcc -O2 -Wall -Wextra -shared -fPIC -I"$cuda/include" "$top/tests/bench/ktrace.c" \
        -o "$pkg/ktrace.so" -ldl -lpthread
    for cupti in "$cuda"/lib64/libcupti.so.13 "$cuda"/lib/libcupti.so.13 \
        "$cuda"/extras/CUPTI/lib64/libcupti.so.13; do
        if [ -f "$cupti" ]; then
            mkdir -p "$pkg/lib/cupti"
            cp -L "$cupti" "$pkg/lib/cupti/libcupti.so.13"
            break
        fi
    done
    # What the binaries were built from: run checks the tree it finds against this.
    grep -E '^(src/|kernels/|m4/|tests/[^/]*\.[ch]$|Makefile\.am$|configure\.ac$)' "$kit/files" \
        | (cd "$src" && xargs md5sum) > "$pkg/SOURCES.md5"
    {
        echo "built $(date -u '+%Y-%m-%d %H:%M:%S UTC') on $(. /etc/os-release && echo "$PRETTY_NAME"), $(ldd --version | head -n 1)"
        echo "git $(git -C "$top" rev-parse --short HEAD)$(git -C "$top" diff --quiet HEAD -- . ':!.devkit' || echo ' + working-tree changes')"
        echo "configure $flags"
        grep -E '^(NVCC|NVCC_FLAGS|CUDA_LIBS|CFLAGS) =' Makefile
        echo "libraries:"
        ls -l "$pkg/lib" "$pkg/lib/fallback"
    } > "$pkg/BUILDINFO"
    rm -f "$carry/pkg.tar.xz"
    mkdir -p "$carry"
    XZ_OPT=${XZ_OPT:--9e -T$jobs} tar -C "$pkg" -cJf "$carry/pkg.tar.xz" .

    # The data, in ../shared's layout.
    mkdir -p "$carry/shared/data/cifar10" "$carry/shared/data/teachers" \
        "$carry/shared/data/nb201" "$carry/shared/reference"
    cp -p "$shared/data/cifar10/cifar10-jpeg-q75.tar.gz" "$shared/data/cifar10/make-cifar10-bin" \
        "$carry/shared/data/cifar10/"
    # Only the teacher the steps load (1 MiB each; the kit is near its limit):
    # DEVKIT_TEACHERS="resnet20-c10q75 resnet20-akamaster" for step alltests,
    # whose test_models and test_io read akamaster's.
    rm -f "$carry"/shared/data/teachers/*.safetensors
    local t
    for t in ${DEVKIT_TEACHERS:-resnet20-c10q75}; do
        cp -p "$shared/data/teachers/$t.safetensors" "$carry/shared/data/teachers/" ||
            die "no teacher $t in $shared/data/teachers"
    done
    # nb201.csv is also examples/data/nb201.csv in the tree, which travels
    # anyway: carried only where the two differ (run copies the tree's).
    rm -f "$carry/shared/data/nb201/nb201.csv"
    cmp -s "$shared/data/nb201/nb201.csv" "$top/examples/data/nb201.csv" ||
        cp -p "$shared/data/nb201/nb201.csv" "$carry/shared/data/nb201/"
    cp -p "$shared/reference/rmi_ref.py" "$carry/shared/reference/"

    cd "$top"
    echo "devkit: package contents"
    tar -tvJf "$carry/pkg.tar.xz"
    local tree kitb
    tree=$(git ls-files -co --exclude-standard -z | xargs -0 du -cb 2>/dev/null | tail -n 1 | cut -f1)
    kitb=$(du -sb "$carry" | cut -f1)
    du -ab "$carry" | sort -k2
    awk -v t="$tree" -v k="$kitb" 'BEGIN {
        printf "devkit: working tree %.1f MiB + .devkit/carry %.1f MiB = %.1f MiB (limit 64 MiB)\n",
               t / 1048576, k / 1048576, (t + k) / 1048576
        if (t + k > 60 * 1048576) { print "devkit: TOO BIG (keep it under 60 MiB)"; exit 1 } }'
    echo "devkit: send with carry [\".devkit/carry\"]"
}

# ---------------------------------------------------------------- run
t_start=$(date +%s)
left() { # seconds of DEVKIT_DEADLINE left, minus a margin for packing up
    local l=$(( ${DEVKIT_DEADLINE:-480} - ($(date +%s) - t_start) - 10 ))
    [ "$l" -lt 1 ] && l=1
    echo "$l"
}
cap() { # cap SECONDS [RESERVE]: SECONDS, or what is left (less RESERVE) if less
    local l
    l=$(( $(left) - ${2:-0} ))
    [ "$l" -lt 1 ] && l=1
    [ "$1" -lt "$l" ] && echo "$1" || echo "$l"
}

# The first folder (of the arguments) that holds the library $1.
find_lib_dir() {
    local lib=$1 d
    shift
    for d in "$@"; do
        [ -d "$d" ] && [ -e "$d/$lib" ] && { echo "$d"; return 0; }
    done
    return 1
}

setup_libs() {
    local py_dirs d lib found
    py_dirs=$(timeout 60 python3 -c '
import importlib, os
seen = []
for m in ("nvidia.cudnn", "nvidia.cublas", "nvidia.cuda_runtime", "nvidia.cu13", "nvidia"):
    try:
        mod = importlib.import_module(m)
    except Exception:
        continue
    for p in list(getattr(mod, "__path__", [])) or [os.path.dirname(mod.__file__)]:
        for sub in ("lib", "lib64", ""):
            q = os.path.join(p, sub)
            if os.path.isdir(q) and q not in seen:
                seen.append(q)
print("\n".join(seen))' 2>/dev/null)
    local cands=(/usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib /usr/local/cuda/lib
        /usr/lib/x86_64-linux-gnu)
    while IFS= read -r d; do [ -n "$d" ] && cands+=("$d"); done <<< "$py_dirs"
    # the nvidia namespace's own subfolders (nvidia/cu13/lib, nvidia/cudnn/lib, ...)
    while IFS= read -r d; do
        [ -n "$d" ] && for lib in "$d"/*/lib; do [ -d "$lib" ] && cands+=("$lib"); done
    done <<< "$py_dirs"
    CUDA_DIRS=()
    for lib in libcudart.so.13 libcublas.so.13 libcublasLt.so.13 libcudnn.so.9; do
        found=$(find_lib_dir "$lib" "${cands[@]}") ||
            found=$(ldconfig -p 2>/dev/null | awk -v l="$lib" '$1 == l && !f { print $NF; f = 1 }' | xargs -r dirname)
        [ -z "$found" ] &&
            found=$(timeout 30 find / -xdev -maxdepth 9 -name "$lib" -not -path '/proc/*' 2>/dev/null \
                | head -n 1 | xargs -r dirname)
        echo "library $lib: ${found:-NOT FOUND}"
        [ -n "$found" ] && case " ${CUDA_DIRS[*]} " in *" $found "*) ;; *) CUDA_DIRS+=("$found") ;; esac
    done
    local llp=$rk/lib
    for d in "${CUDA_DIRS[@]}"; do llp=$llp:$d; done
    [ -n "${LD_LIBRARY_PATH:-}" ] && llp=$llp:$LD_LIBRARY_PATH
    # Debian 12's libstdc++ / libgcc_s only where the machine lacks them
    local cache
    cache=$(ldconfig -p 2>/dev/null)
    for lib in libstdc++.so.6 libgcc_s.so.1; do
        if ! awk -v l="$lib" '$1 == l { f = 1 } END { exit !f }' <<< "$cache"; then
            echo "library $lib: not on this machine, the kit's copy is used"
            llp=$llp:$rk/lib/fallback
            break
        fi
    done
    export LD_LIBRARY_PATH=$llp
    echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
}

# step NAME TIMEOUT [RESERVE]: run step_NAME (in a new bash) with its own timeout (cut to
# what is left of the deadline, less RESERVE seconds kept for later steps), output to the
# step's log and to run.log; never stops the run.
step() {
    local name=$1 t=$2 rc t0 t1
    t=$(cap "$t" "${3:-0}")
    echo
    echo "=== step $name (timeout ${t} s) $(date -u +%H:%M:%S)"
    t0=$(date +%s.%N)
    DEVKIT_STEP_T=$t timeout -k 10 "$t" bash "$self" _step "$name" 2>&1 | tee "$work/$name.log"
    rc=${PIPESTATUS[0]}
    t1=$(date +%s.%N)
    local took
    took=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
    case $rc in
    0) echo "=== step $name: ok, ${took} s" ;;
    124 | 137) echo "=== step $name: TIMED OUT after ${took} s (rc $rc)" ;;
    *) echo "=== step $name: FAILED rc $rc, ${took} s" ;;
    esac
    echo "$name rc=$rc seconds=$took" >> "$work/steps.txt"
    tar -C "$work" -czf "$OUT/results.tar.gz.tmp" . && mv "$OUT/results.tar.gz.tmp" "$OUT/results.tar.gz"
    return 0
}

wait_c10() {
    if [ -n "${c10_pid:-}" ]; then
        wait "$c10_pid"
        echo "CIFAR-10 conversion: rc $? ($(cat "$work/c10.seconds" 2>/dev/null) s)"
        ls -l "$c10"
        c10_pid=
    fi
}

step_test() {
    local t=$rk/tests/test_cuda
    [ -x "$t" ] || { echo "no tests/test_cuda in the kit"; return 1; }
    "$t"
}

# After a failed test_cuda: the same with batch norm in three kernels a pass
# (as in run 2), so a failure of the fused kernels shows as such.
step_test_unfused() {
    local t=$rk/tests/test_cuda
    [ -x "$t" ] || { echo "no tests/test_cuda in the kit"; return 1; }
    RMINAS_CUDA_BN_FUSED=0 "$t" > "$work/test_unfused.tap" 2>&1
    local rc=$?
    echo "test_cuda with RMINAS_CUDA_BN_FUSED=0: rc $rc, $(grep -c '^ok' "$work/test_unfused.tap") ok," \
        "$(grep -c '^not ok' "$work/test_unfused.tap") not ok"
    grep '^not ok' "$work/test_unfused.tap" | head -n 20
    return $rc
}

# tests/test_cuda under compute-sanitizer (memcheck: out-of-bounds and
# misaligned device accesses, bad frees, errors of CUDA calls) with few RMI
# steps; slow, so not in the default steps.
step_memcheck() {
    local t=$rk/tests/test_cuda cs
    [ -x "$t" ] || { echo "no tests/test_cuda in the kit"; return 1; }
    cs=$(command -v compute-sanitizer) || for cs in /usr/local/cuda/bin/compute-sanitizer \
        /usr/local/cuda/compute-sanitizer/compute-sanitizer /usr/local/cuda-*/bin/compute-sanitizer ""; do
        [ -x "$cs" ] && break
    done
    [ -n "$cs" ] || { echo "devkit: no compute-sanitizer on this machine"; return 1; }
    echo "devkit: $cs ($("$cs" --version 2>&1 | tail -n 1))"
    RMINAS_TEST_CUDA_STEPS=${DEVKIT_MEMCHECK_STEPS:-2} RMINAS_CUDA_POOL=${DEVKIT_MEMCHECK_POOL:-0} \
        "$cs" --tool memcheck --error-exitcode 3 "$t"
}

# Every test program; test_models and test_io need the akamaster teacher in the
# kit (pack with DEVKIT_TEACHERS="resnet20-c10q75 resnet20-akamaster").
step_alltests() {
    local t fails=0
    for t in "$rk"/tests/test_*; do
        echo "--- $(basename "$t")"
        CIFAR10_DIR=$c10 "$t" || { fails=$((fails + 1)); echo "--- $(basename "$t") FAILED"; }
    done
    echo "--- $fails program(s) failed"
    [ "$fails" = 0 ]
}

step_sanity() {
    cat > "$work/sanity.rmi" <<EOF
version
load dataset cifar10 $c10
load teacher resnet20 $teacher
load benchmark nb201 $nb201
teacher eval
batch select
arch set $resnet_cell
init
step 3
set steps ${DEVKIT_SANITY_STEPS:-150}
score
EOF
    "$rk/rminas" -e --device "$dev" -f "$work/sanity.rmi"
}

# The ResNet-like cell scored twice (the second warm) with the environment
# variables given (NAME=VALUE ...): the score lines.
cell_twice() {
    env "$@" "$rk/rminas" --device "$dev" -c "load dataset cifar10 $c10" \
        -c "load teacher resnet20 $teacher" -c "batch select" -c "set steps ${DEVKIT_SANITY_STEPS:-150}" \
        -c "score $resnet_cell" -c "score $resnet_cell" | grep -E 'score|error'
}

# Where the time of one score goes on this device.
step_profile() {
    cat > "$work/profile.rmi" <<EOF
load dataset cifar10 $c10
load teacher resnet20 $teacher
batch select
set steps ${DEVKIT_SANITY_STEPS:-150}
score $resnet_cell
score $resnet_cell
profile on
score $resnet_cell
profile
export csv profile $work/profile.csv
EOF
    echo "== with CUDA graphs (the second score is the warm one), then under profile on"
    "$rk/rminas" -e --device "$dev" -f "$work/profile.rmi"
    local rc=$?
    echo "== op by op (RMINAS_CUDA_GRAPHS=0), no profile"
    cell_twice RMINAS_CUDA_GRAPHS=0
    echo "== algorithms timed by cuDNN's Find (RMINAS_CUDA_FIND=1), with CUDA graphs, no profile"
    cell_twice RMINAS_CUDA_FIND=1
    echo "== run 2's kernels: batch norm in three a pass (RMINAS_CUDA_BN_FUSED=0), the ReLU recomputed in the backward (RMINAS_CUDA_KEEP_RELU=0), with CUDA graphs, no profile"
    cell_twice RMINAS_CUDA_BN_FUSED=0 RMINAS_CUDA_KEEP_RELU=0
    echo "== convolutions in TF32 (RMINAS_CUDA_TF32=1), with CUDA graphs, no profile"
    cell_twice RMINAS_CUDA_TF32=1
    return $rc
}

# The GPU's own account of its time (tests/bench/ktrace.c, CUPTI's activity
# API; Nsight Systems makes no report on these machines): the ResNet-like
# cell scored twice (the second warm), then DEVKIT_JOBS_N * 2 (8)
# architectures ranked at once, DEVKIT_TRACE_STEPS (50) steps each, every
# kernel and memory operation recorded, CUDA graph nodes included: what the
# ~5 ms of a step are, which `profile on` (each operation waited for) can
# only estimate, and how much concurrent jobs overlap on the GPU.
step_ktrace() {
    [ -f "$rk/ktrace.so" ] || { echo "devkit: no ktrace.so in the kit"; return 1; }
    local n=${DEVKIT_TRACE_STEPS:-50} j=$(( ${DEVKIT_JOBS_N:-4} * 2 )) rc=0
    head -n "$j" "$top/tests/bench/archs50.txt" > "$work/ktrace-archs.txt"
    echo "== the ResNet-like cell, $n steps, scored twice"
    KTRACE_CUPTI=$rk/lib/cupti/libcupti.so.13 KTRACE_OUT=$work/ktrace1.txt LD_PRELOAD=$rk/ktrace.so \
        "$rk/rminas" --device "$dev" -c "load dataset cifar10 $c10" -c "load teacher resnet20 $teacher" \
        -c "batch select" -c "set steps $n" -c "score $resnet_cell" -c "score $resnet_cell" 2>&1 |
        grep -E 'score|error' || rc=1
    cat "$work/ktrace1.txt" 2>/dev/null || rc=1
    echo "== $j architectures of archs50.txt ranked with $j jobs, $n steps each"
    KTRACE_CUPTI=$rk/lib/cupti/libcupti.so.13 KTRACE_OUT=$work/ktrace2.txt LD_PRELOAD=$rk/ktrace.so \
        "$rk/rminas" --device "$dev" -c "load dataset cifar10 $c10" -c "load teacher resnet20 $teacher" \
        -c "set steps $n" -c "set jobs $j" -c "rank $work/ktrace-archs.txt" 2>&1 |
        grep -E '^(wall time|error)' || rc=1
    cat "$work/ktrace2.txt" 2>/dev/null || rc=1
    return $rc
}

# Concurrent scoring on the GPU: the first DEVKIT_JOBS_ARCHS (12) of archs50.txt
# ranked with one job, then with DEVKIT_JOBS_N (4) and twice that, then with DEVKIT_JOBS_N and
# RMINAS_CUDA_POOL=0 (cudaMalloc/cudaFree, which wait for the whole device,
# instead of the stream-ordered pool); the score logs (every digit) must agree,
# and the wall times say what concurrency and the pool give.
step_jobs() {
    local j=${DEVKIT_JOBS_N:-4} n=${DEVKIT_JOBS_ARCHS:-12} run k pool bad=0
    head -n "$n" "$top/tests/bench/archs50.txt" > "$work/jobs-archs.txt"
    for run in 1 "$j" "$((2 * j))" "$j-nopool"; do
        k=${run%-nopool} pool=1
        [ "$run" != "$k" ] && pool=0
        rm -f "$work/jobs$run.csv" "$work/jobs$run.csv.settings"
        cat > "$work/jobs$run.rmi" <<EOF
load dataset cifar10 $c10
load teacher resnet20 $teacher
load benchmark nb201 $nb201
set jobs $k
set steps ${DEVKIT_JOBS_STEPS:-150}
set score_log $work/jobs$run.csv
rank $work/jobs-archs.txt
EOF
        RMINAS_CUDA_POOL=$pool "$rk/rminas" -e --device "$dev" -f "$work/jobs$run.rmi" > "$work/jobs$run.log" 2>&1
        echo "jobs $k, pool $pool: $(grep -E '^(wall time|error)' "$work/jobs$run.log" | tr '\n' ' ')"
        [ "$run" = 1 ] && continue
        # (n scores on both sides: two missing logs are no agreement)
        if [ "$(sed 1d "$work/jobs1.csv" 2>/dev/null | wc -l)" -eq "$n" ] &&
           [ "$(sed 1d "$work/jobs$run.csv" 2>/dev/null | wc -l)" -eq "$n" ] &&
           [ "$(cut -d, -f1-6 "$work/jobs1.csv" | sort)" = "$(cut -d, -f1-6 "$work/jobs$run.csv" | sort)" ]; then
            echo "jobs: $k jobs (pool $pool) gave the same $n scores as 1 job, to the last digit"
        else
            echo "jobs: $k jobs (pool $pool) gave OTHER scores than 1 job (or not all $n)"
            diff <(sort "$work/jobs1.csv") <(sort "$work/jobs$run.csv") | head -n 20
            bad=1
        fi
    done
    return $bad
}

# TF32 on both sides: rminas with RMINAS_CUDA_TF32=1 (cuDNN's convolutions on
# tensor cores; cuBLAS stays float32), PyTorch with --tf32 (cuDNN and cuBLAS;
# convolutions in TF32 are its default). bench_cuda.sh on the ResNet-like cell
# and the first DEVKIT_TF32_N (4) architectures of archs50.txt, then each
# side's TF32 scores and seconds beside its float32 ones from the bench step
# (when it ran): what tensor cores give, and what they do to the scores.
step_tf32() {
    local avail=$(( ${DEVKIT_STEP_T:-100000} - 10 ))
    [ "$avail" -lt 10 ] && avail=10
    RMINAS_CUDA_TF32=1 TORCH_LD_LIBRARY_PATH=$DEVKIT_ORIG_LLP BENCH_DEVICE=$dev RMINAS=$rk/rminas \
        C10=$c10 SHARED_DIR=$shared BENCH_N=${DEVKIT_TF32_N:-4} BENCH_JOBS=0 BENCH_TORCH_ARGS=--tf32 \
        BENCH_T_RMINAS=$(( avail * 2 / 5 )) BENCH_T_TORCH=$(( avail * 3 / 5 )) \
        bash "$top/tests/bench/bench_cuda.sh" "$work/tf32"
    echo "(this table: rminas with RMINAS_CUDA_TF32=1, PyTorch with --tf32)"
    python3 - "$work/bench" "$work/tf32" <<'PY'
import csv, os, sys

def rows(d, name):
    try:
        with open(os.path.join(d, name)) as f:
            return {r['arch']: r for r in csv.DictReader(f) if r.get('arch')}
    except OSError:
        return {}

fp32, tf32 = sys.argv[1:3]
for side, files in (('rminas', ('rminas_resnet.csv', 'rminas.csv')), ('PyTorch', ('torch.csv',))):
    a, b = {}, {}
    for f in files:
        a.update(rows(fp32, f))
        b.update(rows(tf32, f))
    common = [k for k in b if k in a]
    print('%s, float32 -> TF32 (%d architectures in both):' % (side, len(common)))
    for k in common:
        sa, sb = float(a[k]['score']), float(b[k]['score'])
        print('  score %.6f -> %.6f (rel %.1e), %.3f s -> %.3f s  %s'
              % (sa, sb, abs(sb - sa) / max(abs(sa), 1e-12), float(a[k]['seconds']),
                 float(b[k]['seconds']), k))
PY
}

step_bench() {
    # The two sides' timeouts, shrunk in proportion when the step has less time.
    local tr=${BENCH_T_RMINAS:-100} tt=${BENCH_T_TORCH:-130} avail=$(( ${DEVKIT_STEP_T:-100000} - 15 ))
    if [ $((tr + tt)) -gt "$avail" ]; then
        local sum=$((tr + tt))
        tr=$(( avail * tr / sum )) tt=$(( avail * tt / sum ))
        [ "$tr" -lt 1 ] && tr=1
        [ "$tt" -lt 1 ] && tt=1
        echo "devkit: the step has ${DEVKIT_STEP_T} s: rminas gets $tr s, PyTorch $tt s"
    fi
    # PyTorch runs with the machine's own library path, not the kit's.
    TORCH_LD_LIBRARY_PATH=$DEVKIT_ORIG_LLP BENCH_DEVICE=$dev RMINAS=$rk/rminas C10=$c10 SHARED_DIR=$shared \
        BENCH_JOBS=${BENCH_JOBS:-4} \
        BENCH_T_RMINAS=$tr BENCH_T_TORCH=$tt \
        bash "$top/tests/bench/bench_cuda.sh" "$work/bench"
    cp "$work/bench/summary.md" "$OUT/summary.md" 2>/dev/null
    return 0
}

# The jobs the search runs with: DEVKIT_SEARCH_JOBS, else whichever of
# DEVKIT_JOBS_N and twice that ranked faster in the jobs step, else 4.
search_jobs() {
    if [ -n "${DEVKIT_SEARCH_JOBS:-}" ]; then echo "$DEVKIT_SEARCH_JOBS"; return; fi
    local j=${DEVKIT_JOBS_N:-4} a b
    a=$(sed -n 's/^wall time \([0-9.]*\) s with.*/\1/p' "$work/jobs$j.log" 2>/dev/null)
    b=$(sed -n 's/^wall time \([0-9.]*\) s with.*/\1/p' "$work/jobs$((2 * j)).log" 2>/dev/null)
    if [ -n "$a" ] && [ -n "$b" ] && awk -v a="$a" -v b="$b" 'BEGIN { exit !(b < a) }'; then
        echo $((2 * j))
    elif [ -n "$a" ]; then echo "$j"
    else echo 4; fi
}

step_search() {
    local state=/tmp/devkit-search.json sj
    rm -f "$state" "$state".*
    sj=$(search_jobs)
    echo "search: set jobs $sj"
    cat > "$work/search.rmi" <<EOF
load dataset cifar10 $c10
load teacher resnet20 $teacher
load benchmark nb201 $nb201
set steps ${DEVKIT_SEARCH_STEPS:-150}
set seed 1
set jobs $sj
set state $state
search start rminas ${DEVKIT_SEARCH_OPTS:-}
search run
search status
search result
export csv search $work/search.csv
EOF
    local t0 t1 rc
    t0=$(date +%s.%N)
    "$rk/rminas" -e --device "$dev" -f "$work/search.rmi"
    rc=$?
    t1=$(date +%s.%N)
    echo "search wall time: $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }') s (rc $rc)"
    return $rc
}

# Whole-network training on this device: the reference teacher fine-tuned for
# one epoch (its test accuracy before and after), then the ResNet-like cell
# trained from scratch for one epoch, with the times.
step_train() {
    "$rk/rminas" -e --device "$dev" -c "load dataset cifar10 $c10" -c "load teacher resnet20 $teacher" \
        -c "teacher eval" -c "teacher train epochs ${DEVKIT_TRAIN_EPOCHS:-1} every 100" -c "teacher eval" \
        -c "arch set $resnet_cell" -c "train epochs ${DEVKIT_TRAIN_EPOCHS:-1} every 100" -c "eval"
}

# After a search that timed out: what its state file holds.
step_searchstate() {
    local state=/tmp/devkit-search.json
    [ -f "$state" ] || { echo "no state file"; return 1; }
    "$rk/rminas" -e -c "search load $state" -c "search status" \
        -c "export csv search $work/search-partial.csv"
}

run() {
    : "${OUT:?run needs OUT (the folder whose files come back)}"
    mkdir -p "$OUT"
    run_main 2>&1 | tee "$OUT/run.log"
}

run_main() {
    set -o pipefail
    cd "$top" || exit 1
    rk=${DEVKIT_RK:-/tmp/rk}
    c10=${DEVKIT_C10:-/tmp/c10}
    dev=${DEVKIT_DEVICE:-cuda}
    work=${DEVKIT_WORK:-/tmp/devkit-work}
    shared=$kit/carry/shared
    teacher=$shared/data/teachers/resnet20-c10q75.safetensors
    nb201=$shared/data/nb201/nb201.csv
    [ -f "$nb201" ] || { mkdir -p "${nb201%/*}" && cp "$top/examples/data/nb201.csv" "$nb201"; } || exit 1
    resnet_cell='|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|skip_connect~2|'
    export SHARED_DIR=$shared RMINAS_DATA=$top/examples/data top_srcdir=$top top_builddir=$rk
    export PYTHONUNBUFFERED=1
    rm -rf "$work"
    mkdir -p "$work"
    echo "devkit run: start $(date -u '+%Y-%m-%d %H:%M:%S UTC') in $top, steps: ${DEVKIT_STEPS-test sanity profile ktrace jobs bench search tf32 train}, deadline ${DEVKIT_DEADLINE:-480} s, device $dev"
    env | grep -E '^(DEVKIT|BENCH)_' | sort

    rm -rf "$rk"
    mkdir -p "$rk"
    if command -v xz > /dev/null; then
        tar -C "$rk" -xJf "$kit/carry/pkg.tar.xz"
    else # no xz(1): Python's lzma
        python3 -c 'import sys, tarfile
t = tarfile.open(sys.argv[1])
t.extractall(sys.argv[2], **({"filter": "tar"} if hasattr(tarfile, "data_filter") else {}))' \
            "$kit/carry/pkg.tar.xz" "$rk"
    fi || die "cannot unpack $kit/carry/pkg.tar.xz"
    echo "unpacked the kit in $(( $(date +%s) - t_start )) s"
    # CIFAR-10 in the background while the machine is looked at and tested.
    if [ ! -f "$c10/test_batch.bin" ]; then
        ( s=$(date +%s.%N); python3 "$shared/data/cifar10/make-cifar10-bin" "$c10" > "$work/c10.log" 2>&1
          r=$?; awk -v a="$s" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f\n", b - a }' > "$work/c10.seconds"
          exit $r ) &
        c10_pid=$!
    fi
    {
        echo "== $(date -u) $(uname -a)"
        cat /etc/os-release 2>/dev/null | head -n 4
        ldd --version 2>&1 | head -n 1
        echo "== nvidia-smi"
        nvidia-smi 2>&1
        nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>&1
        echo "== nvcc"; nvcc --version 2>&1 | tail -n 2
        echo "== python3"; command -v python3
        timeout 60 python3 -c 'import torch, PIL, numpy; print("torch", torch.__version__, "cuda", torch.version.cuda, "cudnn", torch.backends.cudnn.version(), "PIL", PIL.__version__, "numpy", numpy.__version__); print("torch sees", torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU")' 2>&1
        echo "== kit"; cat "$rk/BUILDINFO"
        echo "== sources: this tree against the kit's build ($(wc -l < "$rk/SOURCES.md5") files)"
        if md5sum -c --quiet "$rk/SOURCES.md5" 2>&1; then echo "same sources"
        else echo "WARNING: the kit was built from other sources (pack again)"; fi
        echo "== libraries"
        DEVKIT_ORIG_LLP=${LD_LIBRARY_PATH:-}
        setup_libs
        echo "== ldconfig -p (CUDA)"; ldconfig -p 2>/dev/null | grep -E 'lib(cudnn|cublas|cublasLt|cudart|cuda)\.so\.'
        echo "== ldd rminas"; ldd "$rk/rminas"
        [ -x "$rk/tests/test_cuda" ] && { echo "== ldd tests/test_cuda"; ldd "$rk/tests/test_cuda"; }
        echo "== rminas --version"; "$rk/rminas" --version
    } > "$OUT/env.txt" 2>&1
    # setup_libs ran in a subshell's redirection but not a subshell: LD_LIBRARY_PATH is set here.
    cat "$OUT/env.txt"
    grep -qi 'not found' "$OUT/env.txt" && echo "devkit: WARNING: a library is not found (see ldd above)"

    export rk c10 dev work shared teacher nb201 resnet_cell OUT DEVKIT_ORIG_LLP
    local s
    for s in ${DEVKIT_STEPS-test sanity profile ktrace jobs bench search tf32 train}; do
        [ "$s" = test ] || wait_c10
        case $s in
        test)
            step test "${DEVKIT_T_TEST:-60}"
            # a failed test_cuda (not one that ran out of time: it would again): its run under
            # memcheck at once, unless asked for later anyway
            if [ "${DEVKIT_MEMCHECK_ON_FAIL:-1}" = 1 ] && [[ " ${DEVKIT_STEPS-} " != *" memcheck "* ]] &&
                ! grep -qE '^test rc=(0|124|137) ' "$work/steps.txt"; then
                echo "devkit: test_cuda failed: again with batch norm unfused, then under memcheck"
                step test_unfused "${DEVKIT_T_TEST:-60}"
                step memcheck "${DEVKIT_T_MEMCHECK:-150}"
            fi
            ;;
        alltests) step alltests "${DEVKIT_T_ALLTESTS:-120}" ;;
        memcheck) step memcheck "${DEVKIT_T_MEMCHECK:-150}" ;;
        sanity) step sanity "${DEVKIT_T_SANITY:-60}" ;;
        profile) step profile "${DEVKIT_T_PROFILE:-70}" ;;
        ktrace) step ktrace "${DEVKIT_T_KTRACE:-60}" ;;
        jobs) step jobs "${DEVKIT_T_JOBS:-90}" ;;
        bench) step bench "${DEVKIT_T_BENCH:-250}" ;;
        tf32) step tf32 "${DEVKIT_T_TF32:-75}" ;;
        search)
            step search "${DEVKIT_T_SEARCH:-170}" 20
            grep -q '^search rc=0 ' "$work/steps.txt" || step searchstate 20
            ;;
        train) step train "${DEVKIT_T_TRAIN:-60}" ;;
        *) echo "devkit: unknown step '$s'" ;;
        esac
    done
    wait_c10 > /dev/null 2>&1

    {
        echo "# devkit run $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
        grep -m1 -E 'NVIDIA|H100|H200' "$OUT/env.txt" | head -n 1
        echo "## steps"; cat "$work/steps.txt"
        echo "## test"; grep -E '^(not ok|# |1\.\.)' "$work/test.log" 2>/dev/null | head -n 40
        [ -f "$work/test_unfused.log" ] && { echo "## test_unfused"
            grep -E '^test_cuda with|^not ok' "$work/test_unfused.log" | head -n 20; }
        [ -f "$work/memcheck.log" ] && { echo "## memcheck"
            grep -E '^(not ok|=========|# )' "$work/memcheck.log" | head -n 30; }
        grep -c '^ok' "$work/test.log" 2>/dev/null | sed 's/^/ok lines: /'
        echo "## sanity"; grep -v -E '^[a-z_0-9]+ {3,}' "$work/sanity.log" 2>/dev/null | tail -n 14
        echo "## profile"; grep -E '^(\|.*score|  [a-z_0-9]+ +[0-9]|profile \(|==)' "$work/profile.log" 2>/dev/null | head -n 60
        echo "## ktrace"; grep -v -E '^(dataset|teacher|batch)|^  (classes|training images|teacher CE)' \
            "$work/ktrace.log" 2>/dev/null | head -n 150
        echo "## jobs"; cat "$work/jobs.log" 2>/dev/null | tail -n 8
        echo "## bench"; cat "$work/bench/summary.md" 2>/dev/null
        echo "## search"
        grep -v -E '^(\[[0-9]+\]|rminas> (load|set|version)|(dataset|teacher|benchmark) )' "$work/search.log" \
            2>/dev/null | tail -n 16
        grep -E '^\[[0-9]+\]' "$work/search.log" 2>/dev/null | tail -n 3
        grep -v -E '^rminas> |^(dataset|teacher|benchmark) ' "$work/searchstate.log" 2>/dev/null | tail -n 8
        echo "## tf32"; grep -E '^(\||- rminas|- exit|\(this|rminas, |PyTorch, |  score)' "$work/tf32.log" 2>/dev/null | head -n 30
        echo "## train"; grep -v -E '^rminas> (load|arch)' "$work/train.log" 2>/dev/null | tail -n 24
    } > "$OUT/report.txt" 2>&1
    tar -C "$work" -czf "$OUT/results.tar.gz" .
    echo
    cat "$OUT/report.txt"
    echo "devkit run: end after $(( $(date +%s) - t_start )) s; files in \$OUT: $(ls "$OUT" | tr '\n' ' ')"
}

case ${1:-} in
pack) pack ;;
run) run ;;
_step) "step_$2" ;;
*) die "usage: devkit.sh pack|run" ;;
esac
