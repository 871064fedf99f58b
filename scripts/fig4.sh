#!/usr/bin/env bash
# fig4.sh: the paper's sequential VAE experiment (section 3.2, Fig. 4, Prop. 5) on this machine:
# three genvae-seqvae runs on the same data, for the same number of training steps (EPOCHS epochs
# of batch 100), then genvae-seqvae compare (OUT/fig4.png, fig4.md, fig4.json):
#   sequential  T steps of LATENT latent dimensions each
#   onestep     one step of T x LATENT dimensions: the same total code size
#   infusion    infusion training (Bordes et al. 2016), the baseline
#   prop5       the sequential VAE with 2 latent dimensions per step: with 16 per step the code
#               of one step already singles out one test image (q(x|z) has an effective sample
#               size of 1), so its posterior variance is ~0 at every step; 2 per step keeps q(x|z)
#               spread over many images, where Proposition 5 says something
# Everything goes to OUT (default runs/fig4). Scale with the environment: DATA (mnist; also
# fashion-mnist, cifar10, folder:PATH), IMAGE_SIZE (32 or 64, for a folder), EPOCHS (2), STEPS (4),
# LATENT (16), THREADS (2). Each run
# shows its progress with the time left; per-run figures are in OUT/<run>/.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-runs/fig4}
data=${DATA:-mnist} image_size=${IMAGE_SIZE:-32} epochs=${EPOCHS:-2} steps=${STEPS:-4} latent=${LATENT:-16} threads=${THREADS:-2}
[ -f build/build.ninja ] || meson setup build --buildtype=release
ninja -C build
mkdir -p "$out"
common=(--data "$data" --cache-dir "$out/cache" --image-size "$image_size" --epochs "$epochs" --steps "$steps" --threads "$threads" --force)
run() {  # run NAME FLAGS...
  local name=$1; shift
  echo "== $name: log in $out/$name.log"
  build/apps/genvae-seqvae train "${common[@]}" "$@" --out "$out/$name" 2>&1 | tee "$out/$name.log" | grep -v '^epoch' || true
  [ -f "$out/$name/steps.json" ] || { echo "the $name run failed: see $out/$name.log" >&2; exit 1; }
}
run sequential --model sequential --latent "$latent"
run onestep --model onestep --latent "$latent"
run infusion --model infusion
run prop5 --model sequential --latent 2
build/apps/genvae-seqvae compare "$out/sequential" "$out/onestep" "$out/infusion" "$out/prop5" \
  --labels "sequential VAE (T=$steps),one-step VAE (z=$((steps * latent))),infusion,sequential (2 per step)" \
  --out "$out/fig4.png"
