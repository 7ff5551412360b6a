#!/bin/sh
# Build rminas on a fresh Debian 12 machine, then run it.
#
#   sh quickstart.sh         install missing packages, build, run examples/main.rmi
#   sh quickstart.sh check   install missing packages, build, run make check and
#                            end with "N passed, N failed, N skipped"
#
# CONFIGURE_FLAGS is passed to ./configure, e.g. CONFIGURE_FLAGS=--without-cuda.
# Safe to re-run: apt is skipped when every package is installed, and
# autogen/configure only run when their inputs changed.
set -eu

packages="build-essential autoconf automake libtool pkg-config libopenblas-dev \
libdnnl-dev libcsv-dev libjansson-dev libreadline-dev libncurses-dev tmux python3"

mode=${1:-run}
case $mode in
  run|check) ;;
  *) echo "usage: sh quickstart.sh [check]" >&2; exit 2 ;;
esac

cd "$(dirname "$0")"

say() { echo "quickstart: $*"; }

install_packages() {
  if ! command -v dpkg-query >/dev/null 2>&1; then
    say "not a Debian system; install the equivalents of: $packages"
    return 0
  fi
  missing=
  for p in $packages; do
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null) || status=
    [ "$status" = "install ok installed" ] || missing="$missing $p"
  done
  if [ -z "$missing" ]; then
    say "Debian packages already installed"
    return 0
  fi
  if [ "$(id -u)" -eq 0 ]; then sudo=; else sudo=sudo; fi
  say "installing$missing"
  $sudo apt-get update
  # shellcheck disable=SC2086  # one word per package
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y $missing
}

# CONFIGURE_FLAGS as words joined by single spaces, the form in which
# config.status --config reports them once its quotes are dropped.
wanted_flags() {
  # shellcheck disable=SC2086  # CONFIGURE_FLAGS is split into words on purpose
  echo ${CONFIGURE_FLAGS:-}
}

# newer A B: file A was modified after file B (test -nt is not POSIX).
newer() { [ -n "$(find "$1" -newer "$2" 2>/dev/null)" ]; }

build() {
  if [ ! -f configure ] || newer configure.ac configure; then
    ./autogen.sh
  fi
  if [ ! -f Makefile ] || newer configure.ac Makefile || newer configure Makefile ||
     [ "$(./config.status --config 2>/dev/null | tr -d "'")" != "$(wanted_flags)" ]; then
    # shellcheck disable=SC2086
    ./configure ${CONFIGURE_FLAGS:-}
  fi
  make -j2 || { say "build failed (see above); nothing was run"; exit 1; }
}

# Counts over the .trs files written by this make check: PASS and XFAIL
# passed; FAIL, XPASS and ERROR failed; SKIP skipped.
summarize() {
  find . -name '*.trs' -newer "$1" -exec cat {} + 2>/dev/null |
    awk '$1 == ":test-result:" {
           if ($2 == "PASS" || $2 == "XFAIL") p++
           else if ($2 == "SKIP") s++
           else f++
         }
         END { printf "%d passed, %d failed, %d skipped\n", p, f, s }'
}

install_packages
build

if [ "$mode" = run ]; then
  if [ ! -f examples/main.rmi ]; then
    say "built ./rminas, but examples/main.rmi is not in this checkout; run ./rminas by hand"
    exit 1
  fi
  exec ./rminas -f examples/main.rmi
fi

stamp=$(mktemp)
trap 'rm -f "$stamp"' EXIT
rc=0
make -j2 check || rc=$?
if [ "$rc" -ne 0 ]; then
  if [ -f test-suite.log ] && newer test-suite.log "$stamp"; then
    cat test-suite.log
  else
    say "make check failed before the tests ran (see above)"
  fi
fi
line=$(summarize "$stamp")
echo "$line"
case $line in
  *" 0 failed,"*) exit "$rc" ;;
  *) exit 1 ;;
esac
