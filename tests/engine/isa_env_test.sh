#!/usr/bin/env bash
# isa_env_test.sh PROBE: a bad GENVAE_ISA is a clear error with exit 1 (tests/engine/isa_env_probe.cpp),
# also when it is first read inside a parallel loop; a good one runs.
set -u
probe=$1
fail=0
out=$(GENVAE_ISA=sse9 OMP_NUM_THREADS=2 "$probe" 2>&1); rc=$?
if [ $rc -ne 1 ] || ! grep -q "allowed values are generic, avx2 and avx512" <<<"$out"; then
  echo "GENVAE_ISA=sse9: want exit 1 naming the allowed values, got exit $rc: $out"; fail=1
fi
out=$(GENVAE_ISA=generic OMP_NUM_THREADS=2 "$probe" 2>&1); rc=$?
if [ $rc -ne 0 ] || ! grep -q "ok: exp(1) = 2.71828" <<<"$out"; then
  echo "GENVAE_ISA=generic: want exit 0, got exit $rc: $out"; fail=1
fi
[ $fail -eq 0 ] && echo "isa_env_test: ok"
exit $fail
