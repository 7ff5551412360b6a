#!/bin/sh
# The scripts under examples/ run as documented (TAP): tour.rmi as it is
# (doc/transcript.md is its transcript), the others shortened for a test
# (2 RMI steps, a few warm-up architectures, a short ranking) by rewriting
# only their step counts and search sizes, each with `-b` (stop at the
# first failing command) in a scratch folder, checking the files they say
# they write. The scripts that take the dataset from the command line get
# the bundled CIFAR-10 subset.
set -u
. "${top_srcdir:-.}/tests/tap.sh"
R=$(cd "$top_builddir" && pwd)/rminas
ex=$(cd "$top_srcdir/examples" && pwd)

# run NAME SCRIPT PATTERN [ARGS...]: rminas -b ARGS -f SCRIPT in $tmp/NAME;
# passes when it exits 0 and its output matches PATTERN.
run() {
  name=$1 script=$2 pat=$3
  shift 3
  mkdir -p "$tmp/$name"
  out=$(cd "$tmp/$name" && "$R" -b "$@" -f "$script" 2>&1)
  st=$?
  if [ "$st" -eq 0 ] && printf '%s\n' "$out" | grep -Eq -- "$pat"; then
    ok "$name runs (-b)"
  else
    notok "$name runs (-b) (status $st)"
    printf '%s\n' "$out" | tail -n 30 | sed 's/^/# /'
  fi
}
# has NAME FILE...: the run of NAME wrote each FILE (not empty)
has() {
  name=$1
  shift
  for f in "$@"; do
    if [ -s "$tmp/$name/$f" ]; then ok "$name writes $f"; else notok "$name writes $f"; fi
  done
}
# short SCRIPT: SCRIPT with 2 RMI steps and a small search or ranking (and
# after `space darts`, batch 32: its 128 x 16 = 2048-image pool is more than
# the bundled subset's 1024 images)
short() {
  sed -e 's/^set steps .*/set steps 2/' \
      -e 's/^space darts$/space darts\nset batch 32/' \
      -e 's/^\(search start rminas.*\)$/set steps 2\n\1 n_warm 6 n_collect 2 n_fitting 50 trees 5/' \
      -e 's/^\(search start \(random\|rea\|reinforce\).*\)$/set steps 2\n\1 budget 8/' \
      -e 's/^rank [0-9][0-9]*$/set steps 2\nrank 3/' "$1" > "$tmp/$(basename "$1")"
  echo "$tmp/$(basename "$1")"
}

# the tour, unchanged
run tour "$ex/tour.rmi" '^search done'
if printf '%s\n' "$out" | grep -q '^the best 3 of 15625 by cifar10_test'; then ok "tour: arch top lists the table's best"; else
  notok "tour: arch top lists the table's best"; fi
has tour cell.dot steps.csv rea.csv
out=$(wc -l < "$tmp/tour/rea.csv")
if [ "$out" -eq 51 ]; then ok "tour: REA's CSV has its 50 evaluations"; else notok "tour: REA's CSV has $out lines (want 51)"; fi

# the main job of quickstart.sh
s=$(short "$ex/main.rmi")
if grep -q '^set steps 2$' "$s" && grep -q 'n_warm 6' "$s"; then ok "main.rmi shortened"; else notok "main.rmi shortened"; fi
run main "$s" 'cifar10_test [0-9]+\.[0-9]+'
has main main-search.csv

# the ranking, the full searches (shortened)
run rank "$(short "$ex/rank_nb201.rmi")" 'kendall tau' -c "load dataset cifar10"
has rank rank-2026.csv curves-2026.csv
run search_nb201 "$(short "$ex/search_nb201.rmi")" '^search done' -c "load dataset cifar10"
has search_nb201 search-s1.json search-scores.csv search-s1.csv
run search_darts "$(short "$ex/search_darts.rmi")" '^search done' -c "load dataset cifar10"
has search_darts search-darts-s1.json search-darts-s1.csv
# no CIFAR-100 or ResNet-101 weights here: the subset and a fresh ResNet-18
# of the teacher's family
run search_nb201_c100 "$(short "$ex/search_nb201_c100.rmi")" 'cifar100_test [0-9.]+' \
  -c "load dataset cifar10" -c "load teacher resnet18 init"
has search_nb201_c100 search-c100-s1.json search-c100-scores.csv search-c100-s1.csv

# every example is covered above
for f in "$ex"/*.rmi; do
  case $(basename "$f") in
  tour.rmi | main.rmi | rank_nb201.rmi | search_nb201.rmi | search_darts.rmi | search_nb201_c100.rmi) ;;
  *) notok "examples/$(basename "$f") has no test in tests/test_examples.sh" ;;
  esac
done
finish
