// fuzz_idx.cpp: libFuzzer entry point for read_idx (an IDX file, plain and behind gzip).
// The work is gv::fuzz::fuzz_one_idx in tests/fuzz/targets.h, which the normal test suite also
// runs on every file of tests/fuzz/corpus/idx and tests/inputs/fuzz/idx. A gv::Error is the
// reader refusing bad input, as it should; anything else escapes and is reported as a crash.
#include "tests/fuzz/targets.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    gv::fuzz::fuzz_one_idx(data, size);
  } catch (const gv::Error&) {
  }
  return 0;
}
