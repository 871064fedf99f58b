#!/usr/bin/env bash
# test.sh: the README's second command. Builds and runs the whole test suite twice: a release
# build (build/, with CUDA compiled when nvcc is found; CUDA tests SKIP without a GPU) and a
# debug build under AddressSanitizer + UndefinedBehaviorSanitizer (build-asan/, CPU only).
# GENVAE_SANITIZE=0 skips the sanitizer pass. The release build also runs the engine, autograd and
# vae suites on every other kernel path the CPU supports (GENVAE_ISA; meson suite 'isa'; the
# sanitizer pass leaves that suite out, the genvae-bench smoke test, suite 'bench', and the
# 256^3-colour enumeration, suite 'enumeration'). Then
# fuzzes the file readers with libFuzzer (scripts/fuzz.sh: build-fuzz/, clang, GENVAE_FUZZ_SECONDS
# per reader, default 30; the three fuzz-* tests count in the summary); GENVAE_FUZZ=0 skips that.
# Ends with the line "N passed, N failed, N skipped".
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh || exit 1
# Idle OpenMP workers sleep instead of spinning: on a machine shared with other work, spinning
# workers made training steps 20x slower (tests are not timed; benchmarks set their own policy).
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
status=0
dirs=()

run_suite() {  # run_suite DIR [meson setup options...] [-- meson test options...]
  local dir=$1; shift
  local setup=() testopts=()
  while [ $# -gt 0 ] && [ "$1" != -- ]; do setup+=("$1"); shift; done
  if [ $# -gt 0 ]; then shift; testopts=("$@"); fi
  if [ ! -f "$dir/build.ninja" ]; then meson setup "$dir" "${setup[@]}" >/dev/null || { status=1; return; }; fi
  echo "== building $dir"
  ninja -C "$dir" || { status=1; return; }
  echo "== testing $dir"
  # two test programs at once: the sanitizer pass's largest suites are mostly serial code, and
  # running two of them side by side cut that pass from about 550 to 380 s (docs/performance.md)
  meson test -C "$dir" --print-errorlogs --num-processes 2 "${testopts[@]}" || status=1
  dirs+=("$dir")
}

# Unity builds (eight source files compiled as one): each header is parsed and each inline function
# compiled once per eight files, not once per file; the release build went from 222 to 170 s
# (docs/performance.md, "CI time"). The test files keep their helpers in namespaces of their own for it.
unity=(-Dunity=on -Dunity_size=8)
run_suite build --buildtype=release "${unity[@]}"
# The sanitizer pass's time limits are doubled: its debug code under ASan runs 5-10x slower than the
# release build, and on a 2-core machine shared with other work its largest suites neared their limits.
if [ "${GENVAE_SANITIZE:-1}" != 0 ]; then
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    run_suite build-asan --buildtype=debug "${unity[@]}" -Dcuda=disabled -Db_sanitize=address,undefined -Db_lundef=false -- \
    --no-suite isa --no-suite bench --no-suite enumeration --timeout-multiplier 2
fi
if [ "${GENVAE_FUZZ:-1}" != 0 ]; then
  bash scripts/fuzz.sh "${GENVAE_FUZZ_SECONDS:-30}" || status=1
  dirs+=(build-fuzz)  # without a test log (a failed build) it counts as a failure
fi
python3 scripts/test_summary.py "${dirs[@]}" || status=1
exit $status
