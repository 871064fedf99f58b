#!/usr/bin/env bash
# test_sample.sh TRAIN SAMPLE: genvae-sample on a tiny genvae-train run (1 epoch). Each mode writes
# valid PNGs whose size matches the grid for the given --n/--keep (MNIST's 28x28 cells are drawn 2x
# with 2 pixels of padding: (30 k + 2) * 2 pixels for k cells; the chain figure has one row per chain
# and K + 1 columns, the start and each kept step, under a top margin of 8 * 2 + 12 pixels for the
# step labels)
# and a JSON summary with finite numbers; the same --seed gives byte-identical PNGs, another seed
# different ones; bad input fails naming the flag. SKIP without MNIST.
set -uo pipefail
train=$1 sample=$2
source "$(dirname "$0")/common.sh"
need_mnist
run_expect 0 "$train" "${tiny[@]}" --epochs 1 --out "$scratch/run"
small=(--data-dir "$mnist" --nn-examples 30 --threads 2)

# check_outputs JSON MODE N [STEPS KEEP]: the files the summary lists, their sizes, its numbers
check_outputs() {
  python3 - "$here" "$@" <<'EOF'
import json, math, os, sys
sys.path.insert(0, sys.argv[1])
from check_run import check_png, fail
path, mode, n = sys.argv[2], sys.argv[3], int(sys.argv[4])
j = json.load(open(path))
def finite(v, where):
    if isinstance(v, float) and not math.isfinite(v): fail(f"{path}: {where} = {v}")
    if isinstance(v, dict): [finite(x, f"{where}.{k}") for k, x in v.items()]
    if isinstance(v, list): [finite(x, f"{where}[{i}]") for i, x in enumerate(v)]
finite(j, "")
cell = lambda k: (30 * k + 2) * 2
grid = (cell(min(8, n)), cell((n + 7) // 8))  # write_image_grid: 8 per row
stem = os.path.splitext(path)[0]
want = {}
if mode == "ancestral":
    want = {stem + ".png": grid, stem + "-draw.png": grid}
if mode in ("markov", "both"):
    steps, keep = int(sys.argv[5]), int(sys.argv[6])
    margin = 8 * 2 + 12
    want = {stem + ".png": (cell(keep + 1), cell(n) + margin), stem + "-final.png": grid}
    if j["kept_steps"] != [(i + 1) * steps // keep for i in range(keep)]: fail(f"kept_steps {j['kept_steps']}")
    if len(j["nn_distance_chain"]) != keep: fail("nn_distance_chain has the wrong length")
    if mode == "both":
        want[stem + "-ancestral.png"] = grid
        want[stem + "-ancestral-draw.png"] = grid
if mode != "markov" and not 0 <= j["nn_distance_ancestral"] <= 1: fail("nn_distance_ancestral out of [0, 1]")
if not 0 < j["nn_distance_test"] <= 1: fail("nn_distance_test out of (0, 1]")
if sorted(j["files"]) != sorted(list(want) + [path]): fail(f"files {j['files']}, expected {sorted(want)} and {path}")
for f, (w, h) in want.items():
    got = check_png(f)
    if got != (w, h): fail(f"{f}: {got[0]}x{got[1]}, expected {w}x{h}")
print(f"ok: {path}: {len(want)} PNGs of the expected size")
EOF
}

# both modes, default file names beside the run
run_expect 0 "$sample" "$scratch/run" "${small[@]}" --n 6 --steps 8 --keep 3 --seed 3
grep -q "wrote $scratch/run/samples-both.png" "$scratch/out.log" || { echo "FAIL: did not print what it wrote"; exit 1; }
check_outputs "$scratch/run/samples-both.json" both 6 8 3 || exit 1
# ancestral only, 10 samples in two rows, somewhere else
run_expect 0 "$sample" "$scratch/run/checkpoint.safetensors" "${small[@]}" --mode ancestral --n 10 --out "$scratch/a/anc.png"
check_outputs "$scratch/a/anc.json" ancestral 10 || exit 1
# markov from test images, means, every step kept (two-digit labels); twice with the same seed
for d in m1 m2; do
  run_expect 0 "$sample" "$scratch/run" "${small[@]}" --mode markov --start test --mean-chain --n 5 --steps 12 --keep 12 \
    --seed 7 --out "$scratch/$d/chain.png"
  check_outputs "$scratch/$d/chain.json" markov 5 12 12 || exit 1
done
for f in chain.png chain-final.png; do
  cmp -s "$scratch/m1/$f" "$scratch/m2/$f" || { echo "FAIL: $f differs between two runs with --seed 7"; exit 1; }
done
run_expect 0 "$sample" "$scratch/run" "${small[@]}" --mode markov --start test --mean-chain --n 5 --steps 12 --keep 12 \
  --seed 8 --out "$scratch/m3/chain.png"
cmp -s "$scratch/m1/chain.png" "$scratch/m3/chain.png" && { echo "FAIL: --seed 8 gave the same chains as --seed 7"; exit 1; }
echo "ok: same seed, same PNGs; another seed, others"

expect_error() {  # expect_error PATTERN ARGS...: genvae-sample ARGS must fail and print PATTERN
  local pattern=$1; shift
  if "$sample" "$@" >"$scratch/err.log" 2>&1; then echo "FAIL: accepted $*"; exit 1; fi
  grep -q -- "$pattern" "$scratch/err.log" || { cat "$scratch/err.log"; echo "FAIL: '$*' did not say '$pattern'"; exit 1; }
  echo "ok: $* -> $(grep -m1 -- "$pattern" "$scratch/err.log")"
}
expect_error "--keep: must be <= --steps (3), got 5" "$scratch/run" --steps 3 --keep 5
expect_error "--mode: foo not in {ancestral,markov,both}" "$scratch/run" --mode foo
expect_error "--start: " "$scratch/run" --start zeros
expect_error "--n: " "$scratch/run" --n 0
mkdir -p "$scratch/empty"
expect_error "genvae-sample: .*empty/checkpoint.safetensors: no checkpoint" "$scratch/empty"
"$sample" --help | grep -q -- "--mean-chain" || { echo "FAIL: --help does not mention --mean-chain"; exit 1; }
echo "ok"
