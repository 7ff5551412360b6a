#!/bin/sh
# Script tests of the search through the shell (TAP):
#  - a search killed with SIGKILL at random moments and resumed each time
#    ends with the same evaluations, in the same order, with the same scores
#    and the same answer as one never interrupted (RMI evaluator on the
#    bundled data, 3 steps per evaluation, one thread);
#  - the benchmark evaluator with the 12-epoch table, all four algorithms;
#  - damaged and foreign state files are refused and left untouched, and
#    `search start` never overwrites a file.
set -u
. "${top_srcdir:-.}/tests/tap.sh"

# ---- kill and resume ----
setup="-c 'set threads 1' -c 'load dataset cifar10' -c 'load teacher resnet20' -c 'load benchmark nb201' -c 'set steps 3' -c 'set seed 5'"
start="search start rminas n_warm 10 n_collect 4 n_fitting 100 trees 10"
eval "\"$R\" -b $setup -c \"set state $tmp/ref.json\" -c \"$start\" -c 'search run' \
  -c 'export csv search $tmp/ref.csv'" > "$tmp/ref.log" 2>&1
if [ $? -eq 0 ] && grep -q '^arch |' "$tmp/ref.log"; then ok "uninterrupted reference search"; else
  notok "uninterrupted reference search"; sed 's/^/# /' "$tmp/ref.log"; fi

# search result names the best cell the search evaluated by the benchmark
# column, with its evaluation number and its place by score (from the CSV)
want=$(awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) { if ($i == "cifar10_test") c = i; if ($i == "score") k = i }; next }
  { s[NR] = $k + 0; if (!b || $c + 0 > v) { b = NR; v = $c + 0; a = $3 } }
  END { p = 1; for (i in s) p += s[i] < s[b]; printf "%.2f %s %d %d %d", v, a, b - 1, p, NR - 1 }' "$tmp/ref.csv")
got=$(sed -n 's/^  the best it evaluated by cifar10_test: \([0-9.]*\) (evaluation \([0-9]*\), score [^:]*: \([0-9]*\) of \([0-9]*\) by score): \(.*\)/\1 \5 \2 \3 \4/p' "$tmp/ref.log")
# (the answer is named so when it is that cell)
answer=$(sed -n 's/^arch //p' "$tmp/ref.log")
want=$(printf '%s\n' "$want" | awk -v ans="$answer" '$2 == ans { $2 = "the answer" } { print }')
if [ -n "$want" ] && [ "$got" = "$want" ]; then ok "search result: the best evaluated cell by cifar10_test and its place by score ($got)"; else
  notok "search result: the best evaluated cell by cifar10_test and its place by score (got '$got', want '$want')"; fi

# the first run, killed; then resume (and kill again) until a run finishes
kills=0
eval "exec \"$R\" -b $setup -c \"set state $tmp/k.json\" -c \"$start\" -c 'search run'" > "$tmp/k0.log" 2>&1 &
pid=$!
delays="2.5 1.3 3.1 0.9 1.7 2.2 1.1 2.9 0.7 1.9 2.6 1.5 3.3 1.2 2.0"
done_ok=0
for d in $delays; do
  sleep "$d"
  if kill -9 "$pid" 2>/dev/null; then kills=$((kills + 1)); fi
  wait "$pid" 2>/dev/null
  if [ ! -f "$tmp/k.json" ]; then
    # killed before the first save: start again
    eval "exec \"$R\" -b $setup -c \"set state $tmp/k.json\" -c \"$start\" -c 'search run'" > "$tmp/k.log" 2>&1 &
    pid=$!
    continue
  fi
  "$R" -b -c 'set threads 1' -c "search resume $tmp/k.json" > "$tmp/k.log" 2>&1 &
  pid=$!
done
wait "$pid"
st=$?
"$R" -b -c 'set threads 1' -c "search resume $tmp/k.json" -c "export csv search $tmp/k.csv" \
  > "$tmp/final.log" 2>&1
