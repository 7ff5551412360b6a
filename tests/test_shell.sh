#!/bin/sh
# Script tests of the rminas shell: commands through -c, -f and standard
# input; every error is one clear line, the shell stays usable, the exit
# status says whether a command failed. TAP output.
set -u
. "${top_srcdir:-.}/tests/tap.sh"
ARCH='|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|skip_connect~2|'
AKA="$SHARED_DIR/data/teachers/resnet20-akamaster.safetensors"

check "version" 0 '^rminas [0-9]' -- -c version
check "help lists the commands" 0 'rank' -- -c help
check "help of one command" 0 'score \[STRING\]' -- -c "help score"
check "unknown command" 1 "error: unknown command 'frobnicate'" -- -c frobnicate
check "ambiguous prefix" 1 "ambiguous command 'e': could be echo eval exit export" -- -c e
check "unique prefix works" 0 'node1 = nor_conv_3x3' -- -c "ar show $ARCH"
check "arch STRING sets it (set is optional)" 0 'node3 = skip_connect\(node0\) \+ none\(node1\) \+ skip_connect\(node2\)' -- \
  -c "arch $ARCH" -c "arch"
check "an NB-201 index names an architecture (the table's index column)" 0 "index 6111 cifar10_valid 91.61 cifar10_test 94.37 .*" -- \
  -c "load benchmark nb201" -c "arch 6111" -c "arch show"
check "an index needs the table" 1 "architecture 6111: a number is NAS-Bench-201's index of an architecture, read from the benchmark table \(load benchmark nb201 first\)" -- \
  -c "arch show 6111"
check "an index the table lacks" 1 "architecture 15625: no architecture has that index in" -- -c "load benchmark nb201" -c "score 15625"
# arch top: the table's best by a column, ties sharing a rank, the index picking one
check "arch top: the two optimal cells share rank 1" 0 "^     1   13714     94.37  \|nor_conv_3x3~0\|\+\|nor_conv_3x3~0\|nor_conv_3x3~1\|\+\|skip_connect~0\|nor_conv_1x1~1\|nor_conv_3x3~2\|$" -- \
  -c "load benchmark nb201" -c "arch top 3"
out=$("$R" -c "load benchmark nb201" -c "arch top 3" 2>&1)
if printf '%s\n' "$out" | grep -q '^the best 3 of 15625 by cifar10_test (rank, index, value' &&
  [ "$(printf '%s\n' "$out" | awk '/^ +[0-9]/ { printf "%s,%s,%s;", $1, $2, $3 }')" = "1,6111,94.37;1,13714,94.37;3,9930,94.36;" ]; then
  ok "arch top 3: header, ranks 1 1 3, indices, values"; else
  notok "arch top 3: header, ranks 1 1 3, indices, values"; printf '%s\n' "$out" | sed 's/^/# /'; fi
check "arch top by another column" 0 "^     2    3888     73.48  \|nor_conv_1x1~0\|" -- \
  -c "load benchmark nb201" -c "arch top cifar100_test 2"
top2=$("$R" -c "load benchmark nb201" -c "arch top 2 cifar100_test" 2>&1 | awk '$1 == 2 { print $2, $4 }')
picked=$("$R" -c "load benchmark nb201" -c "arch ${top2%% *}" 2>&1 | sed -n 's/^arch //p')
if [ -n "$top2" ] && [ "$picked" = "${top2#* }" ]; then ok "arch top: the index it prints picks that cell"; else
  notok "arch top: the index it prints picks that cell ('$top2' -> '$picked')"; fi
check "arch top: unknown column lists the columns" 1 "error: arch: .*no column 'cifar10_tset'.*cifar10_test" -- \
  -c "load benchmark nb201" -c "arch top cifar10_tset"
check "arch top without the table" 1 "error: arch: top needs the benchmark table \(load benchmark nb201\)" -- -c "arch top"
check "arch top in another space" 1 "error: arch: top: the benchmark table is NAS-Bench-201's \(space nb201 first\)" -- \
  -c "load benchmark nb201" -c "space chain" -c "arch top"
check "arch top N bounds" 1 "N must be" -- -c "load benchmark nb201" -c "arch top 0"
check "arch top negative N" 1 "N must be" -- -c "load benchmark nb201" -c "arch top -3"
check "arch alone without one" 1 "error: arch: no architecture \(arch set STRING or arch sample\)" -- -c "arch"
check "arch with a misspelt subcommand" 1 "neither a subcommand \(set, sample, show, dot, top\) nor an architecture" -- -c "arch smaple"
check "a cut architecture string says where it ends" 1 "ends early at offset 18 \(node 2, input 0\): expected an operation" -- \
  -c "arch |nor_conv_3x3~0|+|"
check "bad architecture names the part" 1 "unknown operation 'conv_3x3'" -- \
  -c 'arch set |conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|'
check "missing dataset directory" 1 "error: load: .*/nonexistent/data_batch_1.bin: cannot open" -- \
  -c "load dataset cifar10 $tmp/nonexistent"
check "a CIFAR-10 directory as cifar100 says what it is" 1 "train.bin: cannot open: .*: train.bin and test.bin; it holds data_batch_1.bin: a cifar10 directory\?" -- \
  -c "load dataset cifar100 $top_srcdir/examples/data/cifar10-mini"
mkdir "$tmp/py"; : > "$tmp/py/data_batch_1"
check "CIFAR-10's python version is named" 1 "it holds data_batch_1: CIFAR-10's python version\? rminas reads the binary version" -- \
  -c "load dataset cifar10 $tmp/py"
check "score before a teacher is loaded" 1 "no teacher loaded" -- -c "score $ARCH"
check "teacher eval before loading" 1 "no teacher loaded" -- -c "teacher eval"
check "unknown teacher" 1 "unknown teacher 'vgg'" -- -c "load teacher vgg"
check "a weights file in place of the model" 1 "a weights file goes after the model: load teacher resnet20 FILE" -- \
  -c "space chain" -c "load teacher $AKA"
head -c 1000 "$AKA" > "$tmp/trunc.safetensors"
check "truncated weights name the file" 1 "trunc.safetensors: .*(truncated|past the end)" -- \
  -c "load teacher resnet20 $tmp/trunc.safetensors"
# a NaN in the first tensor of the data (after the 8-byte length and the JSON header)
cp "$AKA" "$tmp/nan.safetensors"
hl=$(od -An -t u8 -N 8 "$AKA" | tr -d ' ')
printf '\000\000\300\177' | dd of="$tmp/nan.safetensors" bs=1 seek=$((8 + hl)) conv=notrunc 2>/dev/null
check "weights with a NaN are refused, by key" 1 "nan.safetensors: key '.*' holds a non-finite value \(nan at element 0\)" -- \
  -c "load teacher resnet20 $tmp/nan.safetensors"
check "wrong depth for the weights names the key" 1 "(missing|unexpected) key 'layer" -- \
  -c "load teacher resnet32 $AKA"
