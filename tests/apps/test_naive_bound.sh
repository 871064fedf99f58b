#!/usr/bin/env bash
# test_naive_bound.sh NAIVE: a tiny genvae-naive-bound run (section 2.2: the naive bound vs the ELBO
# on the same decoder), then its folder: samples.png and curves.png valid PNGs, metrics.jsonl lines
# and result.json with finite numbers, the paper's claim already visible (the naive decoder's g(z)
# spread far below the ELBO decoder's, its naive bound at most the closed-form optimum and near it),
# the table on stdout, --force, and a bad flag named in the error. SKIP without MNIST.
set -uo pipefail
naive=$1
source "$(dirname "$0")/common.sh"

# expect_fail PATTERN ARGS...: the program refuses ARGS and says PATTERN
expect_fail() {
  local pattern=$1; shift
  if "$naive" "$@" >"$scratch/err.log" 2>&1; then echo "FAIL: accepted $*"; exit 1; fi
  grep -q -- "$pattern" "$scratch/err.log" || { cat "$scratch/err.log"; echo "FAIL: '$*' did not say '$pattern'"; exit 1; }
}
# bad flags are refused before any data is read, naming the flag
expect_fail "--lr" --lr -1
expect_fail "--epochs" --epochs 0
expect_fail "--no-such-flag" --no-such-flag
run_expect 0 "$naive" --help
grep -q "naive bound" "$scratch/out.log" || { echo "FAIL: --help does not describe the experiment"; exit 1; }

need_mnist
# 500 digits, batches of 50, 20 epochs: 200 steps of each variant; a small MLP with a lr high enough
# for the naive decoder to collapse within them
small=(--data-dir "$mnist" --limit 500 --test-limit 100 --batch 50 --epochs 20 --hidden 32 --latent 4
       --lr 1e-2 --log-every 20 --spread-samples 200 --threads 2 --seed 5)
run_expect 0 "$naive" "${small[@]}" --out "$scratch/run"
grep -q "spread of g(z)" "$scratch/out.log" || { echo "FAIL: no table on stdout"; exit 1; }

python3 - "$scratch/run" "$(dirname "$0")" <<'EOF' || exit 1
import json, math, os, sys
run, here = sys.argv[1], sys.argv[2]
sys.path.insert(0, here)
from check_run import check_png, fail

w, h = check_png(os.path.join(run, "samples.png"))
if w < 900 or h < 400:
    fail(f"samples.png is {w}x{h}, too small for two 8x8 grids of 28x28 digits at 2x")
check_png(os.path.join(run, "curves.png"))
json.load(open(os.path.join(run, "config.json")))

rows = [json.loads(l) for l in open(os.path.join(run, "metrics.jsonl"))]
if len(rows) < 8 or rows[0]["step"] != 0 or rows[-1]["step"] != 200:
    fail(f"metrics.jsonl: {len(rows)} rows, steps {rows[0]['step']}..{rows[-1]['step']}, expected 0..200")
# both variants start from the same weights: the same spread at step 0
if rows[0]["naive_spread"] != rows[0]["elbo_spread"]:
    fail(f"step 0 spreads differ: {rows[0]['naive_spread']} vs {rows[0]['elbo_spread']}")

r = json.load(open(os.path.join(run, "result.json")))
def numbers(x, path="result"):
    if isinstance(x, dict):
        for k, v in x.items(): yield from numbers(v, f"{path}.{k}")
    elif isinstance(x, (int, float)) and not isinstance(x, bool):
        yield path, x
for path, v in numbers(r):
    if not math.isfinite(v):
        fail(f"{path} = {v}")
a, b, d = r["naive"], r["elbo"], r["data"]
print(f"spread naive {a['spread']:.3g} elbo {b['spread']:.3g}; naive bound {a['naive_bound']:.3f} "
      f"(optimum {d['naive_bound_optimum']:.3f}), elbo's {b['naive_bound']:.3f}")
if r["steps"] != 200 or r["train_examples"] != 500:
    fail(f"steps {r['steps']}, train_examples {r['train_examples']}")
# the claim: the naive decoder ignores z, the ELBO decoder does not
if not a["spread"] * 20 < b["spread"]:
    fail(f"naive spread {a['spread']} is not far below the ELBO's {b['spread']}")
if not a["distance_to_data_mean"] < b["distance_to_data_mean"] / 2:
    fail(f"naive distance to m {a['distance_to_data_mean']} not below half the ELBO's {b['distance_to_data_mean']}")
# the optimum: 784 pixels' Bernoulli entropies, -sum_j H(m_j) < 0; no decoder exceeds it, (a) nears it
opt = d["naive_bound_optimum"]
if not -784 * math.log(2) < opt < 0:
    fail(f"optimum {opt} out of range")
if not a["naive_bound"] <= opt + 0.5:
    fail(f"naive bound {a['naive_bound']} above the optimum {opt}")
if not a["naive_bound"] > opt - 0.1 * abs(opt):
    fail(f"naive bound {a['naive_bound']} not within 10% of the optimum {opt}")
if not b["naive_bound"] < a["naive_bound"]:
    fail(f"the ELBO decoder's naive bound {b['naive_bound']} is not below the naive decoder's {a['naive_bound']}")
if abs(a["gap_to_optimum"] - (opt - a["naive_bound"])) > 1e-9 * abs(opt):
    fail("gap_to_optimum is not optimum - naive_bound")
EOF

# an existing folder is refused without --force, and replaced with it
run_expect 1 "$naive" "${small[@]}" --epochs 1 --out "$scratch/run"
grep -q "^genvae-naive-bound: .*--force" "$scratch/out.log" || { echo "FAIL: no error naming --force"; exit 1; }
run_expect 0 "$naive" "${small[@]}" --epochs 1 --out "$scratch/run" --force
[ "$(wc -l < "$scratch/run/metrics.jsonl")" -le 3 ] || { echo "FAIL: --force kept the old metrics"; exit 1; }
# a missing data folder is an error naming it
run_expect 1 "$naive" --data-dir "$scratch/nowhere" --out "$scratch/run2"
grep -q "^genvae-naive-bound: .*nowhere" "$scratch/out.log" || { echo "FAIL: no error naming the data folder"; exit 1; }
[ ! -e "$scratch/run2" ] || { echo "FAIL: a failed start left an output folder"; exit 1; }
echo "ok"