if [ $st -eq 0 ] && [ $? -eq 0 ]; then done_ok=1; fi
# compare eval, phase, arch, score, prob, good (not the seconds)
cut -d, -f1-4,10,11 "$tmp/ref.csv" > "$tmp/ref.cut"
cut -d, -f1-4,10,11 "$tmp/k.csv" > "$tmp/k.cut" 2>/dev/null
if [ $done_ok -eq 1 ] && [ $kills -ge 3 ] && cmp -s "$tmp/ref.cut" "$tmp/k.cut"; then
  ok "killed $kills times with SIGKILL and resumed: same $(($(wc -l < "$tmp/ref.cut") - 1)) evaluations, order and scores"
else
  notok "kill and resume (kills $kills, finished $done_ok)"
  diff "$tmp/ref.cut" "$tmp/k.cut" | sed 's/^/# /'
  sed 's/^/# /' "$tmp/final.log"
fi
a1=$(grep '^arch ' "$tmp/ref.log")
a2=$(grep '^arch ' "$tmp/final.log")
if [ -n "$a1" ] && [ "$a1" = "$a2" ]; then ok "same answer: $a1"; else notok "same answer ($a1 / $a2)"; fi

# one search, one process: while another holds the state's lock, resuming it
# is refused before any evaluation, and the state is untouched; looking is not
if command -v flock > /dev/null; then
  cp "$tmp/k.json" "$tmp/kl.json"
  echo 4242 > "$tmp/kl.json.lock"
  out=$(flock -n "$tmp/kl.json.lock" "$R" -b -c 'set threads 1' -c "search resume $tmp/kl.json" 2>&1)
  st=$?
  look=$(flock -n "$tmp/kl.json.lock" "$R" -b -c "search load $tmp/kl.json" -c "search status" 2>&1)
  st2=$?
  if [ $st -eq 1 ] && printf '%s\n' "$out" | grep -q "kl.json is in use by another rminas (process 4242, " &&
     cmp -s "$tmp/k.json" "$tmp/kl.json" && [ $st2 -eq 0 ] && printf '%s\n' "$look" | grep -q "^search rminas"; then
    ok "a search state locked by another process is not resumed (the error names it), but can be loaded to look at"; else
    notok "a search state locked by another process"; printf '%s\n%s\n' "$out" "$look" | sed 's/^/# /'; fi
  rm -f "$tmp/kl.json.lock"
fi

# jobs 2: the warm-up's evaluations scored ahead of the search by two jobs
# (up to 4 per job past its place), and the expansion's picks under both
# outcomes of the ones before, each job taking the next as it finishes,
# which makes the same evaluations (RMI-NAS: 5 steps, then resumed to the
# end; random search; REA's population under a constraint); the log also
# holds the speculative scores of outcomes that did not come
eval "\"$R\" -b $setup -c 'set jobs 2' -c \"set state $tmp/j.json\" -c \"set score_log $tmp/js.csv\" \
  -c \"$start\" -c 'search step 5' -c 'search status'" > "$tmp/j0.log" 2>&1
if grep -q 'scored ahead, 2 at a time: 5 evaluations' "$tmp/j0.log" && [ "$(wc -l < "$tmp/js.csv")" -eq 6 ]; then
  ok "jobs 2, 5 steps: all 5 evaluations scored ahead by the jobs, 5 rows logged"; else
  notok "jobs 2, 5 steps: all 5 evaluations scored ahead by the jobs, 5 rows logged"; sed 's/^/# /' "$tmp/j0.log"; fi
"$R" -b -c 'set threads 1' -c 'set jobs 2' -c "set score_log $tmp/js.csv" -c "search resume $tmp/j.json" \
  -c "export csv search $tmp/j.csv" > "$tmp/j.log" 2>&1
cut -d, -f1-4,10,11 "$tmp/j.csv" > "$tmp/j.cut" 2>/dev/null
nev=$(($(wc -l < "$tmp/j.csv") - 1))
sed 1d "$tmp/j.csv" | cut -d, -f3 | sort > "$tmp/j.archs"
cut -d, -f1 "$tmp/js.csv" | sed 1d | sort > "$tmp/js.archs"
if cmp -s "$tmp/ref.cut" "$tmp/j.cut" && [ "$(grep '^arch ' "$tmp/j.log")" = "$a1" ] &&
   [ -z "$(comm -23 "$tmp/j.archs" "$tmp/js.archs")" ] && [ -z "$(uniq -d "$tmp/js.archs")" ] &&
   ! grep -q 'from the score log' "$tmp/j.log"; then
  ok "RMI-NAS with jobs 2, resumed: the same $nev evaluations, order, scores and answer, each logged once"; else
  notok "RMI-NAS with jobs 2, resumed: the same evaluations, order, scores and answer, each logged once"
  diff "$tmp/ref.cut" "$tmp/j.cut" | sed 's/^/# /'; sed 's/^/# /' "$tmp/j.log"; fi
