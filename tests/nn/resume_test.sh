#!/usr/bin/env bash
# resume_test.sh DRIVER: exact resume across processes. 2N steps in one run must give the same
# checkpoint, bit for bit, as N steps, a save, and N more steps in a fresh process after loading.
# N = 7 stops mid-epoch (5 batches per epoch), so the data order position matters too.
set -euo pipefail
driver=$1
n=7
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

"$driver" --steps $((2 * n)) --out "$dir/a.safetensors"
"$driver" --steps $n --out "$dir/ckpt.safetensors"
"$driver" --resume "$dir/ckpt.safetensors" --steps $n --out "$dir/b.safetensors"
"$driver" --compare "$dir/a.safetensors" "$dir/b.safetensors"
# and the comparison can fail: the half-way checkpoint differs from the end
if "$driver" --compare "$dir/a.safetensors" "$dir/ckpt.safetensors"; then
  echo "FAIL: --compare found no difference between step $n and step $((2 * n))"
  exit 1
fi
echo "ok: resumed run is bit-identical"
