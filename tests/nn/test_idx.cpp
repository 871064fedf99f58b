// test_idx.cpp: the IDX reader and the MNIST loader (nn/data/idx.h). Synthetic IDX files, plain
// and gzip, are written to a temporary folder for the round trips and for each kind of bad file;
// the real MNIST (and Fashion-MNIST, when its Debian package is installed) is checked when found.
#include <doctest/doctest.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>

#include "nn/data/idx.h"

namespace fs = std::filesystem;
using gv::data::IdxArray;
using gv::data::load_mnist;
using gv::data::read_idx;

// This file's helpers and tests in a namespace of their own: the unity build (scripts/test.sh)
// compiles several test files as one, and their helpers must not meet.
namespace file_nn_test_idx {

namespace {

// A fresh folder under the system's temporary folder, removed with everything in it at the end.
struct TempDir {
  fs::path path;
  TempDir() {
    static int counter = 0;
    path = fs::temp_directory_path() /
           fmt::format("genvae_test_idx_{}_{}", (long)getpid(), counter++);
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string file(const std::string& name) const { return (path / name).string(); }
};

// The bytes of an IDX file: magic 00 00 type ndims, big-endian dims, then data.
std::vector<uint8_t> idx_file(const std::vector<uint32_t>& dims, const std::vector<uint8_t>& data,
                              uint8_t type = 0x08) {
  std::vector<uint8_t> out = {0, 0, type, (uint8_t)dims.size()};
  for (uint32_t d : dims)
    for (int shift : {24, 16, 8, 0}) out.push_back(uint8_t(d >> shift));
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

std::vector<uint8_t> iota_bytes(size_t n) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = uint8_t(i * 7 + 3);
  return v;
}

void write_plain(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(bytes.data()), (std::streamsize)bytes.size());
  REQUIRE(f.good());
}

void write_gzip(const std::string& path, const std::vector<uint8_t>& bytes) {
  gzFile gz = gzopen(path.c_str(), "wb");
  REQUIRE(gz != nullptr);
  if (!bytes.empty()) REQUIRE(gzwrite(gz, bytes.data(), (unsigned)bytes.size()) == (int)bytes.size());
  REQUIRE(gzclose(gz) == Z_OK);
}

std::vector<uint8_t> read_raw(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(f), {});
}

// The message of the E that f throws; fails the test (and returns "") when it throws none.
template <class E, class F>
std::string message_of(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  }
  FAIL_CHECK("expected an exception, none was thrown");
  return "";
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// The folder of a real data set, or nullopt (with a MESSAGE saying the checks are skipped).
std::optional<std::string> data_dir(const std::string& dir, const std::string& what) {
  if (fs::is_directory(dir)) return dir;
  MESSAGE(what << " not found at '" << dir << "': skipping the checks on the real data");
  WARN_MESSAGE(false, what << " missing: real-data checks skipped");
  return std::nullopt;
}

std::array<int64_t, 10> class_counts(const gv::Tensor& labels) {
  std::array<int64_t, 10> counts{};
  int64_t out_of_range = 0;
  for (int64_t l : labels.to_vector<int64_t>()) {
    if (l >= 0 && l <= 9) ++counts[l];
    else ++out_of_range;
  }
  CHECK(out_of_range == 0);
  return counts;
}

}  // namespace

// ---- round trips ------------------------------------------------------------------------------
TEST_CASE("read_idx: plain files round-trip dims and bytes") {
  TempDir tmp;
  const auto data = iota_bytes(2 * 3 * 4);
  write_plain(tmp.file("a3"), idx_file({2, 3, 4}, data));
  IdxArray a = read_idx(tmp.file("a3"));
  CHECK(a.dims == std::vector<int64_t>{2, 3, 4});
  CHECK(a.bytes == data);
  a = read_idx(tmp.file("a3"), 3);  // the right rank asked for
  CHECK(a.bytes == data);

  write_plain(tmp.file("a1"), idx_file({5}, {9, 8, 7, 6, 5}));
  a = read_idx(tmp.file("a1"), 1);
  CHECK(a.dims == std::vector<int64_t>{5});
  CHECK(a.bytes == std::vector<uint8_t>{9, 8, 7, 6, 5});

  // big-endian dims: 0x0102 = 258 rows
  write_plain(tmp.file("big"), idx_file({0x0102, 1}, iota_bytes(258)));
  a = read_idx(tmp.file("big"), 2);
  CHECK(a.dims == std::vector<int64_t>{258, 1});
  CHECK(a.bytes == iota_bytes(258));

  write_plain(tmp.file("empty"), idx_file({0, 28, 28}, {}));
  a = read_idx(tmp.file("empty"), 3);
  CHECK(a.dims == std::vector<int64_t>{0, 28, 28});
  CHECK(a.bytes.empty());
}

