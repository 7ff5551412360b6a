#!/bin/sh
# The ncurses panel and the interactive shell, driven through tmux (TAP):
# the panel shows the search's progress and the student's CKA bars, q returns
# to the prompt, Ctrl-C pauses work and returns to the prompt, a window too
# small is a clear error, SIGTERM restores the terminal before the process
# ends. Skipped when tmux is missing.
set -u
. "${top_srcdir:-.}/tests/tap.sh"
R=$(cd "$top_builddir" && pwd)/rminas
if ! command -v tmux > /dev/null 2>&1; then
  echo "1..0 # SKIP tmux not installed"
  exit 0
fi
sock="$tmp/tmux.sock"
T() { tmux -S "$sock" "$@"; }
trap 'T kill-server 2>/dev/null; rm -rf "$tmp"' EXIT
notok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $1"; T capture-pane -t p -p | sed 's/^/# /'; }
# wait_for PATTERN [SECONDS]: until the pane shows PATTERN (extended regex)
wait_for() {
  i=0
  lim=$(( ${2:-20} * 10 ))
  while [ $i -lt $lim ]; do
    if T capture-pane -t p -p 2>/dev/null | grep -Eq -- "$1"; then return 0; fi
    sleep 0.1
    i=$((i + 1))
  done
  return 1
}
# wait until the last non-empty line is the prompt
prompt() { wait_for "rminas(\[[^]]*\])?> *\$" "${1:-20}"; }

export XDG_STATE_HOME="$tmp/state" TERM=xterm-256color
T new-session -d -s p -x 100 -y 34 "'$R'; echo EXITED status \$?; sleep 60"
if prompt; then ok "interactive shell starts with a prompt"; else notok "interactive shell starts with a prompt"; fi

# tab completion: a setting name, a value, an operation inside an architecture string
T send-keys -t p "set n_co" Tab "7" Enter
T send-keys -t p "set evaluator be" Tab Enter
T send-keys -t p "show n_collect" Enter "show evaluator" Enter
if wait_for "^n_collect +7 " && wait_for "^evaluator +benchmark "; then ok "tab completes setting names and values"; else
  notok "tab completes setting names and values"; fi
T send-keys -t p "arch set |nor_conv_3" Tab "0|+|non" Tab "0|skip_c" Tab "1|+|avg" Tab "0|none~1|none~2|" Enter
if wait_for "node1 = nor_conv_3x3\(node0\)" && wait_for "node3 = avg_pool_3x3\(node0\)"; then
  ok "tab completes operation names inside an architecture string"; else
  notok "tab completes operation names inside an architecture string"; fi
if wait_for "rminas\[3\|-s\|p--\]> *\$"; then ok "the prompt shows the current architecture"; else
  notok "the prompt shows the current architecture"; fi
# a chain's blocks complete after '-' and '|'
T send-keys -t p "space chain" Enter "arch k3e3-sk" Tab "-k5e6-k7e3|k3e6-k3e6-sk" Tab "-sk" Tab \
  "|k7e6-k5e3-k3e3-sk" Tab Enter
if wait_for "^arch k3e3-skip-k5e6-k7e3\|k3e6-k3e6-skip-skip\|k7e6-k5e3-k3e3-skip\$"; then
  ok "tab completes a chain's blocks"; else notok "tab completes a chain's blocks"; fi
T send-keys -t p "space nb201" Enter

T send-keys -t p "set threads 1" Enter "load benchmark nb201" Enter "set evaluator benchmark" Enter \
  "set benchmark_column cifar10_valid" Enter "search start rminas n_collect 20" Enter
prompt
# the loaded table's columns complete after arch top
T send-keys -t p "arch top cifar100_t" Tab " 2" Enter
if wait_for "^the best 2 of 15625 by cifar100_test"; then ok "tab completes the table's columns after arch top"; else
  notok "tab completes the table's columns after arch top"; fi
T send-keys -t p "panel" Enter
if wait_for "rminas panel +q back"; then ok "panel takes the screen"; else notok "panel takes the screen"; fi
T send-keys -t p r
if wait_for "successes 20/20" && wait_for "done: \|"; then ok "r runs the search; progress and answer shown"; else
  notok "r runs the search; progress and answer shown"; fi
T send-keys -t p q
if prompt && ! T capture-pane -t p -p | grep -q "rminas panel"; then ok "q returns to the prompt, screen restored"; else
  notok "q returns to the prompt, screen restored"; fi
T send-keys -t p "search result" Enter
if wait_for "^arch \|" && wait_for "cifar10_test [0-9.]+"; then ok "the search done in the panel is there at the prompt"; else
  notok "the search done in the panel is there at the prompt"; fi

