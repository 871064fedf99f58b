// fuzz_image.cpp: libFuzzer entry point for decode_image (PNG and JPEG from memory).
// The work is gv::fuzz::fuzz_one_image in tests/fuzz/targets.h, which the normal test suite also
// runs on every file of tests/fuzz/corpus/image and tests/inputs/fuzz/image. A gv::Error is the
// reader refusing bad input, as it should; anything else escapes and is reported as a crash.
#include "tests/fuzz/targets.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    gv::fuzz::fuzz_one_image(data, size);
  } catch (const gv::Error&) {
  }
  return 0;
}
