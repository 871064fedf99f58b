#!/usr/bin/env bash
# gpu-check.sh: runs on a GPU machine what scripts/gpu-prepare.sh prepared (gpu-kit/): unpacks its
# Debian packages into a scratch prefix, finds cuBLAS (the CUDA toolkit's, or PyTorch's
# nvidia-cublas), and runs the CUDA parity tests (tests/cuda/test_cuda.cpp: every backend kernel
# against the CPU, the Philox bits, the fused optimizer steps). Logs go to $OUT (or gpu-logs/).
# Meant to finish well within 8 minutes.
set -uo pipefail
cd "$(dirname "$0")/.."
kit=gpu-kit
out=${OUT:-gpu-logs}
mkdir -p "$out"
prefix=/tmp/genvae-prefix
mkdir -p "$prefix"
for f in "$kit"/debs/*.deb; do dpkg -x "$f" "$prefix"; done
libs=$(find "$prefix" -name '*.so*' -printf '%h\n' | sort -u | tr '\n' ':')
cublas=$(python3 - <<'PY' 2>/dev/null
import glob, os
try:
    import nvidia.cublas, os.path as p
    print(os.path.join(list(nvidia.cublas.__path__)[0], "lib"))
except Exception:
    print("")
PY
)
for d in /usr/local/cuda/lib64 /usr/local/cuda/lib; do [ -e "$d/libcublas.so.13" ] && cublas="$d:$cublas"; done
export LD_LIBRARY_PATH="$libs$cublas:${LD_LIBRARY_PATH:-}"
{
  date -u
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1
  echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
  ldd "$kit/bin/test_cuda" | grep -E "not found|cublas|fmt|openblas"
} > "$out/env.txt" 2>&1
status=0
timeout 300 "$kit/bin/test_cuda" > "$out/test_cuda.log" 2>&1 || status=$?
echo "test_cuda exit $status" | tee -a "$out/env.txt"
tail -3 "$out/test_cuda.log"
exit $status
