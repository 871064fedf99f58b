#!/usr/bin/env bash
# peer-venv.sh: makes the virtual environment of the speed peer, PyTorch 2.x from PyPI (MKL and
# oneDNN), in .venv-peer/ (or $1). genvae-bench finds it there by itself. Neither the tests nor CI
# need it. About two minutes and a few GiB (PyPI's torch wheel brings its CUDA libraries).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${1:-.venv-peer}
if [ ! -x "$venv/bin/python" ]; then python3 -m venv "$venv"; fi
"$venv/bin/python" -m pip install -q --upgrade pip
"$venv/bin/python" -m pip install -q torch numpy
"$venv/bin/python" -c 'import torch; print("peer ready:", torch.__version__, "in", __import__("sys").prefix)'
