#!/usr/bin/env bash
# fuzz.sh [SECONDS]: fuzzes the three file readers (read_idx, decode_image, read_safetensors) with
# libFuzzer for SECONDS each (default $GENVAE_FUZZ_SECONDS, else 30). Builds build-fuzz/ with clang,
# ASan + UBSan and -Dfuzz=true (only the fuzzers and the libraries under them), then runs the meson
# tests fuzz-idx, fuzz-image and fuzz-safetensors (tests/fuzz/run_fuzzer.sh), whose results
# scripts/test_summary.py reads from build-fuzz/meson-logs/testlog.json. Everything the fuzzers
# write goes to a scratch folder under $TMPDIR or /tmp: removed when nothing was found, kept (with
# the crashing inputs in artifacts/<target>/) when something was. Exits non-zero on any finding.
set -uo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-${GENVAE_FUZZ_SECONDS:-30}}
case $seconds in ''|*[!0-9]*) echo "fuzz.sh: SECONDS must be a whole number, got '$seconds'" >&2; exit 2;; esac
dir=build-fuzz
fuzzers=(tests/fuzz/fuzz_idx tests/fuzz/fuzz_image tests/fuzz/fuzz_safetensors)

rm -f "$dir/meson-logs/testlog.json"  # a failed build must not leave the last run's results behind
if [ ! -f "$dir/build.ninja" ]; then
  CXX=${GENVAE_FUZZ_CXX:-clang++} meson setup "$dir" -Dfuzz=true -Dcuda=disabled -Dmpi=disabled -Db_sanitize=address,undefined \
    -Db_lundef=false -Dbuildtype=debugoptimized >/dev/null || { echo "fuzz.sh: meson setup $dir failed" >&2; exit 1; }
fi
echo "== building $dir (fuzzers)"
ninja -C "$dir" "${fuzzers[@]}" || { echo "fuzz.sh: building the fuzzers failed" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/genvae-fuzz.XXXXXX") || exit 1
echo "== fuzzing for $seconds s per reader (scratch folder $work)"
GENVAE_FUZZ_SECONDS=$seconds GENVAE_FUZZ_WORKDIR=$work \
  meson test -C "$dir" --suite fuzz --no-rebuild --print-errorlogs --num-processes 2  # two cores: two fuzzers at once
status=$?
found=$(find "$work/artifacts" -type f ! -name 'slow-unit-*' 2>/dev/null | sort)
if [ $status -eq 0 ] && [ -z "$found" ]; then
  rm -rf "$work"
  exit 0
fi
echo
echo "fuzz.sh: the fuzzers found problems (or failed to run); scratch folder kept: $work"
for f in $found; do
  target=$(basename "$(dirname "$f")")
  echo "  $f"
  echo "    -> fix the reader, then: cp $f tests/inputs/fuzz/$target/"
done
exit 1
