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
expect_error "--arch: foo not in {mlp,conv}" --arch foo
expect_error "--likelihood: poisson not in {bernoulli,gaussian,gaussian-learned,categorical256,logistic-mixture}" --likelihood poisson
expect_error "--regularizer: .*{none,kl,free-bits,mmd}" --regularizer l2
expect_error "--optimizer: .*{adam,adamax,sgd}" --optimizer rmsprop
expect_error "--data: unknown data set 'svhn'; allowed: mnist, fashion-mnist, cifar10, folder:PATH" --data svhn
expect_error "--lr: must be a number > 0, got -1" --lr=-1
expect_error "--lambda: must be a number >= 0" --lambda=-0.5
expect_error "--latent: " --latent 0
expect_error "--limit: must be an integer >= -1" --limit=-3
expect_error "--log-every: must be an integer >= 1" --log-every 0
"$train" --help >"$scratch/help.txt" || { echo "FAIL: --help"; exit 1; }
for word in "dynamic binarization" "logistic-mixture  \[-1,1\]" "gaussian-learned  dequantized" "--debug-nan-at-step" "--resume"; do
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
echo "ok"
