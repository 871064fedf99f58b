#!/usr/bin/env bash
# gpu-check.sh: runs on a GPU machine what scripts/gpu-prepare.sh prepared (gpu-kit/): unpacks its
# Debian packages into a scratch prefix, finds cuBLAS and cuDNN (PyTorch's nvidia-* wheels, or the
# CUDA toolkit's), and runs, each with its own time limit (at most 435 s in all):
#   1. the CUDA parity tests (tests/cuda/test_cuda.cpp: every backend kernel against the CPU, the
#      Philox bits, the fused optimizer steps, a 1-rank NCCL group: Open MPI comes from the kit's
#      debs, NCCL from the machine's nvidia-nccl wheel, too large to carry);
#   2. one short epoch of W1 (the MLP VAE) and of W2 (the conv VAE) with genvae-train --device cuda
#      on the carried MNIST;
#   3. genvae-bench --device cuda (W1-W4) beside PyTorch's CUDA (the machine's python3 with torch).
# Logs go to $OUT (or gpu-logs/): eight files (a device run returns at most eight); the exit status
# is the first failure's. On the device tool: run with carry ["gpu-kit"], command
# "bash scripts/gpu-check.sh", timeout_s 480.
set -uo pipefail
cd "$(dirname "$0")/.."
kit=gpu-kit
out=${OUT:-gpu-logs}
mkdir -p "$out"
prefix=/tmp/genvae-prefix
mkdir -p "$prefix"
for f in "$kit"/debs/*.deb; do dpkg -x "$f" "$prefix"; done
libs=$(find "$prefix" -name '*.so*' -printf '%h\n' | sort -u | tr '\n' ':')
# cuBLAS and cuDNN: PyTorch's nvidia-* wheels (nvidia/cu13/lib, nvidia/cudnn/lib, ...), then the
# toolkit's own folders (the binaries' rpath names the ones of the machine they were built on)
cudalibs=$(python3 -c "import nvidia, os; print(':'.join(os.path.join(p, d, 'lib') for p in nvidia.__path__ for d in sorted(os.listdir(p)) if os.path.isdir(os.path.join(p, d, 'lib'))))" 2>/dev/null)
for d in /usr/local/cuda/lib64 /usr/local/cuda/lib; do [ -d "$d" ] && cudalibs="$cudalibs:$d"; done
export LD_LIBRARY_PATH="$libs$cudalibs:${LD_LIBRARY_PATH:-}"
# Open MPI unpacked under $prefix (the NCCL group starts through it): relocated by OPAL_PREFIX
export OPAL_PREFIX="$prefix/usr" PATH="$prefix/usr/bin:$PATH" OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
{
  date -u
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1
  echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
  ldd "$kit/bin/test_cuda" | grep -E "not found|cublas|cudnn|nccl|mpi|fmt|openblas"
  # cuBLAS is not linked but opened on the first product (dlopen, engine/cuda/gemm_conv.cu),
  # through LD_LIBRARY_PATH above: say where it would come from
  for d in ${LD_LIBRARY_PATH//:/ }; do ls "$d"/libcublas.so.* 2>/dev/null; done | head -3
} > "$out/env.txt" 2>&1
status=0
step() {  # step NAME SECONDS CMD...: runs CMD under a time limit, logs to $out/NAME.log
  local name=$1 limit=$2; shift 2
  local t0=$(date +%s) rc=0
  timeout "$limit" "$@" > "$out/$name.log" 2>&1 || rc=$?
  echo "$name: exit $rc after $(( $(date +%s) - t0 )) s" | tee -a "$out/summary.txt"
  tail -3 "$out/$name.log"
  [ "$status" = 0 ] && status=$rc
}
step test_cuda 90 "$kit/bin/test_cuda"
step test_cuda_cudnn 45 env GENVAE_CUDA_CONV=cudnn "$kit/bin/test_cuda"  # every convolution through cuDNN
export GENVAE_MNIST_DIR="$PWD/$kit/data/mnist"
step train_w1 75 "$kit/bin/genvae-train" --device cuda --data mnist --data-dir "$GENVAE_MNIST_DIR" --epochs 1 \
  --out /tmp/genvae-w1 --force --mi-examples 200
step train_w2 75 "$kit/bin/genvae-train" --device cuda --data mnist --data-dir "$GENVAE_MNIST_DIR" --epochs 1 \
  --arch conv --latent 2 --likelihood gaussian --out /tmp/genvae-w2 --force --mi-examples 200
step bench 150 "$kit/bin/genvae-bench" --device cuda --workloads W1,W2,W3,W4 --steps 20 --warmup 5 \
  --python python3 --peer-script "$kit/peer.py" --json "$out/bench.json"
exit $status