check "bad setting value" 1 "beta must be a number from 0 to 1" -- -c "set beta 2"
check "unknown setting" 1 "unknown setting 'foo'" -- -c "set foo 1"
check "set conv winograd" 0 "^conv +winograd " -- -c "set conv winograd" -c "show settings"
check "set conv winograd4" 0 "^conv +winograd4 " -- -c "set conv winograd4" -c "show settings"
check "unknown convolution" 1 "unknown convolution 'fft' \(dnnl, winograd, winograd2, winograd4 or im2col\)" -- -c "set conv fft"
check "export before anything ran" 1 "no ranking run yet" -- -c "export csv rank $tmp/x.csv"
check "export csv curves before a ranking" 1 "no ranking run yet" -- -c "export csv curves $tmp/x.csv"
check "the shell continues after an error" 1 "beta +0.5" -- -c "set beta 7" -c "set beta 0.5" -c "show settings"
check "bail stops at the first error" 1 "^error" -- -b -c "set beta 7" -c "version"
out=$("$R" -b -c "set beta 7" -c version 2>&1)
if printf '%s\n' "$out" | grep -q '^rminas [0-9]'; then notok "bail skipped the rest"; else ok "bail skipped the rest"; fi
printf 'version\nset steps 0\nshow settings\n' > "$tmp/s.rmi"
check "script errors name the line" 1 "at .*s.rmi line 2" -- -f "$tmp/s.rmi"
out=$(printf 'set steps 3\nshow\n' | "$R" 2>&1)
if printf '%s\n' "$out" | grep -Eq '^steps +3 '; then ok "commands on standard input"; else notok "commands on standard input"; fi
check "unterminated quote" 1 "unterminated" -- -c "arch set 'abc"
check "missing script file" 1 "cannot open" -- -f "$tmp/none.rmi"
check "a directory as the script" 1 "cannot open $tmp: Is a directory" -- -f "$tmp" -c version
check "a bad option value: status 2" 2 "threads must be" -- --threads abc -c version
out=$("$R" --seed x -c version 2>&1)
if ! printf '%s\n' "$out" | grep -q '^rminas [0-9]'; then ok "a bad option value runs nothing"; else
  notok "a bad option value runs nothing"; fi
# the GPU: a clear error without one (or without a CUDA build), the shell goes on
if "$R" -c "set device cuda" >/dev/null 2>&1; then
  check "set device cuda on a GPU" 0 "^device +cuda " -- -c "set device cuda" -c "show settings"
  check "the device cannot change under a loaded teacher" 1 "teacher is loaded on cuda" -- \
    --device cuda -c "load teacher resnet20" -c "set device cpu"
else
  check "set device cuda without a GPU is a clear error" 1 \
    "error: set: (no CUDA device|this rminas was built without CUDA)" -- \
    -c "set device cuda" -c "show settings"
  check "the device stays cpu after the refusal" 1 "^device +cpu " -- \
    -c "set device cuda" -c "show settings"
  check "--device cuda without a GPU: nothing runs, status 2" 2 "(no CUDA device|built without CUDA)" -- --device cuda -c version
fi
check "unknown device" 1 "unknown backend 'tpu' \(cpu or cuda\)" -- -c "set device tpu"
# the CUDA backend is a module loaded on first use: a missing or broken one
# is a clear error too
if [ -f "$(dirname "$R")/rminas-cuda.so" ]; then
  export RMINAS_CUDA_MODULE="$tmp/none.so"
  check "a missing CUDA module" 1 "RMINAS_CUDA_MODULE=.*none.so: no such file" -- -c "set device cuda"
  echo "not a library" > "$tmp/bad.so"
  export RMINAS_CUDA_MODULE="$tmp/bad.so"
  check "a broken CUDA module" 1 "cannot load the CUDA backend .*bad.so" -- -c "set device cuda"
  unset RMINAS_CUDA_MODULE
fi

check "the bundled default teacher loads without a file" 0 "test accuracy [89][0-9]\.[0-9]+ % \(1000 images" -- \
  -c "load dataset cifar10" -c "load teacher resnet20" -c "teacher eval"
# the bundled subset, the akamaster teacher, one epoch of fine-tuning, save and reload
check "teacher eval on the bundled subset" 0 "test accuracy 8[0-9]\.[0-9]+ % \(1000 images" -- \
  -c "load dataset cifar10" -c "load teacher resnet20 $AKA" -c "teacher eval"
train=$("$R" -c "load dataset cifar10" -c "load teacher resnet20 $AKA" \
  -c "teacher train epochs 1 batch 128 every 4" -c "teacher save $tmp/t.safetensors" \
  -c "teacher eval" 2>&1)
if printf '%s\n' "$train" | grep -Eq "epoch 1/1 step 4/8 loss [0-9.]+ lr [0-9.]+ [0-9]+ images/s" &&
   printf '%s\n' "$train" | grep -Eq "epoch 1/1: loss [0-9.]+, [0-9]+ images/s, .*test accuracy"; then
  ok "fine-tuning shows epoch, step, loss, images/s and the test accuracy"
else notok "fine-tuning progress"; printf '%s\n' "$train" | sed 's/^/# /'; fi
a1=$(printf '%s\n' "$train" | sed -n 's/^teacher resnet20: test accuracy \([0-9.]*\) %.*/\1/p')
a2=$("$R" -c "load dataset cifar10" -c "load teacher resnet20 $tmp/t.safetensors" -c "teacher eval" 2>&1 |
  sed -n 's/^teacher resnet20: test accuracy \([0-9.]*\) %.*/\1/p')
if [ -n "$a1" ] && [ "$a1" = "$a2" ]; then ok "saved weights reload to the same accuracy ($a1 %)";
else notok "saved weights reload to the same accuracy ($a1 vs $a2)"; fi

# teacher train drops the batch chosen by the old weights; until it is saved,
# no score log or search state may name the old file
tt=$("$R" -c "load dataset cifar10" -c "load teacher resnet20" -c "set steps 3" -c "set threads 1" \
  -c "score $ARCH" -c "teacher train epochs 1 batch 128" -c "score $ARCH" -c "set score_log $tmp/tt.csv" \
  -c "rank 1" -c "set state $tmp/tt.json" -c "search start rminas" -c "teacher save $tmp/tt.safetensors" \
  -c "show" 2>&1)
s1=$(printf '%s\n' "$tt" | sed -n 's/^|.* score \([0-9.]*\) .*/\1/p' | sed -n 1p)
s2=$(printf '%s\n' "$tt" | sed -n 's/^|.* score \([0-9.]*\) .*/\1/p' | sed -n 2p)
s3=$("$R" -c "load dataset cifar10" -c "load teacher resnet20 $tmp/tt.safetensors" -c "set steps 3" \
  -c "set threads 1" -c "score $ARCH" 2>&1 | sed -n 's/^|.* score \([0-9.]*\) .*/\1/p')
if [ -n "$s2" ] && [ "$s1" != "$s2" ] && [ "$s2" = "$s3" ]; then
  ok "a score after teacher train is the trained teacher's ($s1 before, $s2 after, $s3 saved and reloaded)"; else
  notok "a score after teacher train is the trained teacher's ($s1 before, $s2 after, $s3 saved and reloaded)"
  printf '%s\n' "$tt" | sed 's/^/# /'; fi