TEST_CASE("read_idx: gzip is detected by its magic bytes, not by the file name") {
  TempDir tmp;
  const auto data = iota_bytes(100000);  // spans several gzread calls
  const auto file = idx_file({1000, 10, 10}, data);
  write_gzip(tmp.file("compressed.idx"), file);  // gzip under a plain name
  write_plain(tmp.file("plain.gz"), file);        // plain under a .gz name
  REQUIRE(read_raw(tmp.file("compressed.idx"))[0] == 0x1f);

  IdxArray g = read_idx(tmp.file("compressed.idx"), 3);
  CHECK(g.dims == std::vector<int64_t>{1000, 10, 10});
  CHECK(g.bytes == data);
  IdxArray p = read_idx(tmp.file("plain.gz"), 3);
  CHECK(p.dims == g.dims);
  CHECK(p.bytes == data);
}

// ---- bad files --------------------------------------------------------------------------------
TEST_CASE("read_idx: a missing file or a folder is an IOError naming the path and the reason") {
  TempDir tmp;
  const std::string missing = tmp.file("no-such-file");
  std::string msg = message_of<gv::IOError>([&] { read_idx(missing); });
  CHECK(contains(msg, missing));
  CHECK(contains(msg, std::strerror(ENOENT)));
  CHECK(contains(msg, "nn/data/idx.cpp:"));  // GV_THROW adds where it was raised

  msg = message_of<gv::IOError>([&] { read_idx(tmp.path.string()); });
  CHECK(contains(msg, tmp.path.string()));
  CHECK(contains(msg, "directory"));
}

TEST_CASE("read_idx: a wrong magic number names the file, the expected and the found number") {
  TempDir tmp;
  write_plain(tmp.file("images"), idx_file({2, 2, 2}, iota_bytes(8)));
  std::string msg = message_of<gv::IOError>([&] { read_idx(tmp.file("images"), 1); });
  CHECK(contains(msg, tmp.file("images")));
  CHECK(contains(msg, "expected 0x00000801"));
  CHECK(contains(msg, "found 0x00000803"));

  write_plain(tmp.file("labels"), idx_file({4}, iota_bytes(4)));
  msg = message_of<gv::IOError>([&] { read_idx(tmp.file("labels"), 3); });
  CHECK(contains(msg, "expected 0x00000803"));
  CHECK(contains(msg, "found 0x00000801"));

  write_plain(tmp.file("zip"), {'P', 'K', 3, 4, 0, 0, 0, 0});
  msg = message_of<gv::IOError>([&] { read_idx(tmp.file("zip")); });
  CHECK(contains(msg, tmp.file("zip")));
  CHECK(contains(msg, "0x504B0304"));
  CHECK(contains(msg, "0x00000801"));  // says what a label file would start with
}

TEST_CASE("read_idx: an unsupported element type names its type code") {
  TempDir tmp;
  write_plain(tmp.file("floats"), idx_file({2}, iota_bytes(8), 0x0D));
  std::string msg = message_of<gv::IOError>([&] { read_idx(tmp.file("floats")); });
  CHECK(contains(msg, tmp.file("floats")));
  CHECK(contains(msg, "0x0D"));
  CHECK(contains(msg, "float32"));
  CHECK(contains(msg, "0x08"));

  write_plain(tmp.file("weird"), idx_file({2}, iota_bytes(2), 0x42));
  msg = message_of<gv::IOError>([&] { read_idx(tmp.file("weird")); });
  CHECK(contains(msg, "0x42"));
}

TEST_CASE("read_idx: a truncated header is an IOError") {
  TempDir tmp;
  write_plain(tmp.file("empty"), {});
  std::string msg = message_of<gv::IOError>([&] { read_idx(tmp.file("empty")); });
  CHECK(contains(msg, tmp.file("empty")));
  CHECK(contains(msg, "truncated"));

  write_plain(tmp.file("short"), {0, 0, 8});
  msg = message_of<gv::IOError>([&] { read_idx(tmp.file("short")); });
  CHECK(contains(msg, "has 3 bytes"));

  // three dims promised, one and a half given
  write_plain(tmp.file("dims"), {0, 0, 8, 3, 0, 0, 0, 2, 0, 0});
  msg = message_of<gv::IOError>([&] { read_idx(tmp.file("dims")); });
  CHECK(contains(msg, "truncated"));
  CHECK(contains(msg, "need 12 bytes"));
  CHECK(contains(msg, "has 6"));
}

