#!/usr/bin/env bash
# test_seqvae.sh SEQVAE: genvae-seqvae from the command line, on the corpus's tiny MNIST and image
# folder (tests/inputs/good, so no shared data is needed): the three models train and write their
# figures; steps.json has one finite row per step, and the posterior variance only where there is a
# density (not for infusion); a resumed run gives the same numbers as one run straight through;
# compare writes its PNG, table and JSON; bad flags are refused with the flag named.
set -uo pipefail
seqvae=$1
source "$(dirname "$0")/common.sh"
good="$here/../inputs/good"
small=(--data mnist --data-dir "$good/mnist" --batch 5 --steps 3 --latent 2 --channels1 4 --channels2 8
       --log-every 1 --figure-samples 3 --eval-examples 10 --posterior-examples 10 --posterior-points 8 --threads 2)
for m in sequential onestep infusion; do
  run_expect 0 "$seqvae" train "${small[@]}" --model "$m" --epochs 2 --out "$scratch/$m"
  for f in config.json metrics.jsonl checkpoint.safetensors samples.png reconstructions.png steps.json steps.png; do
    [ -s "$scratch/$m/$f" ] || { echo "FAIL: $m: no $f"; exit 1; }
  done
done
python3 - "$scratch" <<'PY' || exit 1
import json, math, struct, sys, zlib
s = sys.argv[1]
def png_size(p):
    b = open(p, 'rb').read(24)
    assert b[:8] == b'\x89PNG\r\n\x1a\n', p
    return struct.unpack('>II', b[16:24])
for m, T in (('sequential', 3), ('onestep', 1), ('infusion', 3)):
    r = json.load(open(f'{s}/{m}/steps.json'))
    assert len(r['steps']) == T, (m, r['steps'])
    for row in r['steps']:
        for k in ('recon_mse_per_pixel', 'sample_sharpness', 'sharpness_ratio', 'recon_sharpness_ratio'):
            assert math.isfinite(row[k]) and row[k] >= 0, (m, k, row)
        assert ('posterior_variance' in row) == (m != 'infusion'), (m, row)
    assert (r['proposition5'] is None) == (m == 'infusion'), (m, r['proposition5'])
    lines = [json.loads(l) for l in open(f'{s}/{m}/metrics.jsonl')]
    assert len(lines) == 8 and len(lines[0]['steps']) == T, (m, len(lines))  # 20 images / 5 x 2 epochs
    # samples.png: 3 rows, T columns (sequential), reconstructions: T + 1 columns
    ws, hs = png_size(f'{s}/{m}/samples.png')
    wr, hr = png_size(f'{s}/{m}/reconstructions.png')
    assert hs == hr and abs(wr / ws - (T + 1) / T) < 0.1, (m, ws, hs, wr, hr)
print('ok: three models, their figures and steps.json')
PY
# resume: 1 epoch, then --resume --epochs 2, against the 2-epoch run straight through
run_expect 0 "$seqvae" train "${small[@]}" --model sequential --epochs 1 --out "$scratch/part"
run_expect 0 "$seqvae" train --resume "$scratch/part" --epochs 2
python3 - "$scratch" <<'PY' || exit 1
import json, sys
s = sys.argv[1]
def strip(rows):
    return [{k: v for k, v in r.items() if k != 'time'} for r in rows]
a = strip(json.loads(l) for l in open(f'{s}/part/metrics.jsonl'))
b = strip(json.loads(l) for l in open(f'{s}/sequential/metrics.jsonl'))
assert a == b, 'resumed metrics differ from the straight run'
ra, rb = json.load(open(f'{s}/part/steps.json')), json.load(open(f'{s}/sequential/steps.json'))
assert ra['steps'] == rb['steps'], (ra['steps'], rb['steps'])
print('ok: the resumed run equals the straight one, bit for bit in every logged figure')
PY
run_expect 0 "$seqvae" compare "$scratch/sequential" "$scratch/onestep" "$scratch/infusion" --labels "a,b,c" \
  --out "$scratch/cmp/fig4.png"
for f in fig4.png fig4.md fig4.json; do [ -s "$scratch/cmp/$f" ] || { echo "FAIL: compare wrote no $f"; exit 1; }; done
grep -q "| c | 2 |" "$scratch/cmp/fig4.md" || { echo "FAIL: the table lacks infusion's step 2"; exit 1; }
grep -q "n/a (no density)" "$scratch/cmp/fig4.md" || { echo "FAIL: infusion's posterior variance not marked n/a"; exit 1; }
# a folder of images at 32x32
run_expect 0 "$seqvae" train --data "folder:$good/folder" --image-size 32 --batch 2 --steps 2 --latent 2 \
  --channels1 4 --channels2 4 --epochs 1 --eval-examples 2 --posterior-examples 2 --posterior-points 4 \
  --figure-samples 2 --threads 2 --out "$scratch/folder"
[ -s "$scratch/folder/steps.json" ] || { echo "FAIL: the folder run wrote no steps.json"; exit 1; }
run_expect 0 "$seqvae" train --data "folder:$good/folder" --image-size 64 --batch 2 --steps 2 --latent 2 \
  --channels1 4 --channels2 4 --epochs 1 --eval-examples 2 --posterior-examples 2 --posterior-points 4 \
  --figure-samples 2 --threads 2 --out "$scratch/folder64"
python3 -c "
import json
c = json.load(open('$scratch/folder64/config.json'))
assert c['data-shape'] == [3, 64, 64], c['data-shape']
print('ok: a folder at 64x64')" || exit 1
# refusals
expect_refusal() {
  local want=$1; shift
  "$seqvae" "$@" >"$scratch/err.log" 2>&1
  local rc=$?
  if [ "$rc" = 0 ] || ! grep -qF -- "$want" "$scratch/err.log"; then
    cat "$scratch/err.log"; echo "FAIL: expected a refusal naming '$want' (exit $rc): $*"; exit 1
  fi
}
expect_refusal "--gate" train --gate soft --out "$scratch/x"
expect_refusal "--image-size" train --image-size 48 --out "$scratch/x"
expect_refusal "--latent cannot be changed on --resume" train --resume "$scratch/part" --latent 5
# --resume at the epochs done trains nothing and evaluates again, here with more posterior points
run_expect 0 "$seqvae" train --resume "$scratch/part" --epochs 2 --posterior-points 12
python3 -c "
import json
r = json.load(open('$scratch/part/steps.json'))
assert r['proposition5']['points'] == 12 and r['train_steps'] == 8, r['proposition5']
print('ok: a finished run evaluated again')" || exit 1
# a stored configuration passes the flags' checks again: a bad value and an unknown key are refused
cp -r "$scratch/part" "$scratch/edited"
python3 -c "
import json, sys
p = sys.argv[1] + '/config.json'
c = json.load(open(p)); c['steps'] = 0; json.dump(c, open(p, 'w'))" "$scratch/edited"
expect_refusal "--steps" train --resume "$scratch/edited" --epochs 3
python3 -c "
import json, sys
p = sys.argv[1] + '/config.json'
c = json.load(open(p)); c['steps'] = 3; c['colour'] = 'red'; json.dump(c, open(p, 'w'))" "$scratch/edited"
expect_refusal "colour" train --resume "$scratch/edited" --epochs 3
expect_refusal "exists and is not empty" train "${small[@]}" --out "$scratch/part"
expect_refusal "no steps.json" compare "$scratch/x-none" --out "$scratch/y.png"
[ ! -e "$scratch/x" ] || { echo "FAIL: a refused run left a folder"; exit 1; }
echo "ok"
