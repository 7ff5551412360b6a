# Shared by the shell-script tests (sourced): TAP counters, ok / notok, and
# check NAME STATUS PATTERN -- ARGS...: runs rminas with ARGS and passes when
# it exits with STATUS and its output (stdout and stderr) matches PATTERN.
# Sets R (the program), tmp (a scratch folder removed at exit), n, failed.
top_builddir=${top_builddir:-.}
top_srcdir=${top_srcdir:-.}
SHARED_DIR=${SHARED_DIR:-$top_srcdir/../shared}
R="$top_builddir/rminas"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
n=0
failed=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
notok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $1"; }
skip() { n=$((n + 1)); echo "ok $n # SKIP $1"; }
check() {
  name=$1 want=$2 pat=$3
  shift 4
  out=$("$R" "$@" 2>&1)
  st=$?
  if [ "$st" -eq "$want" ] && printf '%s\n' "$out" | grep -Eq -- "$pat"; then
    ok "$name"
  else
    notok "$name (status $st, want $want)"
    printf '%s\n' "$out" | sed 's/^/# /'
  fi
}
# The end of a test script: the plan, and the status.
finish() {
  echo "1..$n"
  [ "$failed" -eq 0 ]
}
