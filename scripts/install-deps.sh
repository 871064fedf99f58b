#!/usr/bin/env bash
# install-deps.sh: installs the Debian 12 packages genvae builds with, if any is missing.
# Runs apt-get as root, or through sudo when not root. Does nothing when all are present.
set -euo pipefail
pkgs=(meson ninja-build g++ pkg-config python3 libopenblas-dev libopenblas-openmp-dev libfmt-dev doctest-dev zlib1g-dev libcli11-dev libarchive-dev nlohmann-json3-dev libpng-dev libjpeg62-turbo-dev libturbojpeg0-dev dataset-fashion-mnist
      clang clang-14 libclang-rt-14-dev libomp-14-dev  # clang, libFuzzer and clang's OpenMP: scripts/fuzz.sh
      libopenmpi-dev openmpi-bin)  # data-parallel training over MPI (nn/distributed.h)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then exit 0; fi
echo "install-deps: installing ${missing[*]}"
sudo=""
if [ "$(id -u)" != 0 ]; then sudo=sudo; fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
