#!/usr/bin/env bash
# test_train_resume.sh TRAIN: --resume continues exactly. Two epochs in one run must end with the
# same checkpoint, bit for bit (model, optimizer state), as
#   (a) one epoch, then --resume --epochs 2 in a fresh process (resume at an epoch boundary), and
#   (b) a run stopped mid-epoch (checkpoint at step 7, a NaN injected at step 9), then --resume
#       (the data order, the binarization and z-noise streams restored mid-epoch).
# The logs of the resumed run must not repeat the steps after the checkpoint. SKIP without MNIST.
set -uo pipefail
train=$1
source "$(dirname "$0")/common.sh"
need_mnist
run_expect 0 "$train" "${tiny[@]}" --epochs 2 --mi-every 4 --mi-examples 50 --out "$scratch/full"
# (a) at an epoch boundary
run_expect 0 "$train" "${tiny[@]}" --epochs 1 --out "$scratch/a"
run_expect 0 "$train" --resume "$scratch/a" --epochs 2
grep -q "resuming .* at step 10 (epoch 2, batch 0)" "$scratch/out.log" || { echo "FAIL: did not resume at step 10"; exit 1; }
$check same "$scratch/full/checkpoint.safetensors" "$scratch/a/checkpoint.safetensors" || exit 1
# (b) mid-epoch
run_expect 3 "$train" "${tiny[@]}" --epochs 2 --mi-every 4 --mi-examples 50 --checkpoint-every 7 --debug-nan-at-step 9 --out "$scratch/b"
run_expect 0 "$train" --resume "$scratch/b" --debug-nan-at-step 0
grep -q "resuming .* at step 7 (epoch 1, batch 7)" "$scratch/out.log" || { echo "FAIL: did not resume at step 7"; exit 1; }
$check same "$scratch/full/checkpoint.safetensors" "$scratch/b/checkpoint.safetensors" || exit 1
$check files "$scratch/b" 2 || exit 1
# the resumed logs hold each step once, with the same values as the uninterrupted run
for f in metrics.jsonl test.jsonl information.jsonl; do
  python3 - "$scratch/full/$f" "$scratch/b/$f" <<'PY' || exit 1
import json, sys
a, b = ([{k: v for k, v in json.loads(l).items() if k != "time"} for l in open(p)] for p in sys.argv[1:])
assert a == b, f"{sys.argv[2]} differs from the uninterrupted run's:\n{a}\n{b}"
print(f"ok: {sys.argv[2]} matches ({len(a)} lines)")
PY
done
# and the comparison can fail: the checkpoint after one epoch differs from the one after two
run_expect 0 "$train" "${tiny[@]}" --epochs 1 --out "$scratch/one"
$check differ "$scratch/full/checkpoint.safetensors" "$scratch/one/checkpoint.safetensors" || exit 1
echo "ok"
