#!/usr/bin/env bash
# test_pixelvae.sh TRAIN EVAL SAMPLE: the PixelVAE from the command line (--decoder pixelcnn), on the
# corpus's tiny MNIST (tests/inputs/good/mnist, so no shared data is needed): it trains, its sample
# PNGs are draws (a PixelCNN has no closed-form mean), genvae-eval reports finite figures and
# genvae-sample draws ancestral samples and a Markov chain.
set -uo pipefail
train=$1 eval=$2 sample=$3
source "$(dirname "$0")/common.sh"
good="$here/../inputs/good/mnist"
run_expect 0 "$train" --data mnist --data-dir "$good" --out "$scratch/run" --decoder pixelcnn --pixel-layers 2 \
  --pixel-channels 4 --pixel-first-kernel 5 --latent 2 --hidden 8 --hidden-layers 1 --batch 10 --epochs 2 \
  --figure-samples 4 --threads 2
$check files "$scratch/run" 2 || exit 1
[ ! -e "$scratch/run/samples/epoch-001-mean.png" ] || { echo "FAIL: a mean PNG for a decoder without a mean"; exit 1; }
python3 -c "
import json
c = json.load(open('$scratch/run/config.json'))
assert c['decoder'] == 'pixelcnn' and c['pixel-layers'] == 2, c
print('ok: config.json records the decoder')" || exit 1
run_expect 0 "$eval" "$scratch/run" --data-dir "$good" --iwae-k 2 --iwae-examples 4 --mi-examples 4 --threads 2
$check eval "$scratch/run/eval.json" 2 || exit 1
run_expect 0 "$sample" "$scratch/run" --data-dir "$good" --n 2 --steps 2 --keep 1 --nn-examples 4 --threads 2
[ -s "$scratch/run/samples-both.png" ] || { echo "FAIL: no sample PNG"; exit 1; }
echo "ok"