# the whole search with jobs 3 (the expansion speculated) and with
# speculate 0 (only the warm-up ahead): the reference's evaluations
for v in 1 0; do
  eval "\"$R\" -b $setup -c 'set jobs 3' -c 'set speculate $v' -c \"$start\" -c 'search run' \
    -c 'search status' -c 'export csv search $tmp/sp$v.csv'" > "$tmp/sp$v.log" 2>&1
  cut -d, -f1-4,10,11 "$tmp/sp$v.csv" > "$tmp/sp$v.cut" 2>/dev/null
done
na1=$(sed -n 's/.*scored ahead, 3 at a time: \([0-9]*\) evaluations.*/\1/p' "$tmp/sp1.log")
na0=$(sed -n 's/.*scored ahead, 3 at a time: \([0-9]*\) evaluations.*/\1/p' "$tmp/sp0.log")
nexp=$(grep -c ',expand,' "$tmp/ref.csv")
if cmp -s "$tmp/ref.cut" "$tmp/sp1.cut" && cmp -s "$tmp/ref.cut" "$tmp/sp0.cut" &&
   [ -n "$na1" ] && [ -n "$na0" ] && [ "$nexp" -gt 0 ] && [ "$na1" -gt "$na0" ] &&
   [ "$(grep '^arch ' "$tmp/sp1.log")" = "$a1" ]; then
  ok "RMI-NAS with jobs 3: the reference's evaluations with the expansion speculated ($na1 ahead) and without ($na0)"
else notok "RMI-NAS with jobs 3, speculate 1 and 0: the reference's evaluations ($na1 / $na0 ahead)"
  diff "$tmp/ref.cut" "$tmp/sp1.cut" | sed 's/^/# /'; sed 's/^/# /' "$tmp/sp1.log" | tail -5; fi
# stopped in the middle of the expansion (its speculation unused) and resumed
eval "\"$R\" -b $setup -c 'set jobs 3' -c \"set state $tmp/sx.json\" -c \"$start\" -c 'search step 12'" \
  > "$tmp/sx0.log" 2>&1
"$R" -b -c 'set threads 1' -c 'set jobs 3' -c "search resume $tmp/sx.json" -c "export csv search $tmp/sx.csv" \
  > "$tmp/sx.log" 2>&1
cut -d, -f1-4,10,11 "$tmp/sx.csv" > "$tmp/sx.cut" 2>/dev/null
if cmp -s "$tmp/ref.cut" "$tmp/sx.cut" && grep -q '^\[12\] expand' "$tmp/sx0.log"; then
  ok "RMI-NAS with jobs 3 stopped after 2 expanded evaluations, resumed: the reference's evaluations"
else notok "RMI-NAS with jobs 3 stopped in the expansion, resumed: the reference's evaluations"
  diff "$tmp/ref.cut" "$tmp/sx.cut" | sed 's/^/# /'; fi
# scores made ahead and not taken yet go with the state: a state holding
# two (what a process killed while they were in before an earlier one
# leaves) gives them to the search when it picks them, not scored again
# (their made-up scores show it), the second kept by the first process's save
eval "\"$R\" -b $setup -c \"set state $tmp/h.json\" -c \"set score_log $tmp/hs.csv\" -c \"$start\" \
  -c 'search step 4'" > "$tmp/h0.log" 2>&1
a5=$(sed -n 6p "$tmp/ref.csv" | cut -d, -f3)
a6=$(sed -n 7p "$tmp/ref.csv" | cut -d, -f3)
{ sed '$d' "$tmp/h.json"
  printf ',\n "ahead": {"settings": "%s\\n", "evaluations": [\n' "$(cat "$tmp/hs.csv.settings")"
  for a in "$a5 0.5" "$a6 0.25"; do
    printf '  {"arch": "%s", "score": %s, "cka": [0.1, 0.2, 0.3], "ce": 2.5, "seconds": 1.5, "diverged": false, "params": 1, "macs": 2}' $a
    [ "${a#"$a6"}" = "$a" ] && printf ',\n'
  done
  printf ']}\n}\n'; } > "$tmp/h2.json"
