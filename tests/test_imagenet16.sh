#!/bin/sh
# ImageNet16-120 end to end on generated files of the distributed format:
# pickles of {'data': rows of 768 bytes, 'labels': 1..1000} as the downsampled
# ImageNet (Chrabaszcz et al.) ships them, converted by examples/imagenet16-to-bin
# (only labels 1..120 kept), loaded at 16x16 with 120 classes; an NB-201
# network trained on them becomes the teacher (as the paper's ImageNet16-120
# teacher) and scores a cell at 16x16. TAP output.
set -u
. "${top_srcdir:-.}/tests/tap.sh"
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
ARCH='|nor_conv_3x3~0|+|none~0|nor_conv_3x3~1|+|skip_connect~0|none~1|skip_connect~2|'
mkdir -p "$tmp/src"
"$PY" - "$tmp/src" <<'PY'
import os, pickle, random, sys
random.seed(1)
def batch(n):
    labels = [random.randint(1, 130) for _ in range(n)]  # 10 of 130 classes are not kept
    # a class-dependent pattern, so that a network can learn something
    data = [bytes((l * 7 + i * (l % 5 + 1) + random.randint(0, 20)) % 256 for i in range(768))
            for l in labels]
    return {'data': data, 'labels': labels}
for i in range(1, 11):
    pickle.dump(batch(40), open(os.path.join(sys.argv[1], 'train_data_batch_%d' % i), 'wb'))
pickle.dump(batch(60), open(os.path.join(sys.argv[1], 'val_data'), 'wb'))
PY
conv=$("$PY" "${top_srcdir:-.}/examples/imagenet16-to-bin" "$tmp/src" "$tmp/im16" 2>&1)
kept=$(printf '%s' "$conv" | sed -n 's/.*: \([0-9]*\) training and \([0-9]*\) test .*/\1 \2/p')
if [ -n "$kept" ] && [ $(( $(stat -c %s "$tmp/im16/train.bin") % 769 )) -eq 0 ] &&
   [ "$(stat -c %s "$tmp/im16/train.bin")" -eq $(( ${kept% *} * 769 )) ]; then
  ok "the converter keeps labels 1..120 as 769-byte records ($kept)"; else notok "the converter ($conv)"; fi
out=$("$PY" "${top_srcdir:-.}/examples/imagenet16-to-bin" "$tmp/nothing" "$tmp/x" 2>&1)
if [ $? -ne 0 ] && printf '%s' "$out" | grep -q "missing .*train_data_batch_1"; then
  ok "the converter names missing pickles"; else notok "the converter names missing pickles ($out)"; fi
check "load dataset imagenet16-120" 0 "dataset imagenet16-120: ${kept% *} training and ${kept#* } test images, 120 classes" -- \
  -c "load dataset imagenet16-120 $tmp/im16"
check "an NB-201 cell at 16x16 with 120 classes: a quarter of the 32x32 MACs" 0 "566536 parameters, 19.65 M MACs" -- \
  -c "load dataset imagenet16-120 $tmp/im16" -c "arch show $ARCH"
check "train an NB-201 network, save it, load it as the teacher, score a cell at 16x16" 0 \
  "score [0-9.]+ +cka [0-9.]+ [0-9.]+ [0-9.]+" -- -c "set threads 1" -c "load dataset imagenet16-120 $tmp/im16" \
  -c "arch set $ARCH" -c "train epochs 1 batch 100 every 10" -c "train save $tmp/t.safetensors" \
  -c "load teacher nb201 $tmp/t.safetensors" -c "set batch 8" -c "set steps 2" -c "score |nor_conv_1x1~0|+|skip_connect~0|none~1|+|skip_connect~0|none~1|avg_pool_3x3~2|"
check "a CIFAR teacher refuses 16x16 images" 1 "the teacher takes 32x32 images, the dataset has 16x16" -- \
  -c "load teacher resnet20" -c "load dataset imagenet16-120 $tmp/im16" -c "set batch 8" -c "batch select"
finish
