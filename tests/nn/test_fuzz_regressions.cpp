// test_fuzz_regressions.cpp: replays the fuzzers' files through the functions the fuzzers run
// (tests/fuzz/targets.h), so that what they found stays fixed in every build, the ASan + UBSan
// one included:
//  * every seed in tests/fuzz/corpus/<target>/ is a valid file and must be accepted;
//  * every file in tests/inputs/fuzz/<target>/ must be accepted or refused with a gv::Error,
//    never crash, trip a sanitizer or break an invariant; the hand-made ones (hand-*) are all bad
//    files and must be refused. Crashers the fuzzers find are added there under libFuzzer's names.
#include <doctest/doctest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <functional>

#include "tests/fuzz/targets.h"

namespace fs = std::filesystem;

// This file's helpers and tests in a namespace of their own: the unity build (scripts/test.sh)
// compiles several test files as one, and their helpers must not meet.
namespace file_nn_test_fuzz_regressions {

namespace {

// tests/fuzz in the source tree. __FILE__ is the path the compiler was given, relative to the
// build folder (where meson runs the tests) or absolute; else look up from the executable.
fs::path fuzz_dir() {
  std::vector<fs::path> candidates = {fs::path(__FILE__).parent_path().parent_path() / "fuzz"};
  std::error_code ec;
  fs::path dir = fs::read_symlink("/proc/self/exe", ec).parent_path();
  for (int up = 0; !ec && up < 5 && dir.has_relative_path(); ++up, dir = dir.parent_path())
    candidates.push_back(dir / "tests" / "fuzz");
  for (const fs::path& c : candidates)
    if (fs::is_regular_file(c / "targets.h", ec) && fs::is_directory(c / "corpus", ec)) return c;
  FAIL("cannot find tests/fuzz (tried " << candidates.front() << " and the executable's parents)");
  return {};
}

std::vector<fs::path> files_in(const fs::path& dir) {
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_regular_file()) files.push_back(e.path());
  std::sort(files.begin(), files.end());
  return files;
}

using Target = std::function<void(const uint8_t*, size_t)>;

enum class Outcome { accepted, refused };

// Runs bytes through the target: accepted, or refused with a gv::Error. Anything else (an
// InvariantFailure, another exception) escapes and fails the test case, with the file's name.
Outcome run_file_bytes(const Target& target, const uint8_t* data, size_t size) {
  try {
    target(data, size);
    return Outcome::accepted;
  } catch (const gv::Error&) {
    return Outcome::refused;
  }
}

Outcome run_file(const Target& target, const fs::path& file) {
  const std::vector<uint8_t> bytes = gv::data::read_file_bytes(file.string());
  return run_file_bytes(target, bytes.data(), bytes.size());
}

void replay(const std::string& name, const Target& target) {
  const fs::path dir = fuzz_dir();
  const std::vector<fs::path> seeds = files_in(dir / "corpus" / name);
  CHECK(!seeds.empty());
  const uint8_t nothing = 0;
  CHECK(run_file_bytes(target, &nothing, 0) == Outcome::refused);  // the empty input
  for (const fs::path& f : seeds) {
    INFO("seed " << f.string());
    std::string why;
    const std::vector<uint8_t> bytes = gv::data::read_file_bytes(f.string());
    try {
      target(bytes.data(), bytes.size());
    } catch (const gv::Error& e) {
      why = e.what();
    }
    CHECK_MESSAGE(why.empty(), "a valid seed was refused: " << why);
  }
  const fs::path regressions = dir.parent_path() / "inputs" / "fuzz" / name;  // in the corpus of bad inputs
  REQUIRE(fs::is_directory(regressions));
  int hand_made = 0;
  for (const fs::path& f : files_in(regressions)) {
    INFO("regression " << f.string());
    const Outcome outcome = run_file(target, f);
    if (f.filename().string().rfind("hand-", 0) == 0) {
      ++hand_made;
      CHECK_MESSAGE(outcome == Outcome::refused, "a hand-made bad file was accepted");
    }
  }
  CHECK(hand_made > 0);
}

}  // namespace

TEST_CASE("fuzz regressions: read_idx on the IDX corpus and regressions") {
  replay("idx", gv::fuzz::fuzz_one_idx);
}

TEST_CASE("fuzz regressions: decode_image on the image corpus and regressions") {
  replay("image", gv::fuzz::fuzz_one_image);
}

TEST_CASE("fuzz regressions: read_safetensors on the safetensors corpus and regressions") {
  replay("safetensors", gv::fuzz::fuzz_one_safetensors);
}

}  // namespace file_nn_test_fuzz_regressions
