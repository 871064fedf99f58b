#!/usr/bin/env bash
# fig4.sh: the paper's sequential VAE experiment (section 3.2, Fig. 4, Prop. 5) on this machine:
# three genvae-seqvae runs on the same data, for the same number of training steps (EPOCHS epochs
# of batch 100), then genvae-seqvae compare (OUT/fig4.png, fig4.md, fig4.json):
#   sequential  T steps of LATENT latent dimensions each
#   onestep     one step of T x LATENT dimensions: the same total code size
#   infusion    infusion training (Bordes et al. 2016), the baseline
# Everything goes to OUT (default runs/fig4). Scale with the environment: DATA (mnist; also
# fashion-mnist, cifar10, folder:PATH), EPOCHS (2), STEPS (4), LATENT (16), THREADS (2). Each run
# shows its progress with the time left; per-run figures are in OUT/<run>/.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-runs/fig4}
data=${DATA:-mnist} epochs=${EPOCHS:-2} steps=${STEPS:-4} latent=${LATENT:-16} threads=${THREADS:-2}
[ -f build/build.ninja ] || meson setup build --buildtype=release
ninja -C build
mkdir -p "$out"
common=(--data "$data" --epochs "$epochs" --steps "$steps" --latent "$latent" --threads "$threads" --force)
for m in sequential onestep infusion; do
  echo "== $m: log in $out/$m.log"
  build/apps/genvae-seqvae train "${common[@]}" --model "$m" --out "$out/$m" 2>&1 | tee "$out/$m.log" | grep -v '^epoch' || true
  [ -f "$out/$m/steps.json" ] || { echo "the $m run failed: see $out/$m.log" >&2; exit 1; }
done
build/apps/genvae-seqvae compare "$out/sequential" "$out/onestep" "$out/infusion" \
  --labels "sequential VAE (T=$steps),one-step VAE (z=$((steps * latent))),infusion" --out "$out/fig4.png"
