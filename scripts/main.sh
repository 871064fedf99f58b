#!/usr/bin/env bash
# main.sh: the README's first command. Installs what is missing, builds genvae in release mode
# (build/), and runs the main job: the W1 VAE of the benchmarks (an MLP 784-500-500-(2x20)
# encoder and 20-500-500-784 decoder with softplus, Bernoulli likelihood, the ELBO: regularizer KL,
# lambda 1) trained on dynamically binarized MNIST with Adam for 15 epochs by genvae-train, into
# runs/main (replaced on every run), then evaluated by genvae-eval (test ELBO, IWAE k=100, KL per
# dimension, active units, mutual information). Extra arguments go to genvae-train and override
# the job's flags (see build/apps/genvae-train --help); the data folder is ../shared/data/mnist
# unless --data-dir or GENVAE_MNIST_DIR says otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
[ -f build/build.ninja ] || meson setup build --buildtype=release
ninja -C build
# Idle OpenMP threads spin for a few microseconds, then sleep (docs/performance.md): spinning without
# limit made a step 20x slower whenever other work shared the two cores, and sleeping at once made
# W1's step 1.8x slower on a quiet machine (each parallel region waited for a thread to wake).
# Either setting given by the caller wins.
if [ -z "${OMP_WAIT_POLICY:-}" ]; then export GOMP_SPINCOUNT=${GOMP_SPINCOUNT:-10000}; fi

out=runs/main
for ((i = 1; i <= $#; ++i)); do  # the run directory, if the arguments name another
  case "${!i}" in
    --out) j=$((i + 1)); out=${!j} ;;
    --out=*) out=${!i#--out=} ;;
  esac
done

./build/apps/genvae-train --data mnist --arch mlp --hidden 500 --hidden-layers 2 --latent 20 \
  --activation softplus --likelihood bernoulli --regularizer kl --lambda 1 --optimizer adam --lr 1e-3 \
  --batch 100 --epochs 15 --seed 1 --out runs/main --force "$@"
./build/apps/genvae-eval "$out"
echo
echo "PNGs in $out/: samples/epoch-NNN-mean.png (decoder means g(z) of 64 draws z ~ p(z)),"
echo "  samples/epoch-NNN-draw.png (binary draws x ~ p(x|z)), recon/epoch-NNN.png (test digits, each row"
echo "  followed by its reconstructions), curves.png (training loss, reconstruction, KL, test ELBO)."
echo "Logs: $out/metrics.jsonl, $out/test.jsonl; report: $out/eval.json; checkpoint: $out/checkpoint.safetensors"
