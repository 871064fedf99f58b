#!/usr/bin/env bash
# test_train_run.sh TRAIN EVAL: a tiny genvae-train run end to end (2 epochs), then its run
# directory: config.json, metrics.jsonl and test.jsonl lines that parse as JSON with finite values,
# valid PNGs (samples, draws, reconstructions, curves), a checkpoint with model and optimizer
# state; then genvae-eval on it and the fields of its eval.json (ELBO = reconstruction - KL, the KL
# per dimension adding up to the KL, MI below its log M ceiling); a re-run from its config.json.
# SKIP without MNIST.
set -uo pipefail
train=$1 eval=$2
source "$(dirname "$0")/common.sh"
need_mnist
run_expect 0 "$train" "${tiny[@]}" --epochs 2 --mi-every 7 --mi-examples 50 --out "$scratch/run"
grep -q "^epoch 2: .*test ELBO" "$scratch/out.log" || { echo "FAIL: no epoch 2 summary line"; exit 1; }
$check files "$scratch/run" 2 || exit 1
run_expect 0 "$eval" "$scratch/run" --iwae-k 10 --iwae-examples 50 --mi-examples 50 --test-limit 100 --threads 2
grep -q "mutual information" "$scratch/out.log" || { echo "FAIL: no table on stdout"; exit 1; }
$check eval "$scratch/run/eval.json" 4 || exit 1
# a checkpoint path works as well as a run directory, and --out puts the report elsewhere
run_expect 0 "$eval" "$scratch/run/checkpoint.safetensors" --iwae-k 2 --iwae-examples 10 --mi-examples 10 \
  --test-limit 20 --out "$scratch/e2.json" --threads 2
$check eval "$scratch/e2.json" 4 || exit 1
# a run started again from the config it wrote is the same run, bit for bit; explicit flags win
run_expect 0 "$train" --config "$scratch/run/config.json" --out "$scratch/rerun"
$check same "$scratch/run/checkpoint.safetensors" "$scratch/rerun/checkpoint.safetensors" || exit 1
run_expect 0 "$train" --config "$scratch/run/config.json" --out "$scratch/rerun2" --epochs 1 --latent 3
python3 -c "
import json
c = json.load(open('$scratch/rerun2/config.json'))
assert (c['epochs'], c['latent'], c['hidden']) == (1, 3, 32), c
print('ok: explicit flags win over --config')" || exit 1
echo "ok"
