#!/usr/bin/env bash
# test_train_nan.sh TRAIN: a non-finite loss stops the run. With a NaN injected at step 15
# (--debug-nan-at-step, a testing aid) and checkpoints every 4 steps (and at the end of epoch 1,
# step 10), genvae-train must exit with status 3, name step 15 and epoch 2, and leave the last
# good checkpoint (step 12), whose tensors are all finite. SKIP without MNIST.
set -uo pipefail
train=$1
source "$(dirname "$0")/common.sh"
need_mnist
run_expect 3 "$train" "${tiny[@]}" --epochs 3 --checkpoint-every 4 --debug-nan-at-step 15 --out "$scratch/run"
grep -q "loss is NaN at step 15 (epoch 2)" "$scratch/out.log" || { echo "FAIL: the message does not name step 15, epoch 2"; exit 1; }
grep -q "last good checkpoint is .*checkpoint.safetensors (step 12: it loads, its weights are finite, and their loss on the batch it was saved at is [0-9.]*)" "$scratch/out.log" ||
  { echo "FAIL: the message does not name the last checkpoint"; exit 1; }
step=$($check meta "$scratch/run/checkpoint.safetensors" step) || exit 1
[ "$step" = 12 ] || { echo "FAIL: the checkpoint is at step $step, expected 12"; exit 1; }
$check finite "$scratch/run/checkpoint.safetensors" || exit 1
# nothing was logged for the failed step
python3 -c "
import json, sys
steps = [json.loads(l)['step'] for l in open('$scratch/run/metrics.jsonl')]
assert max(steps) < 15, steps
print('ok: metrics end at step', max(steps))" || exit 1
# a NaN before any checkpoint: no checkpoint file at all
run_expect 3 "$train" "${tiny[@]}" --epochs 1 --checkpoint-every 0 --debug-nan-at-step 2 --out "$scratch/early"
grep -q "no checkpoint had been saved yet" "$scratch/out.log" || { echo "FAIL: no note about the missing checkpoint"; exit 1; }
[ ! -e "$scratch/early/checkpoint.safetensors" ] || { echo "FAIL: a checkpoint was saved"; exit 1; }
echo "ok"
