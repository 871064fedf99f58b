#!/usr/bin/env bash
# test_sample_quality.sh CLASSIFIER TRAIN EVAL SAMPLE COMPARE: on the corpus's tiny MNIST (20
# images; no shared data needed) genvae-classifier trains and writes its files, refusing to
# overwrite without --force; genvae-sample --classifier scores the test images, the ancestral draws
# and the chains' final states with it (counts that add up, confidences in (0, 1], entropies within
# [0, log 10]); genvae-compare puts two runs side by side (PNG, table, JSON with the IWAE bound and
# the quality figures where they exist). The 99% accuracy of the full classifier is measured by the
# README's command, not here.
set -uo pipefail
classifier=$1 train=$2 eval=$3 sample=$4 compare=$5
source "$(dirname "$0")/common.sh"
good="$here/../inputs/good/mnist"
run_expect 0 "$classifier" --data-dir "$good" --out "$scratch/cls" --epochs 2 --batch 5 --threads 2
[ -s "$scratch/cls/classifier.safetensors" ] || { echo "FAIL: no classifier.safetensors"; exit 1; }
python3 -c "
import json, math
j = json.load(open('$scratch/cls/classifier.json'))
assert 0 <= j['test_accuracy_binary'] <= 1 and 0 <= j['test_accuracy_grey'] <= 1, j
assert j['target_99_met'] == (j['test_accuracy_grey'] >= 0.99), j
r = j['real_test_digits']
assert sum(r['histogram']) == r['n'] == j['test_images'], r
print('ok: classifier.json')" || exit 1
run_expect 1 "$classifier" --data-dir "$good" --out "$scratch/cls" --epochs 1
grep -q "exists; use --force" "$scratch/out.log" || { echo "FAIL: overwrote without --force"; exit 1; }

run_expect 0 "$train" --data mnist --data-dir "$good" --out "$scratch/run" --latent 2 --hidden 8 --hidden-layers 1 \
  --batch 10 --epochs 1 --threads 2
run_expect 0 "$sample" "$scratch/run" --data-dir "$good" --n 6 --show 4 --steps 2 --keep 1 --nn-examples 4 \
  --classifier "$scratch/cls" --threads 2
python3 -c "
import json, math
q = json.load(open('$scratch/run/samples-both.json'))['quality']
for k in ('test', 'ancestral', 'chain_final'):
    s = q[k]
    assert s['n'] == 6 and sum(s['histogram']) == 6 and len(s['histogram']) == 10, (k, s)
    assert 0.1 <= s['mean_confidence'] <= 1, (k, s)
    assert 0 <= s['label_entropy'] <= math.log(10) + 1e-12, (k, s)
print('ok: sample quality of the test images, the ancestral draws and the chains')" || exit 1
grep -q "classifier: mean top-class confidence" "$scratch/out.log" || { echo "FAIL: no quality summary"; exit 1; }
run_expect 1 "$sample" "$scratch/run" --data-dir "$good" --n 6 --steps 2 --keep 1 --nn-examples 4 \
  --classifier "$scratch/nowhere" --threads 2
grep -q "no classifier at" "$scratch/out.log" || { echo "FAIL: a missing classifier is not named"; exit 1; }
[ ! -e "$scratch/run/samples-both.json.tmp" ] || { echo "FAIL: a temporary file left behind"; exit 1; }

# side by side: the run above (with an IWAE bound and sample quality) and an R = 0 run (without)
run_expect 0 "$eval" "$scratch/run" --data-dir "$good" --iwae-k 2 --iwae-examples 4 --mi-examples 4 --threads 2
run_expect 0 "$train" --data mnist --data-dir "$good" --out "$scratch/r0" --latent 2 --hidden 8 --hidden-layers 1 \
  --batch 10 --epochs 2 --regularizer none --threads 2
run_expect 0 "$compare" "$scratch/run" "$scratch/r0" --out "$scratch/cmp/fig5.png"
python3 - "$here" "$scratch" <<'PY' || exit 1
import json, math, sys
sys.path.insert(0, sys.argv[1])
from check_run import check_png
s = sys.argv[2]
w, h = check_png(f"{s}/cmp/fig5.png")
assert w > h > 0, (w, h)
rows = json.load(open(f"{s}/cmp/fig5.json"))["runs"]
assert [r["label"] for r in rows] == ["ELBO", "R = 0"], rows
assert math.isfinite(rows[0]["test_nll_iwae"]) and rows[0]["iwae_k"] == 2 and "quality" in rows[0], rows[0]
assert "test_nll_iwae" not in rows[1] and "quality" not in rows[1] and rows[1]["step"] == 4, rows[1]
md = open(f"{s}/cmp/fig5.md").read().splitlines()
assert md[0].startswith("| run |") and len([l for l in md if l.startswith(f"| {s}")]) == 2, md
print("ok: genvae-compare wrote the PNG, the table and the JSON")
PY
run_expect 1 "$compare" "$scratch/run" "$scratch/nowhere" --out "$scratch/cmp2/x.png"
grep -q "config.json" "$scratch/out.log" || { echo "FAIL: a missing run is not named"; exit 1; }
run_expect 105 "$compare" "$scratch/run" --labels a,b --out "$scratch/cmp2/x.png"  # CLI11's validation error
grep -q -- "--labels: needs one name per run (1), got 2" "$scratch/out.log" || { echo "FAIL: --labels not named"; exit 1; }
echo "ok"