"$R" -b -c 'set threads 1' -c "search load $tmp/h2.json" -c 'search step 1' -c 'search status' \
  -c "export csv search $tmp/h5.csv" > "$tmp/h1.log" 2>&1
"$R" -b -c 'set threads 1' -c "search load $tmp/h2.json" -c 'search step 1' \
  -c "export csv search $tmp/h6.csv" > "$tmp/h2.log" 2>&1
if grep -q '^loaded .*h2.json: search rminas, warmup: 4 evaluations' "$tmp/h1.log" &&
   grep -q '^  2 scored ahead and not taken yet' "$tmp/h1.log" &&
   grep -q '^  1 scored ahead and not taken yet' "$tmp/h1.log" &&
   [ "$(sed -n 6p "$tmp/h5.csv" | cut -d, -f1-4)" = "5,warmup,$a5,0.5" ] &&
   [ "$(sed -n 7p "$tmp/h6.csv" | cut -d, -f1-4)" = "6,warmup,$a6,0.25" ] && ! grep -q '"ahead"' "$tmp/h2.json"; then
  ok "scores made ahead and kept with the state are taken by the resumed search, one per process"
else notok "scores made ahead and kept with the state are taken by the resumed search"
  sed 's/^/# /' "$tmp/h1.log" "$tmp/h2.log"; fi
sed '$d' "$tmp/h.json" > "$tmp/hb.json"; printf ',\n "ahead": {"settings": "x"}\n}\n' >> "$tmp/hb.json"
check "a damaged list of scores ahead is refused" 1 'hb.json: damaged search state: ahead is not' -- \
  -c "search load $tmp/hb.json"
check "speculate takes 0 or 1" 1 "speculate must be" -- -c "set speculate 2"
for j in 1 3; do
  eval "\"$R\" -b $setup -c 'set jobs $j' -c 'search start random budget 7' -c 'search run' \
    -c 'export csv search $tmp/rj$j.csv'" > "$tmp/rj$j.log" 2>&1
  cut -d, -f1-4 "$tmp/rj$j.csv" > "$tmp/rj$j.cut" 2>/dev/null
  eval "\"$R\" -b $setup -c 'set jobs $j' -c 'set max_params 400000' \
    -c 'search start rea budget 8 population 5' -c 'search run' -c 'export csv search $tmp/ej$j.csv'" \
    > "$tmp/ej$j.log" 2>&1
  cut -d, -f1-4 "$tmp/ej$j.csv" > "$tmp/ej$j.cut" 2>/dev/null
done
if [ "$(wc -l < "$tmp/rj1.cut")" -eq 8 ] && cmp -s "$tmp/rj1.cut" "$tmp/rj3.cut"; then
  ok "random search with jobs 3: the same 7 evaluations, order and scores"; else
  notok "random search with jobs 3: the same 7 evaluations, order and scores"
  diff "$tmp/rj1.cut" "$tmp/rj3.cut" | sed 's/^/# /'; sed 's/^/# /' "$tmp/rj3.log"; fi
if [ "$(wc -l < "$tmp/ej1.cut")" -eq 9 ] && cmp -s "$tmp/ej1.cut" "$tmp/ej3.cut"; then
  ok "REA under max_params with jobs 3: the same 8 evaluations, order and scores"; else
  notok "REA under max_params with jobs 3: the same 8 evaluations, order and scores"
  diff "$tmp/ej1.cut" "$tmp/ej3.cut" | sed 's/^/# /'; sed 's/^/# /' "$tmp/ej3.log"; fi

# ---- the score log: searches under the same settings share their scores ----
eval "\"$R\" -b $setup -c \"set score_log $tmp/sl.csv\" -c \"search load $tmp/ref.json\"" \
  > "$tmp/sl0.log" 2>&1
if [ "$(wc -l < "$tmp/sl.csv")" -eq "$(wc -l < "$tmp/ref.csv")" ]; then
  ok "search load with score_log puts the loaded search's $(($(wc -l < "$tmp/sl.csv") - 1)) evaluations in the log"