TEST_CASE("read_idx: data shorter than the dims promise names expected and actual sizes") {
  TempDir tmp;
  auto file = idx_file({10}, iota_bytes(10));  // 8 header + 10 data = 18 bytes
  file.resize(15);
  write_plain(tmp.file("cut"), file);
  std::string msg = message_of<gv::IOError>([&] { read_idx(tmp.file("cut"), 1); });
  CHECK(contains(msg, tmp.file("cut")));
  CHECK(contains(msg, "truncated"));
  CHECK(contains(msg, "calls for 18 bytes"));
  CHECK(contains(msg, "has 15"));

  write_gzip(tmp.file("cut.gz"), file);  // a valid gzip stream of a truncated file
  msg = message_of<gv::IOError>([&] { read_idx(tmp.file("cut.gz"), 1); });
  CHECK(contains(msg, "calls for 18 bytes"));
  CHECK(contains(msg, "has 15 after gzip decompression"));

  // a header that promises far more than the file holds fails the same way, without trouble
  write_plain(tmp.file("liar"), idx_file({60000, 28, 28}, iota_bytes(1000)));
  msg = message_of<gv::IOError>([&] { read_idx(tmp.file("liar"), 3); });
  CHECK(contains(msg, "calls for 47040016 bytes"));
  CHECK(contains(msg, "has 1016"));
}

TEST_CASE("read_idx: trailing bytes after the data are an IOError") {
  TempDir tmp;
  auto file = idx_file({10}, iota_bytes(10));
  file.insert(file.end(), {1, 2, 3});
  write_plain(tmp.file("long"), file);
  std::string msg = message_of<gv::IOError>([&] { read_idx(tmp.file("long")); });
  CHECK(contains(msg, tmp.file("long")));
  CHECK(contains(msg, "3 trailing bytes"));
  CHECK(contains(msg, "calls for 18 bytes"));
  CHECK(contains(msg, "has 21"));

  write_gzip(tmp.file("long.gz"), file);
  msg = message_of<gv::IOError>([&] { read_idx(tmp.file("long.gz")); });
  CHECK(contains(msg, "3 trailing bytes"));
  CHECK(contains(msg, "after gzip decompression"));
}

TEST_CASE("read_idx: absurd dims are refused before anything is allocated") {
  TempDir tmp;
  write_plain(tmp.file("huge"), idx_file({65536, 65536, 65536}, iota_bytes(16)));
  std::string msg = message_of<gv::IOError>([&] { read_idx(tmp.file("huge")); });
  CHECK(contains(msg, tmp.file("huge")));
  CHECK(contains(msg, "absurd"));
  CHECK(contains(msg, "[65536, 65536, 65536]"));

  // a product that would overflow int64 if computed naively
  write_plain(tmp.file("overflow"), idx_file({0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF}, {}));
  msg = message_of<gv::IOError>([&] { read_idx(tmp.file("overflow")); });
  CHECK(contains(msg, "absurd"));
  CHECK(contains(msg, "4294967295"));

  // just above the 2^31 cap
  write_plain(tmp.file("cap"), idx_file({0x80000001u}, {}));
  CHECK_THROWS_WITH_AS(read_idx(tmp.file("cap")), doctest::Contains("absurd"), gv::IOError);
}

TEST_CASE("read_idx: a corrupt or cut gzip stream gives zlib's message and the file") {
  TempDir tmp;
  const auto file = idx_file({100, 10}, iota_bytes(1000));
  write_gzip(tmp.file("good.gz"), file);
  const auto gz = read_raw(tmp.file("good.gz"));
  REQUIRE(gz.size() > 20);

  auto bad = gz;
  bad[10] = 0xFF;  // first deflate block: final, with the reserved block type 3
  write_plain(tmp.file("badblock.gz"), bad);
  std::string msg = message_of<gv::IOError>([&] { read_idx(tmp.file("badblock.gz")); });
  CHECK(contains(msg, tmp.file("badblock.gz")));
  CHECK(contains(msg, "gzip"));
  CHECK(contains(msg, "invalid block type"));

  bad = gz;
  bad[bad.size() - 8] ^= 0x5A;  // the CRC-32 in the trailer
  write_plain(tmp.file("badcrc.gz"), bad);
  msg = message_of<gv::IOError>([&] { read_idx(tmp.file("badcrc.gz")); });
  CHECK(contains(msg, tmp.file("badcrc.gz")));
  CHECK(contains(msg, "incorrect data check"));

  bad = std::vector<uint8_t>(gz.begin(), gz.begin() + (long)gz.size() / 2);
  write_plain(tmp.file("half.gz"), bad);
  msg = message_of<gv::IOError>([&] { read_idx(tmp.file("half.gz")); });
  CHECK(contains(msg, tmp.file("half.gz")));
  CHECK(contains(msg, "unexpected end of file"));
}

