#!/usr/bin/env bash
# fig6.sh: the paper's Fig. 6 on this machine, every step of the README's CIFAR-10 PixelVAE section.
# Two genvae-train runs of the same PixelVAE (the paper's CIFAR-10 encoder, conv 4x4 s2 at 64, 128
# and 256 channels and dense 512 with a floor on sigma; a PixelCNN++-style decoder conditioned on
# z; the discretized logistic mixture with RGB coupling), side by side, one thread each:
#   elbo  the ELBO at the correct scale (reconstruction summed over the 3072 dimensions, KL)
#   r0    R = 0, the unregularized objective
# then genvae-eval (the test NLL by the IWAE bound, in bits per dimension), genvae-sample (ancestral
# samples, and Markov chains of Proposition 2 started from uniform noise: rows are chains, columns
# steps) and genvae-compare (OUT/fig6.png: the KL and bits-per-dimension curves of both runs;
# fig6.md, fig6.json). Everything goes to OUT (default runs/fig6).
# Scale with the environment: STEPS (stop training after this many steps, at a checkpoint; 0: the
# whole of EPOCHS), EPOCHS (1), FILTERS (32), BLOCKS (1), MIXTURES (5), LATENT (32), BATCH (32),
# IWAE_K (10), IWAE_N (200 test images), N (16 samples and chains), CHAIN_STEPS (6). The paper's
# size: FILTERS=160 BLOCKS=5 MIXTURES=10. TRAIN=0 skips the training (evaluates, samples and
# compares the runs already in OUT). Each stage shows its progress with the time left.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-runs/fig6}
epochs=${EPOCHS:-1} filters=${FILTERS:-32} blocks=${BLOCKS:-1} mixtures=${MIXTURES:-5} latent=${LATENT:-32}
batch=${BATCH:-32} iwae_k=${IWAE_K:-10} iwae_n=${IWAE_N:-200} n=${N:-16} chain_steps=${CHAIN_STEPS:-6}
steps=${STEPS:-0} train=${TRAIN:-1}
[ -f build/build.ninja ] || meson setup build --buildtype=release
ninja -C build
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}  # two one-thread runs share the cores
mkdir -p "$out"
common=(--data cifar10 --cache-dir runs/cifar10-cache --arch conv3 --decoder pixelcnn++
        --likelihood logistic-mixture-rgb --components "$mixtures" --pixel-channels "$filters"
        --pixel-blocks "$blocks" --pixel-resolutions 3 --latent "$latent" --sigma-floor 0.01 --batch "$batch"
        --epochs "$epochs" --test-limit 1000 --mi-every 100 --mi-examples 256 --figure-samples 16
        --checkpoint-every 200 --log-every 20 --threads 1 --force)
pids=()
[ "$train" = 0 ] || for r in elbo r0; do
  reg=kl
  [ "$r" = r0 ] && reg=none
  build/apps/genvae-train "${common[@]}" --regularizer "$reg" --out "$out/$r" > "$out/$r.log" 2>&1 &
  pids+=($!)
done
[ "$train" = 0 ] || echo "training: progress in $out/{elbo,r0}.log"
if [ "$train" != 0 ] && [ "$steps" -gt 0 ]; then
  # stop each run once it has logged step STEPS in information.jsonl, which genvae-train writes
  # right after the checkpoint of that step (--checkpoint-every 200: STEPS a multiple of 200)
  for i in 0 1; do
    r=$([ $i = 0 ] && echo elbo || echo r0)
    until grep -q "\"step\":$steps," "$out/$r/information.jsonl" 2>/dev/null; do
      kill -0 "${pids[$i]}" 2>/dev/null || break
      sleep 5
    done
    kill "${pids[$i]}" 2>/dev/null || true
  done
fi
wait || true
for r in elbo r0; do
  build/apps/genvae-eval "$out/$r" --iwae-k "$iwae_k" --iwae-examples "$iwae_n" --test-limit 1000 --mi-examples 256 \
    --batch 50 --threads 1 > "$out/$r-eval.log" 2>&1 &
done
wait
for r in elbo r0; do
  build/apps/genvae-sample "$out/$r" --n "$n" --show "$n" --steps "$chain_steps" --keep "$chain_steps" \
    --nn-examples 200 --threads 1 > "$out/$r-sample.log" 2>&1 &
done
wait
build/apps/genvae-compare "$out/elbo" "$out/r0" --labels "ELBO,R = 0" --out "$out/fig6.png"