else notok "search load with score_log fills the log"; sed 's/^/# /' "$tmp/sl0.log"; fi
# the thread count decides a score on the CPU: a search scored at 1 thread
# goes into no log of 2 threads (and such a log refuses a 1-thread ranking)
if [ "$(nproc)" -ge 2 ]; then
  if grep -q '"scored_on": "device cpu threads 1"' "$tmp/ref.json"; then
    ok "a state records where its scores were computed"
  else notok "a state records where its scores were computed"; fi
  eval "\"$R\" -b -c 'set threads 2' -c \"set score_log $tmp/t2.csv\" -c \"search load $tmp/ref.json\"" \
    > "$tmp/t2.log" 2>&1
  if grep -q '^note: its scores were not added to the score log: scored with device cpu threads 1, here device cpu threads 2$' "$tmp/t2.log" &&
     [ ! -e "$tmp/t2.csv" ]; then
    ok "search load at 2 threads leaves a 1-thread search out of the score log, and says so"
  else notok "search load at 2 threads leaves a 1-thread search out of the score log"; sed 's/^/# /' "$tmp/t2.log"; fi
fi
# random search with the seed and budget of the warm-up draws the warm-up's
# architectures: all ten come from the log, with the warm-up's scores
eval "\"$R\" -b $setup -c \"set score_log $tmp/sl.csv\" -c \"set state $tmp/r1.json\" -c 'search start random budget 10' \
  -c 'search run' -c 'export csv search $tmp/r1.csv' -c 'search status'" > "$tmp/sl1.log" 2>&1
n1=$(grep -c '^\[.*(from the score log)' "$tmp/sl1.log")
sed -n 2,11p "$tmp/ref.csv" | cut -d, -f3,4 > "$tmp/warm.cut"
sed 1d "$tmp/r1.csv" | cut -d, -f3,4 > "$tmp/r1.cut"
if [ "$n1" -eq 10 ] && cmp -s "$tmp/warm.cut" "$tmp/r1.cut"; then
  ok "random search: the warm-up's 10 architectures and scores, all from the score log"
else notok "random search from the score log ($n1 from the log)"; sed 's/^/# /' "$tmp/sl1.log"; fi
"$R" -b -c 'set threads 1' -c "search load $tmp/r1.json" -c "export csv search $tmp/r1b.csv" \
  > /dev/null 2>&1
if grep -q '10 of the 10 evaluations came from the score log' "$tmp/sl1.log" &&
   [ "$(sed 1d "$tmp/r1.csv" | awk -F, '$NF == 1' | wc -l)" -eq 10 ] &&
   [ "$(sed 1d "$tmp/r1b.csv" | awk -F, '$NF == 1' | wc -l)" -eq 10 ]; then
  ok "search status and the CSV's cached column say so, also after the state is loaded again"
else notok "search status and the CSV's cached column say so"; fi
# the same search without the log scores them again: the same scores
eval "\"$R\" -b $setup -c 'search start random budget 10' -c 'search run' \
  -c 'export csv search $tmp/r2.csv'" > "$tmp/sl2.log" 2>&1
sed 1d "$tmp/r2.csv" | cut -d, -f3,4 > "$tmp/r2.cut"
if ! grep -q 'from the score log' "$tmp/sl2.log" && cmp -s "$tmp/r1.cut" "$tmp/r2.cut"; then
  ok "scored again without the log: the same 10 scores"
else notok "scored again without the log: the same scores"; diff "$tmp/r1.cut" "$tmp/r2.cut" | sed 's/^/# /'; fi
# REA takes its first population from the log and adds what it scores
rows0=$(wc -l < "$tmp/sl.csv")
eval "\"$R\" -b $setup -c \"set score_log $tmp/sl.csv\" -c 'search start rea budget 13' \
  -c 'search run'" > "$tmp/sl3.log" 2>&1
n3=$(grep -c '^\[.*(from the score log)' "$tmp/sl3.log")
new=$(($(wc -l < "$tmp/sl.csv") - rows0))
if [ "$n3" -ge 10 ] && [ $((n3 + new)) -eq 13 ]; then
  ok "rea: $n3 of 13 evaluations from the log, the $new others added to it"
