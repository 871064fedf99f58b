#!/usr/bin/env bash
# test_train_cli.sh TRAIN EVAL: the command line. A bad value names its flag (and the allowed
# values); --help documents the preprocessing per likelihood; an existing non-empty run directory
# is refused without --resume or --force, and --force refuses a folder that holds no run; --resume
# refuses to change a stored model flag. Needs no data.
set -uo pipefail
train=$1 eval=$2
source "$(dirname "$0")/common.sh"
expect_error() {  # expect_error PATTERN ARGS...: genvae-train ARGS must fail and print PATTERN
  local pattern=$1; shift
  if "$train" "$@" >"$scratch/err.log" 2>&1; then echo "FAIL: accepted $*"; exit 1; fi
  grep -q -- "$pattern" "$scratch/err.log" || { cat "$scratch/err.log"; echo "FAIL: '$*' did not say '$pattern'"; exit 1; }
  echo "ok: $* -> $(head -1 "$scratch/err.log")"
}
expect_error "--arch: foo not in {mlp,conv,conv3}" --arch foo
expect_error "--likelihood: poisson not in {bernoulli,gaussian,gaussian-learned,categorical256,logistic-mixture,logistic-mixture-rgb}" --likelihood poisson
expect_error "--regularizer: .*{none,kl,free-bits,mmd}" --regularizer l2
expect_error "--optimizer: .*{adam,adamax,sgd}" --optimizer rmsprop
expect_error "--data: unknown data set 'svhn'; allowed: mnist, fashion-mnist, cifar10, folder:PATH" --data svhn
expect_error "--lr: must be a finite number > 0, got -1" --lr=-1
expect_error "--lr: not a number: 'fast'" --lr fast
# unsigned settings refuse a sign instead of wrapping around; a non-number is "not a number"
expect_error "--seed: must be an integer in 0..18446744073709551615, got -1" --seed -1
expect_error "--seed: must be an integer in 0..18446744073709551615, got -1" --seed=-1
expect_error "--seed: must be an integer in 0..18446744073709551615, got 18446744073709551616" --seed 18446744073709551616
expect_error "--seed: not a number: 'x'" --seed x
expect_error "--latent: not a number: 'abc'" --latent abc
expect_error "--batch: not an integer: '2.5'" --batch 2.5
expect_error "--threads: must be an integer in 0..1024, got 2000" --threads 2000
expect_error "--lambda: must be a finite number >= 0" --lambda=-0.5
expect_error "--latent: " --latent 0
expect_error "--limit: must be an integer >= -1" --limit=-3
expect_error "--log-every: must be an integer >= 1" --log-every 0
"$train" --help >"$scratch/help.txt" || { echo "FAIL: --help"; exit 1; }
for word in "except when the training set is smaller than one" "--config" "dynamic binarization" "logistic-mixture  \[-1,1\]" "gaussian-learned  dequantized" "--debug-nan-at-step" "--resume"; do
  grep -q -- "$word" "$scratch/help.txt" || { echo "FAIL: --help does not mention '$word'"; exit 1; }
done
"$eval" --help | grep -q -- "--iwae-k" || { echo "FAIL: genvae-eval --help"; exit 1; }
# run directories
mkdir -p "$scratch/full" && echo x >"$scratch/full/notes.txt"
expect_error "exists and is not empty: pass --resume" --out "$scratch/full"
expect_error "holds no earlier run .* refusing to delete it" --out "$scratch/full" --force
[ -e "$scratch/full/notes.txt" ] || { echo "FAIL: --force deleted a folder that held no run"; exit 1; }
expect_error "no config.json there" --resume "$scratch/full"
mkdir -p "$scratch/run" && echo '{"latent": 4, "data": "mnist"}' >"$scratch/run/config.json"
expect_error "--latent cannot be changed with --resume" --resume "$scratch/run" --latent 8
expect_error "no checkpoint there yet" --resume "$scratch/run" --data-dir "$scratch/nowhere"
# a refused run leaves nothing behind: no folder for bad data, no deletion for --force
expect_error "found neither" --out "$scratch/new" --data-dir "$scratch/nowhere"
[ ! -e "$scratch/new" ] || { echo "FAIL: a refused run left $scratch/new behind"; exit 1; }
mkdir -p "$scratch/old" && echo '{}' >"$scratch/old/config.json"
expect_error "found neither" --out "$scratch/old" --force --data-dir "$scratch/nowhere"
[ -e "$scratch/old/config.json" ] || { echo "FAIL: --force deleted the old run although the new one was refused"; exit 1; }
# --config: unknown keys and wrong types are refused by name; values pass the flags' checks
echo '{"latent": 4, "latnet": 8}' >"$scratch/c1.json"
expect_error "c1.json: unknown key \"latnet\"" --config "$scratch/c1.json" --out "$scratch/c1"
echo '{"latent": "4"}' >"$scratch/c2.json"
expect_error "c2.json: key \"latent\" must be an integer, got \"4\" (string)" --config "$scratch/c2.json" --out "$scratch/c2"
echo '{"lr": -1}' >"$scratch/c3.json"
expect_error "c3.json: --lr: must be a finite number > 0, got -1" --config "$scratch/c3.json" --out "$scratch/c3"
echo '{"latent": 4' >"$scratch/c4.json"
expect_error "c4.json: not valid JSON" --config "$scratch/c4.json" --out "$scratch/c4"
expect_error "cannot read .*nothere.json" --config "$scratch/nothere.json" --out "$scratch/c5"
expect_error "--config and --resume cannot be combined" --config "$scratch/c1.json" --resume "$scratch/run"
for d in c1 c2 c3 c4 c5; do [ ! -e "$scratch/$d" ] || { echo "FAIL: a refused --config run left $d behind"; exit 1; }; done
echo "ok"
