#!/usr/bin/env bash
# test_fig2.sh TRAIN FIG2: genvae-fig2 on a tiny conv VAE with a 2-D latent code and the Gaussian
# likelihood (100 digits, batches of 10, 1 epoch: 10 steps, small enough for the debug ASan build).
# Checks: a valid PNG of the expected height (56 + G * 28 * zoom + 60 pixels) and width; a JSON
# report with G x G cells of finite numbers, ESS in [1, N], "used" exactly when ESS >= --min-ess,
# expected error = variance + ||g - m||^2 (Prop. 4's identity), the summary's cell count and finite
# summary numbers; --out puts both files elsewhere; a run with --latent 4 is refused with a message
# naming the latent size; bad flags and a missing run fail. SKIP without MNIST.
set -uo pipefail
train=$1 fig2=$2
source "$(dirname "$0")/common.sh"
need_mnist
run_expect 0 "$train" --data mnist --data-dir "$mnist" --arch conv --latent 2 --likelihood gaussian --sigma 0.7071 \
  --limit 100 --test-limit 20 --batch 10 --epochs 1 --log-every 5 --threads 2 --seed 3 --out "$scratch/run"

# check_report JSON PNG GRID N MIN_ESS ZOOM
check_report() {
  python3 - "$here" "$@" <<'PYEOF'
import json, math, sys
sys.path.insert(0, sys.argv[1])
from check_run import check_png, fail
path, png, grid, n, min_ess, zoom = sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6]), int(sys.argv[7])
j = json.load(open(path))
w, h = check_png(png)
if h != 56 + grid * 28 * zoom + 60 or w < 60 + grid * 28 * zoom: fail(f"{png}: {w}x{h} does not fit a {grid}x{grid} grid")
if j["grid"] != grid or j["data_examples"] != n: fail(f"grid {j['grid']} / examples {j['data_examples']}")
cells = j["cells"]
if len(cells) != grid * grid: fail(f"{len(cells)} cells, expected {grid * grid}")
(x0, x1), (y0, y1) = j["range"]
if not (x0 < x1 and y0 < y1): fail(f"bad range {j['range']}")
keys = ("variance", "ess", "log_qz", "blur", "sharpness", "ink", "dist_g_posterior_mean", "dist_g_data_mean", "expected_error")
used = 0
for i, c in enumerate(cells):
    for k in keys:
        v = c[k]
        if not isinstance(v, (int, float)) or not math.isfinite(v): fail(f"cell {i}: {k} = {v}")
    z1, z2 = c["z"]
    if not (x0 < z1 < x1 and y0 < z2 < y1): fail(f"cell {i}: z {c['z']} outside the range")
    if c["variance"] < 0 or not (1 - 1e-9 <= c["ess"] <= n + 1e-6): fail(f"cell {i}: variance {c['variance']}, ess {c['ess']}")
    if not 0 <= c["blur"] <= 1: fail(f"cell {i}: blur {c['blur']}")
    if abs(c["expected_error"] - c["variance"] - c["dist_g_posterior_mean"]) > 1e-6 * (1 + c["expected_error"]):
        fail(f"cell {i}: expected error is not variance + ||g - m||^2")
    if c["used"] != (c["ess"] >= min_ess): fail(f"cell {i}: used {c['used']} with ess {c['ess']}")
    used += c["used"]
s = j["summary"]
if s["cells_used"] != used or s["cells"] != grid * grid: fail(f"summary counts {s['cells_used']}/{s['cells']}, cells say {used}")
if used >= 3:
    for k in ("pearson_variance_blur", "spearman_variance_blur", "mean_variance", "mean_dist_g_posterior_mean",
              "mean_dist_g_data_mean", "mean_expected_error"):
        if not isinstance(s[k], float) or not math.isfinite(s[k]): fail(f"summary {k} = {s[k]}")
    if not -1 <= s["pearson_variance_blur"] <= 1: fail("correlation outside [-1, 1]")
print(f"ok: {png} {w}x{h}, {len(cells)} cells, {used} used")
PYEOF
}

run_expect 0 "$fig2" "$scratch/run" --grid 4 --min-ess 2 --batch 50 --threads 2
grep -q "corr(variance, blur" "$scratch/out.log" || { echo "FAIL: no summary table on stdout"; exit 1; }
check_report "$scratch/run/fig2.json" "$scratch/run/fig2.png" 4 100 2 1 || exit 1
# --out elsewhere, a fixed range, fewer examples, zoom 2
run_expect 0 "$fig2" "$scratch/run/checkpoint.safetensors" --grid 3 --range 2 --examples 50 --zoom 2 --min-ess 1.5 \
  --out "$scratch/other/f.png" --threads 2
check_report "$scratch/other/f.json" "$scratch/other/f.png" 3 50 1.5 2 || exit 1
python3 -c "import json,sys; r=json.load(open(sys.argv[1]))['range']; sys.exit(r != [[-2, 2], [-2, 2]])" \
  "$scratch/other/f.json" || { echo "FAIL: --range 2 not used"; exit 1; }

# a model with a 4-dimensional latent code is refused, naming its latent size
run_expect 0 "$train" "${tiny[@]}" --arch mlp --epochs 1 --out "$scratch/z4"
run_expect 1 "$fig2" "$scratch/z4" --grid 3 --threads 2
grep -q "genvae-fig2: .*4-dimensional latent code.*needs --latent 2" "$scratch/out.log" \
  || { echo "FAIL: no message refusing latent 4"; exit 1; }
[ ! -e "$scratch/z4/fig2.png" ] || { echo "FAIL: wrote a figure for latent 4"; exit 1; }
# bad flags and a missing run
"$fig2" "$scratch/run" --grid 1 >"$scratch/out.log" 2>&1 && { echo "FAIL: --grid 1 accepted"; exit 1; }
grep -q -- "--grid" "$scratch/out.log" || { cat "$scratch/out.log"; echo "FAIL: --grid error does not name the flag"; exit 1; }
run_expect 1 "$fig2" "$scratch/none"
grep -q "genvae-fig2: .*no checkpoint" "$scratch/out.log" || { echo "FAIL: missing run not reported"; exit 1; }
echo "ok"