else notok "rea with the score log ($n3 from the log, $new added)"; sed 's/^/# /' "$tmp/sl3.log"; fi
check "a score log of other settings is refused by the search" 1 "scored with other settings" -- \
  -c 'set threads 1' -c 'load dataset cifar10' -c 'load teacher resnet20' -c 'set steps 4' \
  -c "set score_log $tmp/sl.csv" -c 'search start random budget 2' -c 'search run'

# the conv setting travels with the search; a state without it (saved before
# it existed) resumes with oneDNN's direct convolutions
"$R" -b -c "load benchmark nb201" -c "set evaluator benchmark" -c "set conv winograd" \
  -c "set state $tmp/conv.json" -c "search start random" -c "search step 3" > /dev/null 2>&1
check "the conv setting is saved with the search" 0 "^conv +winograd " -- -c "set conv im2col" \
  -c "search load $tmp/conv.json" -c "show settings"
grep -v '"conv":' "$tmp/conv.json" > "$tmp/conv_old.json"
check "a state without conv loads with dnnl" 0 "^conv +dnnl " -- -c "set conv winograd" \
  -c "search load $tmp/conv_old.json" -c "show settings"

check "search load shows a saved search without running it" 0 "rminas, done: [0-9]+ evaluations" -- \
  -c "set threads 1" -c "search load $tmp/k.json" -c "search status"

# ---- refusals ----
cp "$tmp/k.json" "$tmp/good.json"
head -c 2000 "$tmp/good.json" > "$tmp/trunc.json"
cp "$tmp/trunc.json" "$tmp/trunc.orig"
check "truncated state refused" 1 "trunc.json: not an rminas search state \(line" -- \
  -c "search resume $tmp/trunc.json"
if cmp -s "$tmp/trunc.json" "$tmp/trunc.orig"; then ok "truncated state left untouched"; else notok "truncated state left untouched"; fi
printf '{"format": "something-else"}\n' > "$tmp/foreign.json"
check "foreign state refused" 1 "not an rminas search state" -- -c "search resume $tmp/foreign.json"
check "search start will not overwrite a foreign file" 1 "refusing to overwrite .*foreign.json" -- \
  -c "load benchmark nb201" -c "set evaluator benchmark" -c "set state $tmp/foreign.json" -c "search start random"
if grep -q something-else "$tmp/foreign.json"; then ok "foreign file left untouched"; else notok "foreign file left untouched"; fi
check "search start will not overwrite a saved search" 1 "already holds a search; 'search resume" -- \
  -c "load benchmark nb201" -c "set evaluator benchmark" -c "set state $tmp/good.json" -c "search start random"
check "resume of a missing file" 1 "nope.json: No such file" -- -c "search resume $tmp/nope.json"
check "search step without a search" 1 "no search \(search start" -- -c "search step"
check "unknown algorithm" 1 "unknown search algorithm 'gradient'" -- -c "load benchmark nb201" \
  -c "set evaluator benchmark" -c "search start gradient"
check "benchmark evaluator without a table" 1 "needs a table" -- -c "set evaluator benchmark" -c "search start random"
check "rmi evaluator without a teacher" 1 "no teacher loaded" -- -c "search start rminas"
check "bad search setting" 1 "quantile must be a number" -- -c "set quantile 2"

# ---- benchmark evaluator, all algorithms ----
for algo in rminas random rea reinforce; do
  check "benchmark evaluator (12-epoch table): $algo" 0 "^  cifar10_valid [0-9.]+ cifar10_test" -- \
    -c "load benchmark nb201" -c "load benchmark nb201-12" -c "set evaluator benchmark" \
    -c "set benchmark_column cifar10_valid" -c "set seed 1" -c "set n_collect 20" \
    -c "search start $algo budget 150" -c "search run" -c "search result"
done
check "search result: the answer's rank in the ground truth" 0 \
  "^  rank [0-9]+ of 15625 by cifar10_valid \(top [0-9.]+ %; the table's best 91\.[0-9]+\)\$" -- \
  -c "load benchmark nb201" -c "set evaluator benchmark" -c "set benchmark_column cifar10_valid" \
  -c "set seed 1" -c "search start random budget 20" -c "search run" -c "search result"
check "an RMI-NAS search in the chain space from the shell" 0 "^arch [k3-7esip|-]+\$" -- \
  -c "set threads 1" -c "load dataset cifar10" -c "load teacher resnet20" -c "space chain" -c "set steps 2" \
  -c "search start rminas n_warm 4 n_collect 1 n_fitting 20" -c "search run" -c "export csv search $tmp/chain.csv"
