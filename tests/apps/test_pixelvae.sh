#!/usr/bin/env bash
# test_pixelvae.sh TRAIN EVAL SAMPLE COMPARE: the PixelVAE from the command line (--decoder pixelcnn), on the
# corpus's tiny MNIST (tests/inputs/good/mnist, so no shared data is needed): it trains, its sample
# PNGs are draws (a PixelCNN has no closed-form mean), genvae-eval reports finite figures and
# genvae-sample draws ancestral samples and a Markov chain. Then the CIFAR-10 PixelVAE's stack
# (--decoder pixelcnn++, logistic-mixture-rgb, --arch conv3, dropout) on the corpus's tiny colour
# folder at 8x8: bits per dimension in information.jsonl, test.jsonl and eval.json, samples on the
# 8-bit grid, and a resumed run (dropout's stream included) that matches an unbroken one.
set -uo pipefail
train=$1 eval=$2 sample=$3 compare=$4
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

folder="folder:$here/../inputs/good/folder"
pp=(--data "$folder" --image-size 8 --arch conv3 --decoder pixelcnn++ --likelihood logistic-mixture-rgb
    --components 2 --pixel-channels 4 --pixel-resolutions 2 --pixel-dropout 0.3 --latent 2 --sigma-floor 0.05
    --ema 0.9 --batch 2 --figure-samples 2 --mi-examples 2 --log-every 1 --checkpoint-every 1 --threads 2 --seed 3)
run_expect 0 "$train" "${pp[@]}" --epochs 2 --out "$scratch/pp"
run_expect 0 "$train" "${pp[@]}" --epochs 1 --out "$scratch/pp-resumed"
run_expect 0 "$train" --resume "$scratch/pp-resumed" --epochs 2
run_expect 0 "$eval" "$scratch/pp" --iwae-k 2 --iwae-examples 2 --mi-examples 2 --threads 2
run_expect 0 "$sample" "$scratch/pp" --n 1 --steps 2 --keep 1 --nn-examples 1 --threads 2
python3 -c "
import json
def lines(p): return [json.loads(l) for l in open(p)]
info = lines('$scratch/pp/information.jsonl')
assert len(info) == 2 and all(0 < l['nll_bits_per_dim'] < 16 for l in info), info
import math
for l in info: assert abs(l['nll_bits_per_dim'] - l['nll_per_pixel'] / math.log(2)) < 1e-9, l
test = lines('$scratch/pp/test.jsonl')
assert all(t['test_elbo_bits_per_dim'] > 0 for t in test), test
e = json.load(open('$scratch/pp/eval.json'))
assert 0 < e['iwae_bits_per_dim'] <= e['elbo_bits_per_dim'] + 1e-9, e  # the IWAE bound is the tighter one
a = lines('$scratch/pp/metrics.jsonl'); b = lines('$scratch/pp-resumed/metrics.jsonl')
assert [m['loss'] for m in a] == [m['loss'] for m in b], (a, b)  # dropout and the average resumed exactly
ia = lines('$scratch/pp-resumed/information.jsonl')
assert [l['kl'] for l in info] == [l['kl'] for l in ia], (info, ia)  # measured with the resumed average
c = json.load(open('$scratch/pp/config.json'))
assert c['decoder'] == 'pixelcnn++' and c['pixel-dropout'] == 0.3 and c['likelihood'] == 'logistic-mixture-rgb', c
print('ok: bits per dimension logged; the resumed run matches the unbroken one')" || exit 1
[ -s "$scratch/pp/samples-both.png" ] || { echo "FAIL: no PixelCNN++ sample PNG"; exit 1; }
# genvae-compare plots the NLL in bits per dimension when every run's family is discrete
run_expect 0 "$compare" "$scratch/pp" "$scratch/pp-resumed" --out "$scratch/cmp/pp.png"
grep -q "bits/dim" "$scratch/cmp/pp.md" || { echo "FAIL: no bits/dim in the comparison"; exit 1; }
[ -s "$scratch/cmp/pp.png" ] || { echo "FAIL: no comparison PNG"; exit 1; }
echo "ok"
