#!/usr/bin/env bash
# run_fuzzer.sh FUZZER TARGET FUZZ_SOURCE_DIR: runs one libFuzzer fuzzer for $GENVAE_FUZZ_SECONDS
# seconds (default 30). What it writes goes to a scratch folder, never into the source tree:
# $GENVAE_FUZZ_WORKDIR (scripts/fuzz.sh sets it) or a fresh folder under $TMPDIR or /tmp. There,
# corpus/TARGET starts as a copy of FUZZ_SOURCE_DIR/corpus/TARGET and collects what the fuzzer finds
# new; FUZZ_SOURCE_DIR/../inputs/fuzz/TARGET is read as a second corpus (so every kept crasher is
# replayed first); crashing inputs land in artifacts/TARGET/. Exits 0 when the time ran out
# without a finding, 1 otherwise (never libFuzzer's 77, which meson would count as a skip), after
# printing where the crashing input is and what to do with it.
set -uo pipefail
if [ $# -ne 3 ]; then echo "usage: run_fuzzer.sh FUZZER TARGET FUZZ_SOURCE_DIR" >&2; exit 2; fi
fuzzer=$(realpath "$1") target=$2 src=$3
seconds=${GENVAE_FUZZ_SECONDS:-30}
work=${GENVAE_FUZZ_WORKDIR:-}
made_work=0
if [ -z "$work" ]; then work=$(mktemp -d "${TMPDIR:-/tmp}/genvae-fuzz.XXXXXX") || exit 1; made_work=1; fi
corpus=$work/corpus/$target
artifacts=$work/artifacts/$target
rm -rf "$corpus" "$artifacts"
mkdir -p "$corpus" "$artifacts" || exit 1
cp "$src/corpus/$target"/* "$corpus/" || exit 1
extra=()
[ -f "$src/dict/$target.dict" ] && extra+=("-dict=$src/dict/$target.dict")
[ -d "$src/../inputs/fuzz/$target" ] && extra+=("$src/../inputs/fuzz/$target")

# Leaks are findings; so is any undefined behaviour (the build also aborts on it).
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
echo "run_fuzzer: $target for $seconds s; corpus $corpus; artifacts $artifacts"
# -timeout: one input taking this long is a finding (a hang). -rss_limit_mb: the readers may
# allocate up to ~1 GiB for an image at the 2^28-pixel limit, so allow a little more than that.
# $GENVAE_FUZZ_FLAGS (unquoted, split on spaces) goes to libFuzzer after these, overriding them.
timeout -k 10 $((seconds + 300)) "$fuzzer" -max_total_time="$seconds" -timeout=25 -rss_limit_mb=2560 ${GENVAE_FUZZ_FLAGS:-} \
  -artifact_prefix="$artifacts/" -print_final_stats=1 "$corpus" "${extra[@]}"
rc=$?
found=$(find "$artifacts" -type f ! -name 'slow-unit-*' 2>/dev/null | sort)
if [ $rc -eq 0 ] && [ -z "$found" ]; then
  echo "run_fuzzer: $target: no finding in $seconds s ($(ls "$corpus" | wc -l) inputs in the corpus)"
  [ $made_work = 1 ] && rm -rf "$work"
  exit 0
fi
echo
echo "run_fuzzer: FUZZER FINDING in $target (fuzzer exit status $rc)."
if [ -n "$found" ]; then
  for f in $found; do echo "  crashing input: $f"; done
  echo "  Reproduce:  $fuzzer <crashing input>"
  echo "  Fix the reader, then keep the input as a regression test (replayed by tests/nn/test_fuzz_regressions.cpp):"
  for f in $found; do echo "    cp $f tests/inputs/fuzz/$target/"; done
else
  echo "  libFuzzer left no crashing input in $artifacts (timed out or killed?): see its output above."
fi
exit 1
