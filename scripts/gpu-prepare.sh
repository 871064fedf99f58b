#!/usr/bin/env bash
# gpu-prepare.sh: prepares, on a machine without a GPU, everything a bare GPU machine needs to run
# scripts/gpu-check.sh, in gpu-kit/ (ignored by git, under 64 MiB):
#   - a CUDA build for sm_90 only (build-gpu/; -Dgpu_archs=90): the CUDA test binary, genvae-bench
#     and genvae-train;
#   - MNIST (../shared/data/mnist, 11 MiB), for the short W1 and W2 runs there;
#   - the Debian packages those binaries load (found from ldd and dpkg -S), fetched with
#     `apt-get download`, to be unpacked there with `dpkg -x` (that machine reaches no registry);
#     cuBLAS, cuDNN and NCCL are not carried: the GPU machine's CUDA 13 (its PyTorch's nvidia-*
#     wheels) provides them.
# Usage: bash scripts/gpu-prepare.sh, then on the GPU machine: bash scripts/gpu-check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
kit=gpu-kit
rm -rf "$kit" && mkdir -p "$kit/bin" "$kit/debs"
grep -qx '/gpu-kit/' .git/info/exclude 2>/dev/null || echo '/gpu-kit/' >> .git/info/exclude
[ -f build-gpu/build.ninja ] || meson setup build-gpu --buildtype=release -Dgpu_archs=90 >/dev/null
ninja -C build-gpu tests/test_cuda apps/genvae-bench apps/genvae-train
bins=(build-gpu/tests/test_cuda build-gpu/apps/genvae-bench build-gpu/apps/genvae-train)
cp "${bins[@]}" "$kit/bin/"
cp bench/peer.py "$kit/"
mkdir -p "$kit/data/mnist"
cp ../shared/data/mnist/*-ubyte.gz "$kit/data/mnist/"
# the packages that own the shared libraries the binaries load (glibc and CUDA's own left out)
pkgs=$(for b in "${bins[@]}"; do ldd "$b"; done | awk '/=> \//{print $3}' | sort -u |
  while read -r lib; do dpkg -S "$(readlink -f "$lib")" 2>/dev/null || dpkg -S "$lib" 2>/dev/null || true; done |
  cut -d: -f1 | sort -u | grep -v -E '^(libc6|libcublas|libcudnn|cuda-)' || true)
# Open MPI's run time beyond its libraries (its plugins, orted for the singleton start of
# test_cuda's 1-rank NCCL section); NCCL itself comes from the machine's nvidia-nccl wheel
pkgs="$pkgs openmpi-bin openmpi-common libopenmpi3"
echo "packages: $pkgs"
(cd "$kit/debs" && apt-get download $pkgs >/dev/null)
du -sh "$kit"
size=$(du -sm "$kit" | cut -f1)
if [ "$size" -ge 64 ]; then echo "gpu-prepare: $kit is $size MiB, over the 64 MiB a device run carries" >&2; exit 1; fi
echo "ready: carry $kit, run 'bash scripts/gpu-check.sh' there"