TEST_CASE("read_idx: a bad expected_rank is a ValueError") {
  CHECK_THROWS_AS(read_idx("whatever", -2), gv::ValueError);
  CHECK_THROWS_AS(read_idx("whatever", 256), gv::ValueError);
}

// ---- load_mnist on synthetic files ------------------------------------------------------------
TEST_CASE("load_mnist: any rows x cols, .gz or plain names, scaling and limit") {
  TempDir tmp;
  // 4 images of 3x5: image i holds pixel values 51*i (0, 51, 102, 153), pixel 0 of image 3 is 255
  std::vector<uint8_t> pixels(4 * 15);
  for (int i = 0; i < 4; ++i) std::fill(pixels.begin() + 15 * i, pixels.begin() + 15 * (i + 1), 51 * i);
  pixels[45] = 255;
  write_gzip(tmp.file("t10k-images-idx3-ubyte.gz"), idx_file({4, 3, 5}, pixels));
  write_plain(tmp.file("t10k-labels-idx1-ubyte"), idx_file({4}, {7, 0, 9, 3}));

  gv::data::MnistSplit s = load_mnist(tmp.path.string(), /*train=*/false);
  CHECK(s.images.dtype() == gv::DType::f32);
  CHECK(s.images.shape() == gv::Shape{4, 1, 3, 5});
  CHECK(s.labels.dtype() == gv::DType::i64);
  CHECK(s.labels.shape() == gv::Shape{4});
  CHECK(s.labels.to_vector<int64_t>() == std::vector<int64_t>{7, 0, 9, 3});
  const auto v = s.images.to_vector<float>();
  CHECK(v[0] == 0.0f);
  CHECK(v[15] == doctest::Approx(0.2));
  CHECK(v[30] == doctest::Approx(0.4));
  CHECK(v[45] == 1.0f);
  CHECK(v[46] == doctest::Approx(0.6));

  gv::data::MnistSplit two = load_mnist(tmp.path.string(), false, 2);
  CHECK(two.images.shape() == gv::Shape{2, 1, 3, 5});
  CHECK(two.labels.to_vector<int64_t>() == std::vector<int64_t>{7, 0});
  CHECK(load_mnist(tmp.path.string(), false, 100).images.size(0) == 4);
  CHECK(load_mnist(tmp.path.string(), false, 0).labels.numel() == 0);
  CHECK_THROWS_AS(load_mnist(tmp.path.string(), false, -2), gv::ValueError);

  // the training split is looked for under its own names
  std::string msg = message_of<gv::IOError>([&] { load_mnist(tmp.path.string(), true); });
  CHECK(contains(msg, tmp.file("train-images-idx3-ubyte")));
  CHECK(contains(msg, tmp.file("train-images-idx3-ubyte.gz")));
}

TEST_CASE("load_mnist: image and label files that disagree are an IOError") {
  TempDir tmp;
  write_plain(tmp.file("train-images-idx3-ubyte"), idx_file({3, 2, 2}, iota_bytes(12)));
  write_plain(tmp.file("train-labels-idx1-ubyte"), idx_file({4}, {1, 2, 3, 4}));
  std::string msg = message_of<gv::IOError>([&] { load_mnist(tmp.path.string(), true); });
  CHECK(contains(msg, "3 images"));
  CHECK(contains(msg, "4 labels"));
  CHECK(contains(msg, tmp.file("train-labels-idx1-ubyte")));

  // labels and images swapped: the rank in the magic number catches it
  write_plain(tmp.file("train-labels-idx1-ubyte"), idx_file({3, 2, 2}, iota_bytes(12)));
  msg = message_of<gv::IOError>([&] { load_mnist(tmp.path.string(), true); });
  CHECK(contains(msg, "expected 0x00000801"));
}

