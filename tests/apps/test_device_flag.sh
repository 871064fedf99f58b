#!/usr/bin/env bash
# test_device_flag.sh PROGRAMS...: every program that computes takes --device cpu|cuda[:N]. A value
# of another form is refused by the flag check (CLI11's exit 105) with the allowed forms; on a
# machine without a usable GPU, --device cuda is refused before anything is read or written, with
# a message that says what was found. Needs no data (the refusals come first).
set -uo pipefail
source "$(dirname "$0")/common.sh"
for prog in "$@"; do
  name=$(basename "$prog")
  sub=()
  [ "$name" = genvae-seqvae ] && sub=(train)  # its flags belong to the subcommand
  "$prog" "${sub[@]}" --help >"$scratch/help.txt" 2>&1
  grep -q -- "--device" "$scratch/help.txt" || { echo "FAIL: $name --help lists no --device"; exit 1; }
  "$prog" "${sub[@]}" --device gpu >"$scratch/err.log" 2>&1
  rc=$?
  [ "$rc" = 105 ] || { cat "$scratch/err.log"; echo "FAIL: $name --device gpu exited $rc, not 105"; exit 1; }
  grep -q -- "--device: must be cpu, cuda or cuda:N (N in 0..15), got 'gpu'" "$scratch/err.log" ||
    { cat "$scratch/err.log"; echo "FAIL: $name --device gpu: no clear message"; exit 1; }
  echo "ok: $name --device gpu -> $(head -1 "$scratch/err.log")"
done
# --device cuda where no GPU can be used: genvae-train refuses it and leaves no run folder
train=$1
{
  if "$train" --device cuda --data mnist --data-dir "$mnist" --limit 100 --out "$scratch/run" >"$scratch/err.log" 2>&1; then
    echo "SKIP-PART: genvae-train --device cuda ran (a GPU is usable here)"
  else
    grep -q -E -- "--device cuda: (no CUDA device can be used here \(.+\)|this build of genvae has no CUDA backend)" "$scratch/err.log" ||
      { cat "$scratch/err.log"; echo "FAIL: --device cuda without a GPU: no clear message"; exit 1; }
    [ ! -e "$scratch/run" ] || { echo "FAIL: a refused --device left $scratch/run behind"; exit 1; }
    echo "ok: genvae-train --device cuda -> $(head -1 "$scratch/err.log")"
  fi
}
echo "PASS"
