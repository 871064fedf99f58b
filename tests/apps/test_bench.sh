#!/usr/bin/env bash
# test_bench.sh BENCH: genvae-bench runs its workloads and the sampling table end to end (one step,
# one naive pass, no peer), so that a benchmark never rots unnoticed. It checks that the figures
# exist, are finite and positive, and that the report names the machine; it asserts no speed.
set -uo pipefail
bench=$1
source "$(dirname "$0")/common.sh"
run_expect 0 "$bench" --workloads W1,W3,W4 --steps 1 --warmup 0 --no-peer --no-gemm-table --sampling --naive-pixels 1 \
  --omp-wait-policy passive --json "$scratch/bench.json"
grep -q "^steal: " "$scratch/out.log" || { echo "FAIL: no steal line"; exit 1; }
grep -q "PixelCNN sampling" "$scratch/out.log" || { echo "FAIL: no sampling table"; exit 1; }
grep -q "PixelCNN++ sampling, 32x32x3" "$scratch/out.log" || { echo "FAIL: no PixelCNN++ sampling row"; exit 1; }
python3 -c "
import json, math
r = json.load(open('$scratch/bench.json'))
assert r['machine']['cpu'], r['machine']
steal = r['machine']['steal_percent']  # the hypervisor's share over the run, from /proc/stat
assert math.isfinite(steal) and 0 <= steal <= 100, steal
rows = {w['workload']: w for w in r['workloads']}
assert set(rows) == {'W1', 'W3', 'W4'}, rows.keys()
for name, w in rows.items():
    ms = w['genvae']['ms_per_step']
    assert math.isfinite(ms) and ms > 0, (name, w)
s = r['sampling']
assert [x['batch'] for x in s] == [1, 64, 16] and s[2]['model'] == 'pixelcnn++', s
for x in s:
    assert x['naive_pixels_timed'] == 1 and x['naive_s'] > 0 and x['cached_s'] > 0, x
print('ok: W1, W3, W4 and the sampling tables measured')" || exit 1
echo "ok"