TEST_CASE("load_mnist: a label outside 0..num_classes-1 names the file, the index and the value") {
  TempDir tmp;
  write_plain(tmp.file("t10k-images-idx3-ubyte"), idx_file({4, 2, 2}, iota_bytes(16)));
  write_plain(tmp.file("t10k-labels-idx1-ubyte"), idx_file({4}, {1, 2, 10, 4}));
  std::string msg = message_of<gv::IOError>([&] { load_mnist(tmp.path.string(), false); });
  CHECK(contains(msg, tmp.file("t10k-labels-idx1-ubyte")));
  CHECK(contains(msg, "label 10 at index 2 (byte 10 of the IDX data) is outside 0..9"));
  // every label is checked, also beyond --limit
  CHECK_THROWS_AS(load_mnist(tmp.path.string(), false, 1), gv::IOError);
  // with more classes the same file is fine; 255 against 10 classes is refused
  CHECK(load_mnist(tmp.path.string(), false, -1, 11).labels.to_vector<int64_t>() == std::vector<int64_t>{1, 2, 10, 4});
  write_plain(tmp.file("t10k-labels-idx1-ubyte"), idx_file({4}, {255, 2, 3, 4}));
  CHECK(contains(message_of<gv::IOError>([&] { load_mnist(tmp.path.string(), false); }), "label 255 at index 0"));
  CHECK_THROWS_AS(load_mnist(tmp.path.string(), false, -1, 0), gv::ValueError);
}

TEST_CASE("default_mnist_dir: GENVAE_MNIST_DIR wins, else ../shared/data/mnist when it exists") {
  const char* old = std::getenv("GENVAE_MNIST_DIR");
  const std::string saved = old ? old : "";
  setenv("GENVAE_MNIST_DIR", "/some/where/mnist", 1);
  CHECK(gv::data::default_mnist_dir() == "/some/where/mnist");
  unsetenv("GENVAE_MNIST_DIR");
  const std::string dir = gv::data::default_mnist_dir();
  if (fs::is_directory("../shared/data/mnist")) CHECK(dir == "../shared/data/mnist");
  CHECK(contains(dir, "shared/data/mnist"));
  if (old) setenv("GENVAE_MNIST_DIR", saved.c_str(), 1);
}

// ---- the real data ----------------------------------------------------------------------------
TEST_CASE("MNIST test split: 10000 digits, known class counts and mean intensity") {
  auto dir = data_dir(gv::data::default_mnist_dir(), "MNIST");
  if (!dir) return;
  gv::data::MnistSplit s = load_mnist(*dir, /*train=*/false);
  REQUIRE(s.images.shape() == gv::Shape{10000, 1, 28, 28});
  REQUIRE(s.labels.shape() == gv::Shape{10000});

  const std::array<int64_t, 10> expected = {980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009};
  const auto counts = class_counts(s.labels);
  int64_t total = 0;
  for (int64_t c : counts) total += c;
  CHECK(total == 10000);
  CHECK(counts[0] == 980);
  CHECK(counts[1] == 1135);
  CHECK(counts == expected);

  const auto px = s.images.to_vector<float>();
  const auto [lo, hi] = std::minmax_element(px.begin(), px.end());
  CHECK(*lo == 0.0f);
  CHECK(*hi == 1.0f);
  double sum = 0;
  for (float p : px) sum += p;
  const double mean = sum / (double)px.size();
  MESSAGE("MNIST test mean pixel intensity: " << mean);
  CHECK(std::abs(mean - 0.1325) < 0.001);

  // a limited load is the head of the full one
  gv::data::MnistSplit head = load_mnist(*dir, false, 50);
  CHECK(head.images.shape() == gv::Shape{50, 1, 28, 28});
  const auto hp = head.images.to_vector<float>();
  CHECK(std::equal(hp.begin(), hp.end(), px.begin()));
}

TEST_CASE("MNIST training split: 60000 digits, known class counts, loads fast") {
  auto dir = data_dir(gv::data::default_mnist_dir(), "MNIST");
  if (!dir) return;
  const auto t0 = std::chrono::steady_clock::now();
  gv::data::MnistSplit s = load_mnist(*dir, /*train=*/true);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  MESSAGE("loading the MNIST training split took " << seconds << " s");
  CHECK(seconds < 5.0);  // 0.2-0.45 s on the 2-core dev machine; generous for loaded or debug runs
  REQUIRE(s.images.shape() == gv::Shape{60000, 1, 28, 28});
  const std::array<int64_t, 10> expected = {5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949};
  CHECK(class_counts(s.labels) == expected);
}

TEST_CASE("Fashion-MNIST test split (Debian's dataset-fashion-mnist): 1000 of each class") {
  const char* env = std::getenv("GENVAE_FASHION_MNIST_DIR");
  auto dir = data_dir(env && *env ? env : "/usr/share/datasets/fashion-mnist", "Fashion-MNIST");
  if (!dir) return;
  gv::data::MnistSplit s = load_mnist(*dir, /*train=*/false);
  REQUIRE(s.images.shape() == gv::Shape{10000, 1, 28, 28});
  for (int64_t c : class_counts(s.labels)) CHECK(c == 1000);
}

}  // namespace file_nn_test_idx
