#!/usr/bin/env bash
# dist_test.sh DRIVER mpi|none: data-parallel training on loopback, through tests/nn/dist_driver.
#  * 1 rank on the whole batch against 2 ranks on half-batches (and 3 on thirds): the first batch's per-example
#    losses are the same bits (the forward pass does not depend on how the batch is split), the
#    loss curve and the weights after 20 steps agree to the tolerance below;
#  * 2 ranks with the reduction overlapped with backward, without, and with buckets so small that
#    every parameter is its own: the same weights bit for bit (each element's sum over the ranks is
#    the same addition however the gradients are bucketed and whenever they travel).
set -euo pipefail
driver=$1 mpi=$2
if [ "$mpi" != mpi ]; then echo "SKIP: this build has no MPI (meson -Dmpi)"; exit 77; fi
command -v mpirun >/dev/null || { echo "SKIP: no mpirun (apt-get install openmpi-bin)"; exit 77; }
source "$(dirname "$0")/../mpi_env.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
steps=20
"$driver" --steps $steps --out "$tmp/one.txt"
mpirun_local 2 "$driver" --steps $steps --out "$tmp/two.txt"
mpirun_local 2 "$driver" --steps $steps --out "$tmp/two-serial.txt" --overlap 0
mpirun_local 2 "$driver" --steps $steps --out "$tmp/two-small.txt" --bucket-bytes 64
mpirun_local 3 "$driver" --steps $steps --out "$tmp/three.txt"
python3 - "$tmp" <<'PY'
import sys
d = sys.argv[1]
def read(name):
    out = {}
    for line in open(f"{d}/{name}"):
        k, *v = line.split()
        out[k] = v
    return out
one, two, serial, small, three = (read(n) for n in ("one.txt", "two.txt", "two-serial.txt", "two-small.txt", "three.txt"))
assert one["world"] == ["1"] and two["world"] == ["2"], (one["world"], two["world"])
assert int(small["buckets"][0]) > int(two["buckets"][0]), (small["buckets"], two["buckets"])
# the overlap did overlap: buckets started during backward, and none without it
assert int(small["started_early"][0]) > 0 and int(two["started_early"][0]) > 0, (small["started_early"], two["started_early"])
assert serial["started_early"] == ["0"], serial["started_early"]
# the forward pass: bit for bit
assert one["first_losses"] == two["first_losses"] == three["first_losses"], \
    "the first batch's per-example losses differ in their bits"
# Tolerance: 1 rank sums 24 examples' gradients in one GEMM and scales by 1/24; 2 ranks sum 12
# each, scale by 1/12 and average. Both are float64 (eps 2.2e-16): the orders differ by about
# 24 eps = 5e-15 relative per step, and 20 steps of SGD with momentum carry and add those up.
# 1e-12 is 200 times that per-step rounding; a wrong reduction (a sum, not a mean; a rank's
# slice lost) is off by 1e-3 or more.
TOL = 1e-12
def close(a, b, what):
    a, b = [float(x) for x in a[1:]], [float(x) for x in b[1:]]
    assert len(a) == len(b) and a, (what, len(a), len(b))
    worst = max(abs(x - y) / max(1.0, abs(x)) for x, y in zip(a, b))
    assert worst <= TOL, f"{what}: differ by {worst:.3g} > {TOL}"
    return worst
wl = close(one["loss"], two["loss"], "loss curve")
ww = close(one["weights"], two["weights"], "weights")
close(one["loss"], three["loss"], "loss curve of 3 ranks")
w3 = close(one["weights"], three["weights"], "weights of 3 ranks")
for other, name in ((serial, "without overlap"), (small, "with one bucket per parameter")):
    assert other["weights"] == two["weights"], f"2 ranks {name}: the weights differ from the overlapped run's"
    assert other["loss"] == two["loss"], f"2 ranks {name}: the loss curve differs"
print(f"1 rank vs 2 ranks over {len(one['loss'])-1} steps: losses within {wl:.2g}, weights within {ww:.2g} "
      f"(tolerance {TOL}); 3 ranks: weights within {w3:.2g}; overlap, no overlap and {small['buckets'][0]} buckets: the same bits")
PY
