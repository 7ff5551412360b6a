#!/bin/sh
# tests/test_fuzz under AddressSanitizer and UndefinedBehaviorSanitizer: a
# copy of the working tree's sources built in a scratch folder with
# -fsanitize=address,undefined (the CUDA backend, where configure finds the
# toolkit, is built but not sanitized: nvcc; the fake GPU's module of
# tests/test_fakecuda.sh is), then the fuzzer run for each seed given. Not
# part of make check (the build takes a few minutes).
#
#   sh tests/fuzz_asan.sh [ITERATIONS [SEED ...]]     (defaults: 60000, seeds 1 2 3)
#   sh tests/fuzz_asan.sh check                        the whole make check in that build
#                                                      (about 45 minutes on 2 cores;
#                                                      TESTS="tests/test_io ..." for some)
#
# Prints the TAP lines of each run; the exit status is 1 if any run failed
# (a sanitizer report, a broken invariant). WORK=DIR keeps the build there.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
full=0
[ "${1:-}" = check ] && { full=1; shift; }
iters=${1:-60000}
[ $# -gt 0 ] && shift
seeds=${*:-1 2 3}
work=${WORK:-$(mktemp -d)}
mkdir -p "$work/src"
# the working tree's files (uncommitted changes and new files too)
(cd "$top" && git ls-files -z --cached --others --exclude-standard |
  xargs -0 sh -c 'for f; do [ -e "$f" ] && cp --parents "$f" "$0"; done' "$work/src")
cd "$work/src"
san="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
if [ ! -x tests/test_fuzz ]; then
  { ./autogen.sh && ./configure CFLAGS="-O1 -g $san" CXXFLAGS="-O1 -g $san" \
      LDFLAGS="$san" &&
    make -j"$(nproc)" tests/test_fuzz; } > "$work/build.log" 2>&1 ||
    { echo "build failed: $work/build.log"; tail -n 20 "$work/build.log"; exit 1; }
fi
if [ $full -eq 1 ]; then
  ln -sfn "$(cd "$top/.." && pwd)/shared" "$work/shared" 2>/dev/null || true
  ASAN_OPTIONS=detect_leaks=0 make -j"$(nproc)" check ${TESTS:+TESTS="$TESTS"} \
    > "$work/check.log" 2>&1 && st=0 || st=1
  grep -E '^# (TOTAL|PASS|SKIP|FAIL|ERROR)|^(FAIL|ERROR):' "$work/check.log"
  [ $st -eq 0 ] || echo "logs in $work (check.log, tests/*.log)"
  [ -n "${WORK:-}" ] || [ $st -ne 0 ] || rm -rf "$work"
  exit $st
fi
st=0
shm=/dev/shm
[ -d "$shm" ] && [ -w "$shm" ] || shm=${TMPDIR:-/tmp}
for s in $seeds; do
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 FUZZ_SEED=$s FUZZ_ITER=$iters TMPDIR=$shm \
    tests/test_fuzz > "$work/fuzz-$s.log" 2>&1 || st=1
  grep -E '^(ok|not ok|#)|ERROR|SUMMARY' "$work/fuzz-$s.log"
done
[ -n "${WORK:-}" ] || [ $st -ne 0 ] || rm -rf "$work"
[ $st -eq 0 ] || echo "logs in $work"
exit $st