if [ "$(printf '%s\n' "$tt" | grep -c "error: .*the teacher was trained in this session and not saved")" -eq 2 ] &&
   [ ! -e "$tmp/tt.csv" ] && [ ! -e "$tmp/tt.json" ] &&
   printf '%s\n' "$tt" | grep -q "^loaded: .*teacher $tmp/tt.safetensors,"; then
  ok "an unsaved trained teacher keeps out of score logs and search states; saved, it is its file"; else
  notok "an unsaved trained teacher keeps out of score logs and search states"; printf '%s\n' "$tt" | sed 's/^/# /'; fi
# a student in training reads the batch: a new teacher (a new batch) ends it
out=$("$R" --threads 1 -c "load dataset cifar10" -c "load teacher resnet20" -c "arch set $ARCH" -c init \
  -c "step 1" -c "load teacher resnet20" -c "step 1" 2>&1)
if [ "$(printf '%s\n' "$out" | grep -c '^step    1  loss 0.905')" -eq 2 ]; then
  ok "step after load teacher starts a new student on the new batch"; else
  notok "step after load teacher starts a new student on the new batch"; printf '%s\n' "$out" | sed 's/^/# /'; fi

# the RMI commands on the bundled data (3 steps per evaluation)
printf 'load dataset cifar10\nload teacher resnet20\nload benchmark nb201\nset steps 3\nset threads 1\n' > "$tmp/base.rmi"
check "batch select shows the classes and the teacher's CE" 0 "teacher CE of the chosen images: max" -- -f "$tmp/base.rmi" -c "batch select"
check "batch show before select" 1 "no batch selected" -- -c "batch show"
check "a training option without its value" 1 "error: teacher: 'epochs' needs a value \(options: \[epochs N\]" -- \
  -c "load teacher resnet20" -c "teacher train epochs"
check "a search option without its value" 1 "error: search: start: 'n_warm' needs a value" -- -c "search start rminas n_warm"
check "batch alone shows it" 0 "^batch: 32 images chosen from a pool of" -- -f "$tmp/base.rmi" -c "batch select" -c "batch"
check "init without an architecture" 1 "no architecture" -- -c "init"
check "init and step print loss, CE and CKA per step" 0 "^step +3 +loss [0-9.]+ +ce [0-9.]+ +cka [0-9.]+ [0-9.]+ [0-9.]+" -- -f "$tmp/base.rmi" -c "arch set $ARCH" -c init -c "step 3"
check "step past the planned steps" 1 "has done all 3 steps" -- -f "$tmp/base.rmi" -c "arch set $ARCH" -c init -c "step 4"
check "score of an architecture with its benchmark accuracy" 0 "score [0-9.]+ .*3 steps .*cifar10_test 93.91" -- -f "$tmp/base.rmi" -c "score $ARCH"
check "the all-none cell scores +inf with a warning" 0 "warning: the loss became NaN at step 1: score \+inf" -- -f "$tmp/base.rmi" -c "score |none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
printf '%s\n# a comment\n\n|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|\n' "$ARCH" > "$tmp/archs.txt"
check "rank FILE scores the listed architectures and correlates" 0 "2 architectures in [0-9.]+ s" -- -f "$tmp/base.rmi" -c "rank $tmp/archs.txt" -c "export csv rank $tmp/rank.csv"
printf '6111\n 0 \n' > "$tmp/idx.txt"
check "rank FILE of NB-201 indices" 0 "^\[2/2\] \|avg_pool_3x3~0\|\+\|nor_conv_1x1~0\|skip_connect~1\|\+\|nor_conv_1x1~0\|skip_connect~1\|skip_connect~2\| score .*\(cifar10_test 85.86\)" -- \
  -f "$tmp/base.rmi" -c "rank $tmp/idx.txt"
if head -1 "$tmp/rank.csv" | grep -q '^arch,score,cka1,cka2,cka3,ce,seconds,params,flops,cifar10_test$' &&
   [ "$(wc -l < "$tmp/rank.csv")" -eq 3 ]; then ok "export csv rank: header and one row per architecture"; else
  notok "export csv rank: header and one row per architecture"; fi
check "rank with rank_log appends each result" 0 "1 architectures in" -- -f "$tmp/base.rmi" \
  -c "set rank_log $tmp/rl.csv" -c "rank $tmp/archs.txt" -c "rank 1"
if [ "$(wc -l < "$tmp/rl.csv")" -eq 4 ]; then ok "the rank log has a header and 3 rows"; else notok "the rank log has a header and 3 rows"; fi
out=$("$R" -f "$tmp/base.rmi" -c "set rank_log $tmp/rl.csv" -c "rank $tmp/archs.txt" 2>&1)
if [ "$(printf '%s\n' "$out" | grep -c 'from the score log')" -eq 2 ]; then ok "rank again takes the logged results"; else
  notok "rank again takes the logged results"; printf '%s\n' "$out" | sed 's/^/# /'; fi
# a process killed in the middle of a row leaves it without its newline
printf '|nor_conv_3x3~0|+|none~0|,0.01' >> "$tmp/rl.csv"
out=$("$R" -f "$tmp/base.rmi" -c "set score_log $tmp/rl.csv" -c "rank $tmp/archs.txt" 2>&1)
if [ "$(printf '%s\n' "$out" | grep -c 'from the score log')" -eq 2 ] && [ "$(wc -l < "$tmp/rl.csv")" -eq 4 ] &&
   [ "$(tail -c 1 "$tmp/rl.csv" | od -An -c | tr -d ' ')" = '\n' ]; then
  ok "a row cut short by a kill is dropped, the log goes on"; else
  notok "a row cut short by a kill is dropped, the log goes on"; printf '%s\n' "$out" | sed 's/^/# /'; fi
# a damaged row is refused by line and field, never read as a score of 0
for bad in '0.5x:score is not a number' 'nan:score is nan' ':score is not a number'; do
  cp "$tmp/rl.csv.settings" "$tmp/rd.csv.settings"
  sed -E "2s/^([^,]*),[^,]*,/\1,${bad%%:*},/" "$tmp/rl.csv" > "$tmp/rd.csv"
  check "a score log row with score '${bad%%:*}' is refused: ${bad#*:}" 1 "rd.csv line 2: not a score log row: ${bad#*:}" -- \
    -f "$tmp/base.rmi" -c "set score_log $tmp/rd.csv" -c "rank $tmp/archs.txt"
done
cp "$tmp/rl.csv.settings" "$tmp/rd.csv.settings"
sed -E '3s/,([0-9]+),([0-9]+),([^,]*)$/,-\1,\2,\3/' "$tmp/rl.csv" > "$tmp/rd.csv"
check "a score log row with a negative parameter count is refused" 1 "rd.csv line 3: not a score log row: params is not a count" -- \
  -f "$tmp/base.rmi" -c "set score_log $tmp/rd.csv" -c "rank $tmp/archs.txt"
# the pools' whole-plane loops and their row-buffer loops (RMINAS_POOL_ROWS=1)
# give the same scores to the last digit: avg_pool_3x3 cells, and a DARTS
# cell of max and avg pools
printf '%s\n' '|avg_pool_3x3~0|+|avg_pool_3x3~0|avg_pool_3x3~1|+|avg_pool_3x3~0|skip_connect~1|avg_pool_3x3~2|' \
  '|avg_pool_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|nor_conv_3x3~0|none~1|avg_pool_3x3~2|' > "$tmp/pools.txt"