T send-keys -t p "load dataset cifar10" Enter "load teacher resnet20" Enter \
  "arch set |nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|skip_connect~2|" Enter
prompt
T send-keys -t p "panel" Enter
wait_for "rminas panel"
T send-keys -t p s
if wait_for "step 1/150" 60 && wait_for "CKA1 0\.[0-9]+ \[#+"; then ok "s trains one step: CKA bars"; else notok "s trains one step: CKA bars"; fi
T send-keys -t p S
wait_for "step [3-9]/150" 60
T send-keys -t p C-c
if prompt 30 && T capture-pane -t p -p | grep -q "interrupted: work paused"; then ok "Ctrl-C pauses and returns to the prompt"; else
  notok "Ctrl-C pauses and returns to the prompt"; fi
T send-keys -t p "step 1" Enter
if wait_for "^step +[0-9]+ +loss" 60; then ok "the student trained in the panel goes on at the prompt"; else
  notok "the student trained in the panel goes on at the prompt"; fi
prompt

# jobs 2 with the RMI evaluator: the panel shows the jobs scoring ahead
# (j: the next one in full); p pauses in the middle, r goes on; the search
# makes the evaluations of the same search run in batch with one job
start="search start rminas n_warm 10 n_collect 4 n_fitting 100 trees 10"
"$R" -b -c 'set threads 1' -c 'load dataset cifar10' -c 'load teacher resnet20' -c 'set steps 3' \
  -c 'set seed 5' -c "$start" -c 'search run' -c "export csv search $tmp/ref.csv" > "$tmp/ref.log" 2>&1
T send-keys -t p "set steps 3" Enter "set seed 5" Enter "set jobs 2" Enter "set evaluator rmi" Enter \
  "$start" Enter
prompt
T send-keys -t p "panel" Enter
wait_for "rminas panel"
T send-keys -t p r
if wait_for "^scoring ahead: 2 jobs, [0-9] of 2 done" 30 && wait_for "^job 1/2 \|" 30 &&
   wait_for "^step [1-3]/3  loss [0-9]" 30 && wait_for "^> job 1 +step +[1-3]/3 +loss +[0-9]" 30 &&
   wait_for "^  job 2 " 30; then
  ok "jobs 2: the panel shows both jobs scoring ahead, one in full"; else
  notok "jobs 2: the panel shows both jobs scoring ahead, one in full"; fi
T send-keys -t p j
if wait_for "^job 2/2 \|" 30 && wait_for "^> job 2 " 30; then ok "j shows the next job in full"; else
  notok "j shows the next job in full"; fi
T send-keys -t p p
if wait_for "^paused" 30 && ! T capture-pane -t p -p | grep -q "search rminas +done"; then
  ok "p pauses the jobs' search"; else notok "p pauses the jobs' search"; fi
T send-keys -t p r
wait_for "^done: \|" 120
T send-keys -t p q
prompt
T send-keys -t p "export csv search $tmp/pj.csv" Enter
wait_for "^wrote $tmp/pj.csv"
cut -d, -f1-4,10,11 "$tmp/ref.csv" > "$tmp/ref.cut" 2>/dev/null
cut -d, -f1-4,10,11 "$tmp/pj.csv" > "$tmp/pj.cut" 2>/dev/null
if [ -s "$tmp/ref.cut" ] && cmp -s "$tmp/ref.cut" "$tmp/pj.cut"; then
  ok "paused and resumed in the panel with jobs 2: the $(($(wc -l < "$tmp/ref.cut") - 1)) evaluations of one job"
else
  notok "paused and resumed in the panel with jobs 2: the evaluations of one job"
  diff "$tmp/ref.cut" "$tmp/pj.cut" | sed 's/^/# /'
fi
prompt

T resize-window -t p -x 50 -y 15 2>/dev/null || T resize-pane -t p -x 50 -y 15
sleep 0.3
T send-keys -t p "panel" Enter
if wait_for "the window is 50x15"; then ok "a window too small is a clear error"; else
  notok "a window too small is a clear error"; fi
T resize-window -t p -x 100 -y 34 2>/dev/null || T resize-pane -t p -x 100 -y 34
prompt

T send-keys -t p "panel" Enter
wait_for "rminas panel"
pid=$(pgrep -n -f "^$R\$" || true)
if [ -n "$pid" ]; then kill -TERM "$pid"; fi
if wait_for "EXITED status 143" && ! T capture-pane -t p -p | grep -q "rminas panel"; then
  ok "SIGTERM in the panel: terminal restored, then the process ends (143)"; else
  notok "SIGTERM in the panel: terminal restored, then the process ends (143)"; fi

finish
