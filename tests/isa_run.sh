#!/usr/bin/env bash
# isa_run.sh ISA ISA_SUPPORTED TEST_BINARY: runs a whole test binary with GENVAE_ISA=ISA, so every
# kernel path this CPU supports runs the full suite; SKIP (77) when the CPU lacks that path.
set -u
isa=$1 probe=$2 bin=$3
"$probe" "$isa" || exit $?
GENVAE_ISA=$isa exec "$bin"