echo "Genotype(normal=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('max_pool_3x3', 0), ('avg_pool_3x3', 2), ('sep_conv_3x3', 0), ('max_pool_3x3', 2), ('max_pool_3x3', 3), ('skip_connect', 1)], normal_concat=[2, 3, 4, 5])" > "$tmp/dpools.txt"
for v in planes rows; do
  env RMINAS_POOL_ROWS=$([ $v = rows ] && echo 1 || echo 0) "$R" -f "$tmp/base.rmi" -c "set score_log $tmp/pl_$v.csv" \
    -c "rank $tmp/pools.txt" -c "space darts" -c "set batch 8" -c "set score_log $tmp/pd_$v.csv" \
    -c "rank $tmp/dpools.txt" > /dev/null 2>&1
done
if [ "$(wc -l < "$tmp/pl_planes.csv")" -eq 3 ] && [ "$(wc -l < "$tmp/pd_planes.csv")" -eq 2 ] &&
   [ "$(cut -d, -f2-6 "$tmp/pl_planes.csv")" = "$(cut -d, -f2-6 "$tmp/pl_rows.csv")" ] &&
   [ "$(sed 's/.*",//' "$tmp/pd_planes.csv" | cut -d, -f1-5)" = "$(sed 's/.*",//' "$tmp/pd_rows.csv" | cut -d, -f1-5)" ]; then
  ok "pools over whole planes and over row buffers: the same scores to the bit"; else
  notok "pools over whole planes and over row buffers: the same scores to the bit"; fi
# winograd2's products and transforms (16-channel blocks) in 16-wide
# registers (AVX-512) and in 8-wide ones (RMINAS_WINO_AVX2=1): the same sums
# in the same order, the same scores to the bit (a CPU without AVX-512 has
# only the second); 2 threads, so the weight gradient's per-thread sums are
# compared too
printf '%s\n' '|nor_conv_3x3~0|+|nor_conv_1x1~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|' \
  '|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|' > "$tmp/w3.txt"
for v in 0 1; do
  env RMINAS_WINO_AVX2=$v "$R" -f "$tmp/base.rmi" -c "set threads 2" -c "set score_log $tmp/w3_$v.csv" \
    -c "rank $tmp/w3.txt" > /dev/null 2>&1
done
w512=$(grep -qw avx512f /proc/cpuinfo 2>/dev/null && echo "16-wide and 8-wide" || echo "8-wide only on this CPU")
if [ "$(wc -l < "$tmp/w3_0.csv")" -eq 3 ] && [ "$(cut -d, -f1-6 "$tmp/w3_0.csv")" = "$(cut -d, -f1-6 "$tmp/w3_1.csv")" ]; then
  ok "winograd2's products and transforms $w512: the same scores to the bit"; else
  notok "winograd2's products and transforms $w512: the same scores to the bit"; fi
check "a rank log of other settings is refused" 1 "scored with other settings" -- -f "$tmp/base.rmi" \
  -c "set steps 4" -c "set rank_log $tmp/rl.csv" -c "rank $tmp/archs.txt"
if [ "$(nproc)" -ge 2 ]; then
  check "a score log names the settings that differ (threads decide a CPU score)" 1 \
    "rl.csv was scored with other settings \(.*rl.csv.settings: steps 4 here, 3 in the log; threads 2 here, 1 in the log\)" -- \
    -f "$tmp/base.rmi" -c "set steps 4" -c "set threads 2" -c "set score_log $tmp/rl.csv" -c "rank $tmp/archs.txt"
  "$R" -f "$tmp/base.rmi" -c "set threads 2" -c "set score_log $tmp/t2.csv" -c "rank $tmp/archs.txt" > /dev/null 2>&1
  check "a score log of 2 threads is refused at 1" 1 "threads 1 here, 2 in the log\)" -- \
    -f "$tmp/base.rmi" -c "set score_log $tmp/t2.csv" -c "rank $tmp/archs.txt"
fi
# a log scored with TF32 convolutions (RMINAS_CUDA_TF32=1 on a GPU: "math tf32"
# ends its settings line) is not one of full float32
cp "$tmp/rl.csv" "$tmp/tf.csv" && sed 's/$/ math tf32/' "$tmp/rl.csv.settings" > "$tmp/tf.csv.settings"
check "a score log of TF32 convolutions is refused in float32" 1 \
  "tf.csv was scored with other settings \(.*tf.csv.settings: math float32 here, tf32 in the log\)" -- \
  -f "$tmp/base.rmi" -c "set score_log $tmp/tf.csv" -c "rank $tmp/archs.txt"
# profile: every backend operation timed, the score unchanged to the last digit
check "profile before anything ran" 0 "nothing counted yet" -- -c profile
check "profile with a bad word" 1 "usage: profile \[on \| off \| reset \| show\]" -- -c "profile often"
check "export csv profile before profiling" 1 "nothing profiled yet" -- -c "export csv profile $tmp/p0.csv"
"$R" -f "$tmp/base.rmi" -c "set steps 4" -c "set score_log $tmp/p1.csv" -c "rank $tmp/archs.txt" > /dev/null 2>&1
"$R" -f "$tmp/base.rmi" -c "set steps 4" -c "profile on" -c "set score_log $tmp/p2.csv" -c "rank $tmp/archs.txt" \
  -c profile -c "export csv profile $tmp/prof.csv" -c "profile off" -c "profile reset" -c profile > "$tmp/prof.log" 2>&1
if [ "$(wc -l < "$tmp/p1.csv")" -eq 3 ] && [ "$(cut -d, -f1-6 "$tmp/p1.csv")" = "$(cut -d, -f1-6 "$tmp/p2.csv")" ]; then
  ok "profile on: the same scores to the last digit"; else notok "profile on: the same scores to the last digit"; fi
# two architectures of 4 steps: every convolution runs forward and backward
# once a step; the CSV's shapes add up to the operations' calls
fw=$(awk -F, '$1 == "op" && $2 == "conv2d_forward" {print $3}' "$tmp/prof.csv")
bw=$(awk -F, '$1 == "op" && $2 == "conv2d_backward" {print $3}' "$tmp/prof.csv")
fs=$(awk -F, '$1 == "conv" && $2 == "conv2d_forward" {s += $3} END {print s}' "$tmp/prof.csv")
if grep -Eq '^profile \(on, cpu, 1 thread\): [0-9.]+ s in backend operations' "$tmp/prof.log" &&
   grep -Eq '^  conv2d_backward +[0-9]+ +[0-9.]+ +[0-9.]+% ' "$tmp/prof.log" &&
   grep -Eq '^  32x16x32x32 -> 16 3x3 s1 p1 relu_in ' "$tmp/prof.log" &&
   [ -n "$fw" ] && [ "$fw" -gt 0 ] && [ "$fw" = "$bw" ] && [ "$fw" = "$fs" ] &&
   grep -q '^profile (off, cpu, 1 thread): 0.000 s' "$tmp/prof.log"; then
  ok "profile: operations and convolution shapes ($fw convolutions), the CSV adds up, reset"
else notok "profile: operations and convolution shapes, the CSV adds up ($fw $bw $fs)"; sed 's/^/# /' "$tmp/prof.log"; fi
check "rank N samples and correlates" 0 "kendall tau -?[0-9.]+ +spearman rho" -- -f "$tmp/base.rmi" -c "rank 3"
# several jobs: each score the one it gets alone (the score logs keep all
# 17 digits; with jobs their rows come in the order the scores finish), the
# listing in the file's order, a log shared with earlier runs, a killed run
# resumed from its log, Ctrl-C
printf '%s\n' "$ARCH" '|none~0|+|none~0|none~1|+|none~0|none~1|none~2|' \
  '|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|' \
  '|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|' \
  '|skip_connect~0|+|avg_pool_3x3~0|nor_conv_1x1~1|+|none~0|nor_conv_3x3~1|avg_pool_3x3~2|' \
  '|nor_conv_1x1~0|+|skip_connect~0|none~1|+|nor_conv_3x3~0|avg_pool_3x3~1|nor_conv_1x1~2|' > "$tmp/six.txt"
scores() { cut -d, -f1-6 "$1" | sort; }
"$R" -f "$tmp/base.rmi" -c "set score_log $tmp/l1.csv" -c "rank $tmp/six.txt" \
  -c "export csv rank $tmp/j1.csv" -c "export csv curves $tmp/c1.csv" > "$tmp/j1.out" 2>&1
check "rank with 3 jobs" 0 "wall time [0-9.]+ s with 3 jobs" -- -f "$tmp/base.rmi" -c "set jobs 3" \
  -c "set score_log $tmp/l3.csv" -c "rank $tmp/six.txt" -c "export csv rank $tmp/j3.csv" \
  -c "export csv curves $tmp/c3.csv"
# the learning curves: 3 steps of each architecture (1 for the all-none
# cell, NaN at once), the last step's loss its score, the same with 3 jobs
last_losses() { awk -F, 'NR > 1 { last[$1] = $3 } END { for (a in last) print a "," last[a] }' "$1" | sort; }
if head -1 "$tmp/c1.csv" | grep -q '^arch,step,loss,ce,cka1,cka2,cka3,cifar10_test$' &&
   [ "$(wc -l < "$tmp/c1.csv")" -eq 17 ] && grep -q '|none~2|,1,nan,' "$tmp/c1.csv" &&
   [ "$(last_losses "$tmp/c1.csv" | grep -v ',nan$')" = "$(cut -d, -f1-2 "$tmp/j1.csv" | sed 1d | grep -v ',inf$' | sort)" ] &&
   cmp -s "$tmp/c1.csv" "$tmp/c3.csv"; then
  ok "export csv curves: every step of the 6, the last loss the score, the same with 3 jobs"; else
  notok "export csv curves: every step of the 6, the last loss the score, the same with 3 jobs"
  sed 's/^/# /' "$tmp/c1.csv"; fi
# tau by step: at the last step the score's own
tau_last=$(sed -n 's/.*kendall tau of -loss at step .* 3: \([-0-9.]*\) (the 6 scored here)$/\1/p' "$tmp/j1.out")
tau_rmi=$(sed -n 's/^  RMI (-score)  kendall tau \([-0-9.]*\) .*/\1/p' "$tmp/j1.out")
if grep -q 'kendall tau of -loss at step  1: [-0-9.]*  2: [-0-9.]*  3: ' "$tmp/j1.out" &&
   [ -n "$tau_last" ] && [ "$tau_last" = "$tau_rmi" ]; then
  ok "rank prints tau by step, the last step's the score's ($tau_rmi)"; else
  notok "rank prints tau by step, the last step's the score's"; sed 's/^/# /' "$tmp/j1.out"; fi
if [ "$(wc -l < "$tmp/l1.csv")" -eq 7 ] && [ "$(scores "$tmp/l1.csv")" = "$(scores "$tmp/l3.csv")" ] &&
   [ "$(cut -d, -f1-6 "$tmp/j1.csv")" = "$(cut -d, -f1-6 "$tmp/j3.csv")" ]; then
  ok "3 jobs: the same 6 scores to the last digit, listed in the file's order"; else
  notok "3 jobs: the same 6 scores to the last digit, listed in the file's order"
  diff "$tmp/l1.csv" "$tmp/l3.csv" | sed 's/^/# /'; fi
head -3 "$tmp/six.txt" > "$tmp/three.txt"
out=$("$R" -f "$tmp/base.rmi" -c "set jobs 2" -c "set score_log $tmp/jl.csv" -c "rank $tmp/three.txt" \
  -c "rank $tmp/six.txt" 2>&1)
if [ "$(printf '%s\n' "$out" | grep -c 'from the score log')" -eq 3 ] &&
   [ "$(scores "$tmp/l1.csv")" = "$(scores "$tmp/jl.csv")" ]; then
  ok "2 jobs with a score log: 3 rows from it, 3 scored, the same scores"; else
  notok "2 jobs with a score log: 3 rows from it, 3 scored, the same scores"; printf '%s\n' "$out" | sed 's/^/# /'; fi
check "curves of a ranking whose scores all came from the log" 1 \
  "the last ranking scored nothing itself \(its 6 scores came from the score log" -- \
  -f "$tmp/base.rmi" -c "set score_log $tmp/jl.csv" -c "rank $tmp/six.txt" -c "export csv curves $tmp/cx.csv"
# wait (at most 60 s) until FILE has LINES lines
wait_lines() {
  i=0
  while [ $i -lt 600 ] && [ "$(cat "$1" 2>/dev/null | wc -l)" -lt "$2" ]; do sleep 0.1; i=$((i + 1)); done
}
"$R" -f "$tmp/base.rmi" -c "set steps 10" -c "set jobs 2" -c "set score_log $tmp/jk.csv" \
  -c "rank $tmp/six.txt" > /dev/null 2>&1 &
pid=$!
wait_lines "$tmp/jk.csv" 3
kill -9 "$pid" 2>/dev/null
wait "$pid" 2>/dev/null
kept=$(($(cat "$tmp/jk.csv" 2>/dev/null | wc -l) - 1))
"$R" -f "$tmp/base.rmi" -c "set steps 10" -c "set score_log $tmp/lk1.csv" -c "rank $tmp/six.txt" > /dev/null 2>&1
"$R" -f "$tmp/base.rmi" -c "set steps 10" -c "set jobs 2" -c "set score_log $tmp/jk.csv" \
  -c "rank $tmp/six.txt" > "$tmp/jk.out" 2>&1
if [ "$kept" -ge 2 ] && [ "$kept" -le 5 ] && [ "$(grep -c 'from the score log' "$tmp/jk.out")" -eq "$kept" ] &&
   [ "$(scores "$tmp/lk1.csv")" = "$(scores "$tmp/jk.csv")" ]; then
  ok "2 jobs killed with SIGKILL after $kept rows: resumed from the log, the same 6 scores"; else
  notok "2 jobs killed with SIGKILL after $kept rows: resumed from the log, the same 6 scores"; sed 's/^/# /' "$tmp/jk.out"; fi
"$R" -f "$tmp/base.rmi" -c "set steps 200" -c "set jobs 2" -c "set score_log $tmp/ji.csv" \
  -c "rank $tmp/six.txt" -c version > "$tmp/ji.out" 2>&1 &
pid=$!
# the all-none cell (second) ends at its first step, while the first runs on
wait_lines "$tmp/ji.csv" 2
kill -INT "$pid"
i=0
while [ $i -lt 600 ] && kill -0 "$pid" 2>/dev/null; do sleep 0.1; i=$((i + 1)); done
kill -9 "$pid" 2>/dev/null
wait "$pid"
st=$?
if [ $st -eq 0 ] && grep -q '^interrupted: 0 of 6 scored (kept)' "$tmp/ji.out" &&
   grep -q '^rminas [0-9]' "$tmp/ji.out" && grep -q '^|none~0|+|none~0|none~1|+|none~0|none~1|none~2|,inf,' "$tmp/ji.csv"; then
  ok "2 jobs stopped by Ctrl-C (SIGINT): the finished row logged, the shell goes on"; else
  notok "2 jobs stopped by Ctrl-C (SIGINT): the finished row logged, the shell goes on (status $st)"
  sed 's/^/# /' "$tmp/ji.out" "$tmp/ji.csv"; fi
check "threads past the cores are all of them, and it says so" 0 "^threads [0-9]+: the most here \(the cores, or OMP_NUM_THREADS\)" -- -c "set threads 1024"
check "jobs out of range" 1 "jobs must be an integer from 1 to 64, got '0'" -- -c "set jobs 0"
out=$("$R" -c "set jobs 3" -c "show jobs" 2>&1)
if printf '%s\n' "$out" | grep -Eq '^jobs +3 ' && [ "$(printf '%s\n' "$out" | wc -l)" -eq 1 ]; then
  ok "show KEY shows that setting alone"; else notok "show KEY shows that setting alone"; fi
check "show of an unknown setting" 1 "unknown setting 'jbos'" -- -c "show jbos"
check "a directory as the score log or the search state" 1 "set: score_log $tmp is a directory; give a file" -- \
  -c "set state $tmp" -c "set score_log $tmp"
echo garbage > "$tmp/notlog.csv"
check "a file that is not a score log" 1 "notlog.csv is not an rminas score log \(no .*notlog.csv.settings beside it\)" -- \
  -f "$tmp/base.rmi" -c "set score_log $tmp/notlog.csv" -c "rank 1"
check "a space change drops the current architecture" 1 "init: no architecture" -- \
  -c "arch set $ARCH" -c "space chain" -c init
check "show rank_log, the older name, shows score_log" 0 "^score_log +none " -- -c "show rank_log"
check "show names the 12-epoch table when loaded" 0 "^loaded: .*benchmark \(none\), 12-epoch .*nb201_12epoch.csv," -- \
  -c "load benchmark nb201-12" -c "show"
printf '%s\n|bad~0|+|none~0|none~1|+|none~0|none~1|none~2|\n' "$ARCH" > "$tmp/bad.txt"
check "rank FILE with a bad line names it" 1 "bad.txt line 2" -- -c "rank $tmp/bad.txt"
check "export csv steps" 0 "wrote .*steps.csv" -- -f "$tmp/base.rmi" -c "arch set $ARCH" -c init -c "step 2" -c "export csv steps $tmp/steps.csv"
if [ "$(head -1 "$tmp/steps.csv")" = "step,loss,ce,cka1,cka2,cka3,arch" ] && [ "$(wc -l < "$tmp/steps.csv")" -eq 3 ]; then
  ok "the steps CSV has a header and one row per step"; else notok "the steps CSV has a header and one row per step"; fi
# written files replace a link's target (not the link) and write devices in place
mkdir -p "$tmp/lk"
echo old > "$tmp/lk/real.csv"
ln -sf lk/real.csv "$tmp/link.csv"
ln -sf lk/new.csv "$tmp/dangling.csv"
out=$("$R" -f "$tmp/base.rmi" -c "arch set $ARCH" -c init -c "step 2" -c "export csv steps $tmp/link.csv" \
  -c "export csv steps $tmp/dangling.csv" -c "export csv steps /dev/stdout" -c "teacher save /dev/null" \
  -c "show" 2>&1)
if [ -L "$tmp/link.csv" ] && [ -L "$tmp/dangling.csv" ] && cmp -s "$tmp/lk/real.csv" "$tmp/steps.csv" &&
   cmp -s "$tmp/lk/new.csv" "$tmp/steps.csv" && [ ! -e "$tmp/lk/real.csv.tmp" ] &&
   printf '%s\n' "$out" | grep -q '^2,0\.[0-9]*,.*,|nor_conv_3x3~0|' &&
   printf '%s\n' "$out" | grep -q "^wrote /dev/stdout" && [ -c /dev/null ] &&
   printf '%s\n' "$out" | grep -q "^loaded: .*teacher .*resnet20-c10.safetensors,"; then
  ok "export follows links and writes /dev/stdout in place; teacher save /dev/null leaves the teacher's file"; else
  notok "export follows links and writes /dev/stdout in place"; printf '%s\n' "$out" | sed 's/^/# /'; ls -la "$tmp" "$tmp/lk" | sed 's/^/# /'; fi
if [ -c /dev/full ]; then
  check "export to a full device is a write error" 1 "export: /dev/full: write failed: No space left on device" -- \
    -f "$tmp/base.rmi" -c "arch set $ARCH" -c init -c "step 1" -c "export csv steps /dev/full"
fi
check "export to a directory" 1 "export: $tmp: is a directory" -- \
  -f "$tmp/base.rmi" -c "arch set $ARCH" -c init -c "step 1" -c "export csv steps $tmp"
# the current architecture trained as a network, saved, and used as a teacher
check "eval before train" 1 "has not been trained" -- -c "arch set $ARCH" -c eval
check "train without an architecture" 1 "no architecture" -- -c "load dataset cifar10" -c "train epochs 1"
check "train, eval, save, load as teacher" 0 "^teacher \|nor_conv_3x3~0\|.*: test accuracy [0-9.]+ %" -- \
  -c "set threads 1" -c "load dataset cifar10" -c "arch set $ARCH" -c "train epochs 1 batch 256 every 2" -c eval \
  -c "train save $tmp/nb.safetensors" -c "load teacher nb201 $tmp/nb.safetensors" -c "teacher eval"
check "a fresh ResNet-56 teacher (init) for teacher train" 0 "^teacher resnet56: test accuracy [0-9.]+ %" -- \
  -c "set threads 1" -c "load dataset cifar10" -c "load teacher resnet56 init" -c "teacher eval"
check "a fresh ResNet-20 teacher trains" 0 "epoch 1/1: loss [0-9.]+, .*test accuracy [0-9.]+ %" -- \
  -c "set threads 1" -c "load dataset cifar10" -c "load teacher resnet20 init" -c "teacher train epochs 1 batch 512"
# the CIFAR-100 family (the paper's ResNet-101 teacher): fresh, saved, scored
# with, reloaded by its key names; the wrong depth names the missing key
out=$("$R" -c "load dataset cifar10" -c "load teacher resnet18 init" -c "teacher save $tmp/r18.safetensors" \
  -c "set steps 2" -c "score $ARCH" -c "load teacher resnet18 $tmp/r18.safetensors" -c "score $ARCH" \
  -c "load teacher resnet34 $tmp/r18.safetensors" 2>&1)
s1=$(printf '%s\n' "$out" | sed -n 's/^|.* score \([0-9.]*\) .*/\1/p' | sed -n 1p)
s2=$(printf '%s\n' "$out" | sed -n 's/^|.* score \([0-9.]*\) .*/\1/p' | sed -n 2p)
if printf '%s\n' "$out" | grep -q "^teacher resnet18: 11173962 parameters" && [ -n "$s1" ] && [ "$s1" = "$s2" ] &&
   printf '%s\n' "$out" | grep -q "error: load: .*r18.safetensors: missing key 'conv2_x.2.residual_function.0.weight' (the resnet34 expects it)"; then
  ok "a ResNet-18 of the CIFAR-100 family as teacher: saved, reloaded, the same score ($s1)"; else
  notok "a ResNet-18 of the CIFAR-100 family as teacher"; printf '%s\n' "$out" | sed 's/^/# /'; fi
check "the CIFAR-100 family has no bundled weights" 1 "no bundled weights for resnet101; give a FILE" -- \
  -c "load teacher resnet101"
# a PyTorch checkpoint through examples/pth-to-safetensors (where PyTorch is)
if /usr/bin/python3 -c "import torch" 2>/dev/null; then
  /usr/bin/python3 -c "
import torch
sd = {'module.conv1.weight': torch.randn(16, 3, 3, 3)}
torch.save({'state_dict': sd, 'epoch': 1}, '$tmp/t.th')" 2>/dev/null
  if "$top_srcdir/examples/pth-to-safetensors" "$tmp/t.th" "$tmp/t.safetensors" > /dev/null &&
     "$R" -c "load teacher resnet20 $tmp/t.safetensors" 2>&1 | grep -q "missing key 'bn1.weight'"; then
    ok "pth-to-safetensors: a checkpoint's state dict, module. removed, read by key"; else
    notok "pth-to-safetensors: a checkpoint's state dict, module. removed, read by key"; fi
else
  skip "pth-to-safetensors: no PyTorch on /usr/bin/python3"
fi
check "a fresh teacher of an architecture string (init)" 0 "^teacher \|nor_conv_3x3~0\|.*weights init" -- \
  -c "load teacher $ARCH init"
check "an NB-201 teacher needs a file" 1 "needs its weights" -- -c "load teacher nb201"
check "a ResNet file is not an NB-201 teacher" 1 "metadata arch: architecture string" -- -c "load teacher nb201 $AKA"

# the chain space: the same commands on MobileNet-like chains
CH='k3e3-skip-k5e6-k7e3|k3e6-k3e6-skip-skip|k7e6-k5e3-k3e3-skip'
check "arch show in the chain space" 0 "chain space; [0-9]+ parameters" -- -c "space chain" -c "arch set $CH" -c "arch show"
check "a bad chain string names the layer" 1 "layer 2 \(offset 10\): unknown block 'k9e6'" -- -c "space chain" \
  -c "arch set k3e3-skip-k9e6-k7e3|k3e6-k3e6-skip-skip|k7e6-k5e3-k3e3-skip"
check "a short chain string says how many layers it has" 1 "chain architecture ends early at offset 9: 2 of 12 layers" -- \
  -c "space chain" -c "arch k3e3-skip"
check "init and step a chain student" 0 "^step +2 +loss [0-9.]+" -- -f "$tmp/base.rmi" -c "space chain" \
  -c "arch set $CH" -c init -c "step 2"
check "score and rank in the chain space" 0 "2 architectures in" -- -f "$tmp/base.rmi" -c "set steps 2" \
  -c "space chain" -c "score $CH" -c "arch sample 2" -c "rank 2" -c "export csv rank $tmp/chain-rank.csv"
if grep -q "^k[357]e[36]-\|^skip-" "$tmp/chain-rank.csv" && [ "$(wc -l < "$tmp/chain-rank.csv")" -eq 3 ]; then
  ok "the chain ranking exports"; else notok "the chain ranking exports"; fi
check "a chain network trained and saved becomes a teacher" 0 "^teacher k3e3-skip-.*: test accuracy [0-9.]+ %" -- \
  -c "set threads 1" -c "load dataset cifar10" -c "space chain" -c "arch set $CH" -c "train epochs 1 batch 256 every 4" \
  -c "train save $tmp/ch.safetensors" -c "load teacher chain $tmp/ch.safetensors" -c "teacher eval"
check "a chain file is not a DARTS teacher" 1 "a chain network \(metadata space\), not a darts one" -- \
  -c "load teacher darts $tmp/ch.safetensors"
check "arch dot draws a chain" 0 "wrote .*c.dot" -- -c "space chain" -c "arch set $CH" -c "arch dot $tmp/c.dot"
if [ "$(grep -c -- '->' "$tmp/c.dot")" -eq 15 ] && grep -q 'style=dashed' "$tmp/c.dot"; then
  ok "the chain's DOT file: 15 links, skips dashed"; else notok "the chain's DOT file: 15 links, skips dashed"; fi

# the DARTS space: DARTS's genotype strings, quoted or not
DV2="Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], normal_concat=range(2, 6))"
check "space darts applies the paper's DARTS settings" 0 "^steps +250 .*" -- -c "set steps 3" -c "space darts" \
  -c "show settings"
check "arch show of a quoted genotype" 0 "darts space; 324666 parameters" -- -c "space darts" \
  -c "arch show \"$DV2\""
check "arch set of an unquoted genotype" 0 "darts space; 324666 parameters" -- -c "space darts" \
  -c "arch set $DV2"
check "a bad genotype names the entry" 1 "normal entry 3: node 3 can take input 0..2, not 3" -- -c "space darts" \
  -c "arch set Genotype(normal=[(sep_conv_3x3, 0), (sep_conv_3x3, 1), (sep_conv_3x3, 0), (sep_conv_3x3, 3)])"
check "arch dot draws a DARTS cell" 0 "wrote .*d.dot" -- -c "space darts" -c "arch dot $tmp/d.dot $DV2"
if [ "$(grep -c -- '-> n' "$tmp/d.dot")" -eq 8 ] && [ "$(grep -c -- '-> out' "$tmp/d.dot")" -eq 4 ]; then
  ok "the DARTS DOT file: 8 labeled edges, 4 nodes into c_{k}"; else notok "the DARTS DOT file: 8 labeled edges, 4 nodes into c_{k}"; fi
check "score and rank in the DARTS space" 0 "2 architectures in" -- -f "$tmp/base.rmi" -c "space darts" \
  -c "set batch 8" -c "set steps 2" -c "score $DV2" -c "arch sample 2" -c "rank 2" -c "export csv rank $tmp/darts-rank.csv"
if [ "$(grep -c '^"Genotype(normal=\[' "$tmp/darts-rank.csv")" -eq 2 ]; then
  ok "the DARTS ranking exports quoted genotypes"; else notok "the DARTS ranking exports quoted genotypes"; fi

check "quit stops a script" 0 "^$" -- -c quit -c version
check "exit stops a script" 0 "^$" -- -c exit -c version

check "echo prints its words" 0 '^hello  *world$' -- -c "echo hello world"
check "space describes NAS-Bench-201" 0 "15625 architectures" -- -c space
check "unknown space" 1 "unknown search space 'nb301'" -- -c "space nb301"
check "arch dot writes Graphviz" 0 "wrote .*cell.dot" -- -c "arch dot $tmp/cell.dot $ARCH"
if grep -q 'n0 -> n1 \[label="nor_conv_3x3"\]' "$tmp/cell.dot" && ! grep -q none "$tmp/cell.dot.tmp" 2>/dev/null &&
   [ "$(grep -c -- '->' "$tmp/cell.dot")" -eq 4 ]; then ok "the DOT file has one edge per operation that is not none"; else
  notok "the DOT file has one edge per operation that is not none"; sed 's/^/# /' "$tmp/cell.dot"; fi
check "arch dot without an architecture" 1 "no architecture" -- -c "arch dot $tmp/x.dot"
check "panel needs a terminal" 1 "the panel needs a terminal" -- -c panel
check "export of a search before any" 1 "no search" -- -c "export csv search $tmp/s.csv"
check "export of an unknown kind" 1 "can export 'steps', 'rank', 'curves', 'search' or 'profile'" -- -c "export csv weights $tmp/w.csv"
check "load benchmark of an unknown kind" 1 "unknown benchmark 'nb301'" -- -c "load benchmark nb301"
check "the 12-epoch table loads" 0 "benchmark nb201-12 .*cifar100_valid" -- -c "load benchmark nb201-12"
# benchmark_column is a column of a loaded table, never quietly the row number
check "a benchmark_column no table has is refused" 1 "benchmark_column: no column 'cifar10_tset'" -- \
  -c "load benchmark nb201" -c "set benchmark_column cifar10_tset"
check "a mistyped benchmark_column set before the table falls back to cifar10_test, with a note" 0 \
  "note: no loaded table has benchmark_column cifar10_tset; it is now cifar10_test" -- \
  -c "set benchmark_column cifar10_tset" -c "load benchmark nb201"
check "a column of the 12-epoch table only stays set beside the ground truth" 0 "^benchmark_column +cifar100_valid " -- \
  -c "load benchmark nb201" -c "load benchmark nb201-12" -c "set benchmark_column cifar100_valid" \
  -c "load benchmark nb201" -c "show benchmark_column"
out=$("$R" -c "load benchmark nb201-12" -c "set benchmark_column cifar100_valid" -c "load benchmark nb201" \
  -c "set evaluator benchmark" -c "search start random budget 2" -c "search run" 2>&1)
if printf '%s\n' "$out" | grep -q "evaluator benchmark (cifar100_valid of .*nb201_12epoch.csv)" &&
   printf '%s\n' "$out" | grep -q "search done: used the evaluation budget"; then
  ok "the benchmark evaluator uses the set column, not index"; else
  notok "the benchmark evaluator uses the set column, not index"; printf '%s\n' "$out" | sed 's/^/# /'; fi
# damaged benchmark tables: each refused with the file, the line and what is
# wrong, the session's table kept (the 'arch' header twice once wrote
# before its row buffer: found by tests/test_fuzz under AddressSanitizer)
A1='|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|'
A2='|none~0|+|none~0|none~1|+|none~0|none~1|none~2|'
printf 'arch,x,arch\n%s,1,%s\n' "$A1" "$A1" > "$tmp/b1.csv"
printf 'arch,x,x\n%s,1,2\n' "$A1" > "$tmp/b2.csv"
printf 'arch\n%s\n' "$A1" > "$tmp/b3.csv"
printf 'arch,x\n%s,1\n%s,2\n' "$A1" "$A1" > "$tmp/b4.csv"
printf 'arch,x\n%s,1\n%s\n' "$A1" "$A2" > "$tmp/b5.csv"
printf 'arch,x\n%s,1x\n' "$A1" > "$tmp/b6.csv"
printf 'arch,x\n%s,1,2\n' "$A1" > "$tmp/b7.csv"
n_b=0
for want in "b1.csv line 1: column 'arch' twice in the header" "b2.csv line 1: column 'x' twice in the header" \
  "b3.csv line 1: no column besides 'arch' in the header" "b4.csv line 3: architecture listed twice" \
  "b5.csv line 3: fewer fields than the header's" "b6.csv line 2: column 'x': '1x' is not a number" \
  "b7.csv line 2: more fields than the header's"; do
  n_b=$((n_b + 1))
  check "a damaged benchmark table is refused: ${want#*: }" 1 "$want" -- -c "load benchmark nb201" \
    -c "load benchmark nb201 $tmp/b$n_b.csv" -c "arch show $A1"
done
# the rank among the table's architectures by benchmark_column (the
# ResNet-like cell: 67 rows of cifar10_test above its 93.91); none by a
# column that only the 12-epoch table has
RC='|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|skip_connect~2|'
out=$("$R" -c "load benchmark nb201" -c "arch show $RC" -c "set benchmark_column cifar100_test" \
  -c "arch show $RC" -c "load benchmark nb201-12" -c "set benchmark_column cifar100_valid" \
  -c "arch show $RC" 2>&1)
if [ "$(printf '%s\n' "$out" | grep '^  rank ')" = "  rank 68 of 15625 by cifar10_test (top 0.44 %; the table's best 94.37)
  rank 240 of 15625 by cifar100_test (top 1.54 %; the table's best 73.51)" ]; then
  ok "arch show: the rank in the ground truth by benchmark_column"; else
  notok "arch show: the rank in the ground truth by benchmark_column"; printf '%s\n' "$out" | sed 's/^/# /'; fi
out=$("$R" -c "load benchmark nb201" -c "load benchmark nb201 $tmp/b1.csv" -c "arch show $A1" 2>&1)
if printf '%s\n' "$out" | grep -q "cifar10_test [0-9]"; then ok "after a refused table the bundled one is still there"; else
  notok "after a refused table the bundled one is still there"; printf '%s\n' "$out" | sed 's/^/# /'; fi
# the man page documents every command of the table
missing=
for c in $("$R" -c help | sed -n 's/^  \([a-z]*\) .*/\1/p'); do
  grep -Eq "^\.B (.*\\fB)?$c\b" "$top_srcdir/doc/rminas.1" || missing="$missing $c"
done
if [ -z "$missing" ]; then ok "the man page documents every command"; else notok "the man page lacks:$missing"; fi
# the man page (font escapes aside) and the README name every setting
man=$(sed 's/\\f[BIRP]//g' "$top_srcdir/doc/rminas.1")
missing=
for k in $("$R" -c "show settings" | sed -n 's/^\([a-z_0-9]*\)  .*/\1/p'); do
  printf '%s\n' "$man" | grep -Eq "(^|[^a-z_])$k([^a-z_]|\$)" || missing="$missing man:$k"
  grep -Eq "(^|[^a-z_])$k([^a-z_]|\$)" "$top_srcdir/README.md" || missing="$missing README:$k"
done
if [ -z "$missing" ] && [ "$("$R" -c "show settings" | grep -c '^[a-z_]')" -gt 30 ]; then
  ok "the man page and the README name every setting"
else notok "settings not documented:$missing"; fi

finish
