#!/usr/bin/env bash
# fig5.sh: the paper's Fig. 5 on this machine, every step of the README's PixelVAE section.
# Three genvae-train runs of the same PixelVAE (an MLP encoder, a gated PixelCNN decoder
# conditioned on z, Bernoulli on dynamically binarized MNIST), side by side, one thread each:
#   elbo     the ELBO at the correct scale (reconstruction summed over pixels, KL over dimensions)
#   r0       R = 0, the unregularized objective
#   authors  the authors' MNIST scaling: mean cross-entropy per pixel + mean KL per dimension, the
#            same optimum as the ELBO with the KL weighted 784 / Z (Adam does not see the overall
#            1/784)
# then genvae-classifier (the sample-quality classifier), genvae-eval (test NLL by the IWAE bound),
# genvae-sample --classifier (ancestral samples and Markov chains from noise, scored) and
# genvae-compare (OUT/fig5.png, fig5.md, fig5.json). Everything goes to OUT (default runs/fig5).
# Scale with the environment: EPOCHS (1), LAYERS (12), CHANNELS (16), LATENT (32), IWAE_K (20),
# N (1000 samples and chains), CHAIN_STEPS (10). Each stage shows its progress with the time left.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-runs/fig5}
epochs=${EPOCHS:-1} layers=${LAYERS:-12} channels=${CHANNELS:-16} latent=${LATENT:-32}
iwae_k=${IWAE_K:-20} n=${N:-1000} chain_steps=${CHAIN_STEPS:-10}
[ -f build/build.ninja ] || meson setup build --buildtype=release
ninja -C build
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}  # three one-thread runs share the cores
mkdir -p "$out"
lambda=$(python3 -c "print(784 / $latent)")
common=(--decoder pixelcnn --pixel-layers "$layers" --pixel-channels "$channels" --latent "$latent" --epochs "$epochs"
        --mi-every 100 --mi-examples 500 --figure-samples 16 --checkpoint-every 200 --threads 1 --force)
build/apps/genvae-train "${common[@]}" --regularizer kl --out "$out/elbo" > "$out/elbo.log" 2>&1 &
build/apps/genvae-train "${common[@]}" --regularizer none --out "$out/r0" > "$out/r0.log" 2>&1 &
build/apps/genvae-train "${common[@]}" --regularizer kl --lambda "$lambda" --out "$out/authors" > "$out/authors.log" 2>&1 &
build/apps/genvae-classifier --out "$out/classifier" --threads 1 --force > "$out/classifier.log" 2>&1 &
echo "training: progress in $out/{elbo,r0,authors,classifier}.log"
wait
for r in elbo r0 authors; do
  build/apps/genvae-eval "$out/$r" --iwae-k "$iwae_k" --iwae-examples 1000 --mi-examples 1000 --threads 1 \
    > "$out/$r-eval.log" 2>&1 &
done
wait
for r in elbo r0 authors; do
  build/apps/genvae-sample "$out/$r" --n "$n" --show 16 --steps "$chain_steps" --keep 5 --nn-examples 1000 \
    --classifier "$out/classifier" --threads 1 > "$out/$r-sample.log" 2>&1 &
done
wait
build/apps/genvae-compare "$out/elbo" "$out/r0" "$out/authors" \
  --labels "ELBO,R = 0,authors' scaling (KL x $lambda)" --out "$out/fig5.png"
