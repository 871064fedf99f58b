#!/usr/bin/env bash
# test_mnist_mlp.sh BINARY: the main job end to end on 5,000 training digits for 2 epochs.
# Passes when the run succeeds, the mean training loss falls from epoch 1 to epoch 2, and the test
# accuracy after epoch 2 is at least 88%. SKIP (77) when the MNIST files are not found.
set -uo pipefail
bin=$1
dir=${GENVAE_MNIST_DIR:-$(dirname "$0")/../../../shared/data/mnist}
if [ ! -e "$dir/t10k-labels-idx1-ubyte.gz" ] && [ ! -e "$dir/t10k-labels-idx1-ubyte" ]; then
  echo "SKIP: no MNIST files in $dir (set GENVAE_MNIST_DIR)"; exit 77
fi
out=$("$bin" --data "$dir" --epochs 2 --limit 5000 --seed 3 2>&1) || { echo "$out"; echo "FAIL: the job exited non-zero"; exit 1; }
echo "$out"
python3 - "$out" <<'PY'
import re, sys
rows = re.findall(r"epoch (\d+): mean training loss ([0-9.]+) .*test accuracy ([0-9.]+)%", sys.argv[1])
assert len(rows) == 2, f"expected 2 epoch lines, got {rows}"
(l1, a1), (l2, a2) = [(float(r[1]), float(r[2])) for r in rows]
assert l2 < l1, f"training loss did not fall: {l1} -> {l2}"
assert a2 >= 88.0, f"test accuracy {a2}% is below 88%"
print(f"ok: loss {l1:.4f} -> {l2:.4f}, test accuracy {a2:.2f}%")
PY
