#!/usr/bin/env bash
# main.sh: the README's first command. Installs what is missing, builds genvae in release mode
# (build/), and runs the main job: a two-layer network trained on MNIST with genvae's engine and
# autograd. Extra arguments go to the job (see build/apps/genvae-mnist-mlp --help); the data
# folder is ../shared/data/mnist unless --data or GENVAE_MNIST_DIR says otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
[ -f build/build.ninja ] || meson setup build --buildtype=release
ninja -C build
exec ./build/apps/genvae-mnist-mlp "$@"