if [ "$(wc -l < "$tmp/chain.csv")" -ge 6 ] && grep -q ',warmup,k' "$tmp/chain.csv"; then ok "the chain search log exports"; else
  notok "the chain search log exports"; fi
# the DARTS space: a search stopped after 5 evaluations and resumed from its state file ends
# as the same search run through
check "an RMI-NAS search in the DARTS space from the shell" 0 "^arch Genotype\(normal=\[" -- \
  -c "set threads 1" -c "load dataset cifar10" -c "load teacher resnet20" -c "space darts" \
  -c "set batch 8" -c "set steps 2" -c "set seed 4" -c "search start rminas n_warm 4 n_collect 2 n_fitting 20" \
  -c "search run" -c "export csv search $tmp/darts.csv"
check "a DARTS search stops after 5 evaluations" 0 "5 evaluations" -- \
  -c "set threads 1" -c "load dataset cifar10" -c "load teacher resnet20" -c "space darts" \
  -c "set batch 8" -c "set steps 2" -c "set seed 4" -c "set state $tmp/darts.json" \
  -c "search start rminas n_warm 4 n_collect 2 n_fitting 20" -c "search step 5" -c "search status"
check "and resumes from its state file" 0 "^arch Genotype\(normal=\[" -- -c "set threads 1" \
  -c "search resume $tmp/darts.json" -c "search run" -c "export csv search $tmp/darts2.csv"
# (every column but the seconds; the quoted genotypes hold commas: compared apart)
for f in darts darts2; do
  { sed 's/"[^"]*"/A/' "$tmp/$f.csv" | cut -d, -f1-8,10-; grep -o '"[^"]*"' "$tmp/$f.csv"; } > "$tmp/$f.cut"
done
if [ "$(wc -l < "$tmp/darts.cut")" -ge 12 ] && cmp -s "$tmp/darts.cut" "$tmp/darts2.cut"; then
  ok "the resumed DARTS search has the same evaluations, scores and order"; else
  notok "the resumed DARTS search has the same evaluations, scores and order"; diff "$tmp/darts.cut" "$tmp/darts2.cut" | head -5 | sed 's/^/# /'; fi
# genotypes (quoted in CSV: they hold commas) go through the score log too
"$R" -b -c "set threads 1" -c "set score_log $tmp/dl.csv" -c "search load $tmp/darts.json" \
  > "$tmp/dl0.log" 2>&1
check "a DARTS random search takes the warm-up's genotypes from the score log" 0 \
  "\\[4\\] run +Genotype.* \\(from the score log\\)" -- \
  -c "set threads 1" -c "load dataset cifar10" -c "load teacher resnet20" -c "space darts" \
  -c "set batch 8" -c "set steps 2" -c "set seed 4" -c "set score_log $tmp/dl.csv" \
  -c "search start random budget 4" -c "search run"
check "the benchmark evaluator refuses the chain space" 1 "knows NAS-Bench-201 only" -- -c "space chain" \
  -c "load benchmark nb201" -c "set evaluator benchmark" -c "search start random"
check "search status" 0 "search rea, run: 30 evaluations of 100" -- -c "load benchmark nb201" \
  -c "set evaluator benchmark" -c "search start rea" -c "search step 30" -c "search status"
check "constraint: max_params" 0 "random, done: 100 evaluations" -- -c "load benchmark nb201" \
  -c "set evaluator benchmark" -c "set max_params 500000" -c "search start random" -c "search run" \
  -c "export csv search $tmp/c.csv" -c "search status"
over=$(awk -F, 'NR > 1 && $12 > 500000' "$tmp/c.csv" | wc -l)
if [ "$over" -eq 0 ] && [ "$(wc -l < "$tmp/c.csv")" -eq 101 ]; then ok "no architecture over max_params evaluated"; else notok "constraint ($over over)"; fi
check "search warmup stops after the warm-up" 0 "rminas, expand: 100 evaluations \(100 warm-up" -- \
  -c "load benchmark nb201" -c "set evaluator benchmark" -c "search start rminas" -c "search warmup" -c "search status"

finish
