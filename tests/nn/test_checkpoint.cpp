// test_checkpoint.cpp: the safetensors writer and reader and the checkpoint layer
// (nn/checkpoint.h). Round trips of every dtype; one file checked byte for byte against the
// format; every validation error, each from a hand-made or corrupted file, with its message;
// the atomic write under a simulated crash; checkpoints of a module, optimizer and TrainState,
// and what a load refuses; and exact resume of a small training run (the same run across
// processes is tests/nn/resume_test.sh).
#include <doctest/doctest.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <sstream>

#include "nn/checkpoint.h"
#include "tests/nn/resume_model.h"

namespace fs = std::filesystem;
using namespace gv;
using nn::Metadata;
using nn::NamedTensor;
using nn::read_safetensors;
using nn::write_safetensors;

// This file's helpers and tests in a namespace of their own: the unity build (scripts/test.sh)
// compiles several test files as one, and their helpers must not meet.
namespace file_nn_test_checkpoint {

namespace {

// A fresh folder under the system's temporary folder, removed with everything in it at the end.
struct TempDir {
  fs::path path;
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "genvae-ckpt-XXXXXX").string();
    REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
    path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string file(const std::string& name) const { return (path / name).string(); }
  std::vector<std::string> listing() const {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(path)) names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
  }
};

std::string read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), (std::streamsize)bytes.size());
}

std::string u64_le(uint64_t v) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[i] = char(v >> (8 * i));
  return s;
}

// A safetensors file from its header text (unpadded, as given) and data section.
std::string raw_file(const std::string& header, const std::string& data) {
  return u64_le(header.size()) + header + data;
}

// The message of the IOError that f throws; a note instead when it throws something else or nothing.
std::string io_error(const std::function<void()>& f) {
  try {
    f();
  } catch (const IOError& e) {
    return e.what();
  } catch (const std::exception& e) {
    return std::string("<not an IOError> ") + e.what();
  }
  return "<no error>";
}

std::string value_error(const std::function<void()>& f) {
  try {
    f();
  } catch (const ValueError& e) {
    return e.what();
  } catch (const std::exception& e) {
    return std::string("<not a ValueError> ") + e.what();
  }
  return "<no error>";
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// read_safetensors(path) must throw an IOError naming the file and the problem.
void expect_bad_file(const std::string& path, const std::string& problem) {
  std::string msg = io_error([&] { read_safetensors(path); });
  INFO("message: ", msg);
  CHECK(contains(msg, path));
  CHECK(contains(msg, problem));
}

bool same_bytes(const Tensor& a, const Tensor& b) {
  Tensor ca = a.contiguous(), cb = b.contiguous();
  return ca.dtype() == cb.dtype() && ca.shape() == cb.shape() &&
         std::memcmp(ca.raw_data(), cb.raw_data(), ca.numel() * dtype_size(ca.dtype())) == 0;
}

const Tensor& find_tensor(const nn::SafetensorsFile& f, const std::string& name) {
  for (const auto& [n, t] : f.tensors)
    if (n == name) return t;
  FAIL("no tensor named ", name);
  static Tensor none;
  return none;
}

// The entries of a valid two-tensor file: a F32 [2] at [0, 8), b I64 [] at [8, 16).
const std::string kEntryA = R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})";
const std::string kEntryB = R"("b":{"dtype":"I64","shape":[],"data_offsets":[8,16]})";
const std::string kData16(16, '\x01');

}  // namespace

// ---- round trips and the exact layout ---------------------------------------------------------
TEST_CASE("safetensors round trip: every dtype, 0-d, empty and non-contiguous tensors") {
  TempDir dir;
  const float inf = std::numeric_limits<float>::infinity();
  Tensor f32 = Tensor::from_vector<float>({1.5f, -0.0f, inf, -inf, std::nanf(""), 1e-45f}, {2, 3});
  Tensor f64 = Tensor::scalar(3.141592653589793, DType::f64);  // 0-d
  Tensor i64 = Tensor::from_vector<int64_t>({INT64_MIN, -1, 0, INT64_MAX}, {4});
  Tensor empty_f32 = Tensor::empty({0}, DType::f32);
  Tensor empty_i64 = Tensor::empty({3, 0, 2}, DType::i64);
  Tensor transposed = Tensor::arange(6, DType::f64).reshape({2, 3}).t();  // (3, 2), strided
  std::vector<NamedTensor> in = {{"z.f32", f32},       {"f64", f64},         {"int", i64},
                                 {"empty", empty_f32}, {"empty3", empty_i64}, {"t", transposed}};
  Metadata md = {{"config", R"({"lr": 0.001, "name": "β-VAE"})"}, {"empty", ""}};
  write_safetensors(dir.file("x.safetensors"), in, md);

  nn::SafetensorsFile out = read_safetensors(dir.file("x.safetensors"));
  CHECK(out.metadata == md);
  std::vector<std::string> names;
  for (const auto& [n, t] : out.tensors) names.push_back(n);
  CHECK(names == std::vector<std::string>{"empty", "empty3", "f64", "int", "t", "z.f32"});  // sorted
  for (const auto& [name, t] : in) {
    INFO("tensor ", name);
    const Tensor& back = find_tensor(out, name);
    CHECK(back.is_contiguous());
    CHECK(same_bytes(back, t));  // bit for bit: NaN, -0.0, infinities, a denormal
  }
  CHECK(find_tensor(out, "f64").dim() == 0);
  CHECK(find_tensor(out, "empty3").shape() == Shape{3, 0, 2});
  CHECK(find_tensor(out, "t").to_vector<double>() == std::vector<double>{0, 3, 1, 4, 2, 5});

  std::string bytes = read_bytes(dir.file("x.safetensors"));
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | (unsigned char)bytes[i];
  CHECK((8 + n) % 8 == 0);  // the data section starts 8-byte aligned
}

TEST_CASE("safetensors round trip: no tensors, no metadata") {
  TempDir dir;
  write_safetensors(dir.file("e.safetensors"), {});
  CHECK(read_bytes(dir.file("e.safetensors")) == u64_le(8) + "{}      ");
  nn::SafetensorsFile out = read_safetensors(dir.file("e.safetensors"));
  CHECK(out.tensors.empty());
  CHECK(out.metadata.empty());
}

TEST_CASE("safetensors layout matches the format byte for byte") {
  TempDir dir;
  // Given out of order: the file holds them sorted by name, back to back.
  write_safetensors(dir.file("t.safetensors"),
                    {{"e", Tensor::empty({0}, DType::f64)},
                     {"b", Tensor::scalar(7, DType::i64)},
                     {"a", Tensor::from_vector<float>({1.0f, -2.0f}, {2})}},
                    {{"k", "v"}});
  // The header is 187 bytes of JSON + 5 spaces = 192 = 0xC0, so the data starts at 8 + 192 = 200.
  std::string expected = std::string("\xC0\0\0\0\0\0\0\0", 8) +
                         R"({"__metadata__":{"k":"v"},)"
                         R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                         R"("b":{"dtype":"I64","shape":[],"data_offsets":[8,16]},)"
                         R"("e":{"dtype":"F64","shape":[0],"data_offsets":[16,16]}})"
                         "     " +
                         std::string("\x00\x00\x80\x3F"    // 1.0f
                                     "\x00\x00\x00\xC0"    // -2.0f
                                     "\x07\0\0\0\0\0\0\0",  // int64 7
                                     16);
  REQUIRE(expected.size() == 216);
  CHECK(read_bytes(dir.file("t.safetensors")) == expected);
}

TEST_CASE("write_safetensors refuses bad names") {
  TempDir dir;
  std::string p = dir.file("w.safetensors");
  Tensor t = Tensor::zeros({1});
  CHECK(contains(value_error([&] { write_safetensors(p, {{"a", t}, {"a", t}}); }), "duplicate tensor name \"a\""));
  CHECK(contains(value_error([&] { write_safetensors(p, {{"__metadata__", t}}); }), "reserved"));
  CHECK(contains(value_error([&] { write_safetensors(p, {{"u", Tensor()}}); }), "undefined"));
  CHECK(contains(value_error([&] { write_safetensors(p, {{"bad\xff", t}}); }), "UTF-8"));
  CHECK(dir.listing().empty());
}

// ---- validation: every problem is an IOError naming the file ---------------------------------
TEST_CASE("read_safetensors: truncated files and bad header lengths") {
  TempDir dir;
  std::string good = dir.file("good.safetensors");
  write_safetensors(good, {{"a", Tensor::ones({2})}, {"b", Tensor::scalar(7, DType::i64)}});
  const std::string bytes = read_bytes(good);
  const uint64_t n = bytes.size() - 8 - 16;  // 16 bytes of data
  std::string p = dir.file("bad.safetensors");

  for (size_t len : {0, 1, 7}) {
    write_bytes(p, bytes.substr(0, len));
    expect_bad_file(p, fmt::format("the file is {} bytes, shorter than the 8-byte header length", len));
  }
  for (size_t len : {size_t(8), size_t(18), size_t(8 + n - 1)}) {
    write_bytes(p, bytes.substr(0, len));
    expect_bad_file(p, fmt::format("header length {} is larger than the rest of the file ({} bytes)", n, len - 8));
  }
  for (size_t data : {0, 5, 15}) {
    write_bytes(p, bytes.substr(0, 8 + n + data));
    expect_bad_file(p, fmt::format("go past the end of the data section ({} bytes)", data));
  }
  write_bytes(p, u64_le(~uint64_t(0)) + bytes.substr(8));
  expect_bad_file(p, "header length 18446744073709551615 is over the limit of 100000000 bytes");
  write_bytes(p, u64_le(nn::kMaxSafetensorsHeader + 1) + bytes.substr(8));
  expect_bad_file(p, "header length 100000001 is over the limit");
  write_bytes(p, u64_le(bytes.size() - 7) + bytes.substr(8));
  expect_bad_file(p, "is larger than the rest of the file");
  write_bytes(p, u64_le(n / 2) + bytes.substr(8));  // the JSON is cut short
  expect_bad_file(p, "the header is not valid JSON");

  expect_bad_file(dir.file("missing.safetensors"), "cannot open: No such file or directory");
  expect_bad_file(dir.path.string(), "is a directory");
}

TEST_CASE("read_safetensors: bad JSON, bad entries, bad dtypes and shapes") {
  TempDir dir;
  std::string p = dir.file("bad.safetensors");
  auto bad = [&](const std::string& header, const std::string& data, const std::string& problem) {
    write_bytes(p, raw_file(header, data));
    INFO("header: ", header);
    expect_bad_file(p, problem);
  };
  bad(R"({"a":)", "", "the header is not valid JSON");
  bad("{\"a\xff\":1}", "", "the header is not valid JSON");  // not UTF-8
  bad("", "", "the header is not valid JSON");
  bad("[1,2]", "", "the header is not a JSON object but array");
  bad(R"({"a":3})", "", "tensor \"a\": entry is not an object");
  bad(R"({"a":{"dtype":"F32","data_offsets":[0,0]}})", "", "tensor \"a\": \"shape\" is missing");
  bad(R"({"a":{"dtype":"F32","shape":[],"data_offsets":[0,4],"x":1}})", "abcd", "tensor \"a\": unknown fields");
  bad(R"({"a":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}})", "abcd", "unsupported dtype \"F16\"");
  bad(R"({"a":{"dtype":5,"shape":[2],"data_offsets":[0,4]}})", "abcd", "unsupported dtype 5");
  bad(R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,0]}})", "", "shape entry -2 is negative");
  bad(R"({"a":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}})", kData16.substr(8),
      "shape entry 2.0 is not an integer");
  bad(R"({"a":{"dtype":"F32","shape":["2"],"data_offsets":[0,8]}})", kData16.substr(8),
      "shape entry \"2\" is not an integer");
  bad(R"({"a":{"dtype":"F32","shape":2,"data_offsets":[0,8]}})", kData16.substr(8), "shape is not an array");
  bad(R"({"a":{"dtype":"F32","shape":[18446744073709551615],"data_offsets":[0,0]}})", "", "is too large");
  bad(R"({"a":{"dtype":"I64","shape":[4611686018427387904,4],"data_offsets":[0,0]}})", "",
      "the size of shape [4611686018427387904, 4] overflows");
  bad(R"({"a":{"dtype":"F32","shape":[2305843009213693952,2],"data_offsets":[0,0]}})", "",  // numel fits, bytes do not
      "the size of shape [2305843009213693952, 2] overflows");
}

TEST_CASE("read_safetensors: bad offsets, overlaps and holes") {
  TempDir dir;
  std::string p = dir.file("bad.safetensors");
  auto bad = [&](const std::string& header, const std::string& data, const std::string& problem) {
    write_bytes(p, raw_file(header, data));
    INFO("header: ", header);
    expect_bad_file(p, problem);
  };
  auto a_at = [](const std::string& offsets) {
    return R"({"a":{"dtype":"F32","shape":[2],"data_offsets":)" + offsets + "}}";
  };
  bad(a_at("[0]"), kData16.substr(8), "data_offsets [0] is not [begin, end] of non-negative integers");
  bad(a_at("[0,8,8]"), kData16.substr(8), "is not [begin, end]");
  bad(a_at("[-8,0]"), kData16.substr(8), "is not [begin, end]");
  bad(a_at("[0,8.0]"), kData16.substr(8), "is not [begin, end]");
  bad(a_at("\"0,8\""), kData16.substr(8), "is not [begin, end]");
  bad(a_at("[8,0]"), kData16.substr(8), "data_offsets [8, 0] end before they begin");
  bad(a_at("[0,24]"), kData16, "data_offsets [0, 24] go past the end of the data section (16 bytes)");
  bad(a_at("[0,4]"), kData16.substr(12), "data_offsets [0, 4] hold 4 bytes but F32 [2] needs 8");

  // overlapping: b's 8 bytes start inside a's
  bad("{" + kEntryA + R"(,"b":{"dtype":"I64","shape":[],"data_offsets":[4,12]}})", kData16.substr(4),
      "tensors \"a\" [0, 8) and \"b\" [4, 12) overlap");
  // the same range twice
  bad("{" + kEntryA + R"(,"c":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", kData16.substr(8),
      "tensors \"a\" [0, 8) and \"c\" [0, 8) overlap");
  // an empty tensor inside another's range
  bad("{" + kEntryA + R"(,"e":{"dtype":"F32","shape":[0],"data_offsets":[4,4]}})", kData16.substr(8),
      "tensors \"a\" [0, 8) and \"e\" [4, 4) overlap");
  // a hole between a and b, at the start, and at the end
  bad("{" + kEntryA + R"(,"b":{"dtype":"I64","shape":[],"data_offsets":[16,24]}})", kData16 + "12345678",
      "bytes [8, 16) of the data section belong to no tensor (a hole before \"b\")");
  bad(R"({"b":{"dtype":"I64","shape":[],"data_offsets":[8,16]}})", kData16,
      "bytes [0, 8) of the data section belong to no tensor");
  bad("{" + kEntryA + "," + kEntryB + "}", kData16 + "x",
      "bytes [16, 17) at the end of the data section belong to no tensor");
  bad("{}", "abcd", "bytes [0, 4) at the end of the data section belong to no tensor");
}

TEST_CASE("read_safetensors: duplicate keys and bad metadata") {
  TempDir dir;
  std::string p = dir.file("bad.safetensors");
  auto bad = [&](const std::string& header, const std::string& data, const std::string& problem) {
    write_bytes(p, raw_file(header, data));
    INFO("header: ", header);
    expect_bad_file(p, problem);
  };
  // A plain JSON parse would keep one "a" silently.
  bad("{" + kEntryA + "," + kEntryA + "}", kData16.substr(8), "duplicate key \"a\" in the header");
  bad("{" + kEntryA + "," + kEntryB + "," + kEntryA + "}", kData16, "duplicate key \"a\" in the header");
  bad(R"({"a":{"dtype":"F32","dtype":"F64","shape":[2],"data_offsets":[0,8]}})", kData16.substr(8),
      "duplicate key \"dtype\" in the header");
  bad(R"({"__metadata__":{"k":"v","k":"w"}})", "", "duplicate key \"k\" in the header");
  bad(R"({"__metadata__":{"k":"v"},"__metadata__":{}})", "", "duplicate key \"__metadata__\" in the header");
  // the same key in two different objects is fine
  write_bytes(p, raw_file(R"({"__metadata__":{"a":"x"},)" + kEntryA + "}", kData16.substr(8)));
  CHECK(read_safetensors(p).metadata.at("a") == "x");

  bad(R"({"__metadata__":{"k":1}})", "", "metadata value of \"k\" is not a string but 1");
  bad(R"({"__metadata__":{"k":null}})", "", "metadata value of \"k\" is not a string but null");
  bad(R"({"__metadata__":["k"]})", "", "__metadata__ is not an object");
}

TEST_CASE("read_safetensors: a valid file from another writer (spaces, field order, offsets out of name order)") {
  TempDir dir;
  std::string p = dir.file("other.safetensors");
  // b's bytes come first in the data section; whitespace inside the JSON; no padding
  std::string header = R"({ "a": {"shape": [2], "data_offsets": [8, 16], "dtype": "F32"},
                            "b": {"data_offsets": [0, 8], "dtype": "I64", "shape": []} })";
  std::string data = std::string("\x2A\0\0\0\0\0\0\0", 8) + std::string("\0\0\x80\x3F\0\0\0\x40", 8);
  write_bytes(p, raw_file(header, data));
  nn::SafetensorsFile f = read_safetensors(p);
  CHECK(find_tensor(f, "a").to_vector<float>() == std::vector<float>{1.0f, 2.0f});
  CHECK(find_tensor(f, "b").item() == 42);
}

// ---- atomic write -----------------------------------------------------------------------------
TEST_CASE("write_safetensors is atomic: a failed save leaves the old file whole and no temporary") {
  TempDir dir;
  std::string p = dir.file("ckpt.safetensors");
  Tensor old_value = Tensor::full({64}, 1.0);
  write_safetensors(p, {{"w", old_value}}, {{"version", "old"}});
  const std::string old_bytes = read_bytes(p);

  Tensor new_value = Tensor::full({64}, 2.0);
  const int64_t size = int64_t(old_bytes.size());
  for (int64_t fail_after : {int64_t(0), int64_t(5), int64_t(8), int64_t(40), size - 10, size - 1}) {
    INFO("failing after ", fail_after, " bytes");
    std::string msg = io_error([&] {
      write_safetensors(p, {{"w", new_value}}, {{"version", "new"}}, nn::WriteOptions{fail_after});
    });
    CHECK(contains(msg, "simulated failure"));
    CHECK(contains(msg, p));
    CHECK(read_bytes(p) == old_bytes);
    CHECK(dir.listing() == std::vector<std::string>{"ckpt.safetensors"});
  }
  // A save that does not fail replaces the file, and leaves nothing else behind.
  write_safetensors(p, {{"w", new_value}}, {{"version", "new"}});
  CHECK(read_safetensors(p).metadata.at("version") == "new");
  CHECK(dir.listing() == std::vector<std::string>{"ckpt.safetensors"});
}

TEST_CASE("write_safetensors: failures with no previous file, and an unwritable place") {
  TempDir dir;
  std::string p = dir.file("new.safetensors");
  CHECK(contains(io_error([&] { write_safetensors(p, {{"w", Tensor::ones({4})}}, {}, nn::WriteOptions{12}); }),
                 "simulated failure"));
  CHECK(dir.listing().empty());
  std::string nowhere = dir.file("no/such/folder/x.safetensors");
  CHECK(contains(io_error([&] { write_safetensors(nowhere, {}); }), "cannot create a temporary file"));
  fs::create_directory(dir.file("d"));  // a folder where the file should go: rename fails
  CHECK(contains(io_error([&] { write_safetensors(dir.file("d"), {}); }), "cannot rename"));
  CHECK(dir.listing() == std::vector<std::string>{"d"});
}

// ---- checkpoints ------------------------------------------------------------------------------
namespace {

class Inner : public nn::Module {
 public:
  explicit Inner(DType dtype = DType::f32) { b = register_parameter("b", Tensor::zeros({3}, dtype)); }
  ag::Var b;
};

// w (2, 3), sub.b (3), buffer count (int64, 0-d)
class Tiny : public nn::Module {
 public:
  explicit Tiny(uint64_t seed) {
    Generator g(seed);
    w = register_parameter("w", normal({2, 3}, g));
    sub = register_module("sub", std::make_shared<Inner>());
    Tensor b = sub->b.data();
    b.copy_(normal({3}, g));
    register_buffer("count", Tensor::scalar(double(seed), DType::i64));
  }
  ag::Var w;
  std::shared_ptr<Inner> sub;
};

// Tiny's names with other shapes and dtypes: w (3, 2), sub.b float64, an extra parameter, no count.
class Other : public nn::Module {
 public:
  Other() {
    w = register_parameter("w", Tensor::ones({3, 2}));
    register_module("sub", std::make_shared<Inner>(DType::f64));
    register_parameter("gain", Tensor::ones({1}));
  }
  ag::Var w;
};

// One Adam step on made-up gradients, so that its state is not all zeros.
void take_a_step(nn::Optimizer& opt) {
  for (const auto& [name, v] : opt.params()) v.set_grad(Tensor::full(v.shape(), 0.5, v.dtype()));
  opt.step();
}

nn::TrainState sample_state() {
  nn::TrainState s;
  s.step = 1234;
  s.epoch = 5;
  s.batch_in_epoch = 17;
  Generator data(42), noise(7);
  data.advance(1000);
  noise.set_state(UINT64_MAX, UINT64_MAX - 1);
  s.rngs = {{"noise", noise}, {"data", data}};
  s.extra = {{"config", R"({"model": "tiny"})"}, {"note", ""}};
  return s;
}

// A genvae checkpoint rewritten with one metadata field changed (or removed, when value is empty).
void rewrite_metadata(const std::string& path, const std::string& key, const std::string& value) {
  nn::SafetensorsFile f = read_safetensors(path);
  if (value.empty()) f.metadata.erase(key);
  else f.metadata[key] = value;
  write_safetensors(path, f.tensors, f.metadata);
}

}  // namespace

TEST_CASE("checkpoint: what the file holds") {
  TempDir dir;
  std::string p = dir.file("ckpt.safetensors");
  Tiny m(1);
  nn::Adam opt(m.named_parameters(), 0.003);
  take_a_step(opt);
  nn::save_checkpoint(p, m, &opt, sample_state());

  nn::SafetensorsFile f = read_safetensors(p);
  std::vector<std::string> names;
  for (const auto& [n, t] : f.tensors) names.push_back(n);
  CHECK(names == std::vector<std::string>{"model.count", "model.sub.b", "model.w", "optim.exp_avg.sub.b",
                                          "optim.exp_avg.w", "optim.exp_avg_sq.sub.b", "optim.exp_avg_sq.w"});
  Metadata expected = {{"format", "genvae-checkpoint"},
                       {"format_version", "1"},
                       {"optimizer", "adam"},
                       {"optimizer_steps", "1"},
                       {"lr", "0.003"},
                       {"step", "1234"},
                       {"epoch", "5"},
                       {"batch_in_epoch", "17"},
                       {"rng.data", "42:1000"},
                       {"rng.noise", "18446744073709551615:18446744073709551614"},
                       {"extra.config", R"({"model": "tiny"})"},
                       {"extra.note", ""}};
  CHECK(f.metadata == expected);
  CHECK(same_bytes(find_tensor(f, "model.w"), m.w.data()));
}

TEST_CASE("checkpoint: load restores model, buffers, optimizer and train state") {
  TempDir dir;
  std::string p = dir.file("ckpt.safetensors");
  Tiny saved(1);
  nn::Adam saved_opt(saved.named_parameters(), 0.003);
  take_a_step(saved_opt);
  take_a_step(saved_opt);
  nn::save_checkpoint(p, saved, &saved_opt, sample_state());

  Tiny m(2);
  Tensor w_handle = m.w.data();  // a handle taken before the load must see the loaded values
  nn::Adam opt(m.named_parameters(), 0.1);
  nn::TrainState s;
  s.rngs = {{"data", Generator(0)}, {"noise", Generator(0)}};  // the caller's order is kept
  nn::load_checkpoint(p, m, &opt, s);

  CHECK(same_bytes(w_handle, saved.w.data()));
  CHECK(same_bytes(m.sub->b.data(), saved.sub->b.data()));
  CHECK(m.named_buffers()[0].second.item() == 1);  // count
  CHECK(opt.steps() == 2);
  CHECK(opt.lr() == 0.003);
  auto st = opt.state(), saved_st = saved_opt.state();
  REQUIRE(st.size() == saved_st.size());
  for (size_t i = 0; i < st.size(); ++i) CHECK(same_bytes(st[i].second, saved_st[i].second));

  nn::TrainState want = sample_state();
  CHECK(s.step == 1234);
  CHECK(s.epoch == 5);
  CHECK(s.batch_in_epoch == 17);
  CHECK(s.extra == want.extra);
  REQUIRE(s.rngs.size() == 2);
  CHECK(s.rngs[0].first == "data");
  CHECK(s.rng("data").seed() == 42);
  CHECK(s.rng("data").offset() == 1000);
  CHECK(s.rng("noise").seed() == UINT64_MAX);
  CHECK(s.rng("noise").offset() == UINT64_MAX - 1);
  CHECK(contains(value_error([&] { s.rng("nope"); }), "no random stream named \"nope\" (have: [data, noise])"));

  // With no generators given, they come back in order of name; without an optimizer, its state is skipped.
  Tiny m2(3);
  nn::TrainState s2;
  nn::load_checkpoint(p, m2, nullptr, s2);
  REQUIRE(s2.rngs.size() == 2);
  CHECK(s2.rngs[0].first == "data");
  CHECK(s2.rngs[1].first == "noise");
  CHECK(same_bytes(m2.w.data(), saved.w.data()));
}

TEST_CASE("checkpoint: a model that does not fit is refused, all problems at once, nothing changed") {
  TempDir dir;
  std::string p = dir.file("ckpt.safetensors");
  Tiny saved(1);
  nn::save_checkpoint(p, saved, nullptr, sample_state());

  Other other;
  nn::TrainState s;
  std::string msg = value_error([&] { nn::load_checkpoint(p, other, nullptr, s); });
  INFO("message: ", msg);
  CHECK(contains(msg, p));
  CHECK(contains(msg, "(4 problems)"));
  CHECK(contains(msg, "mismatch: w: checkpoint float32[2, 3], model float32[3, 2]"));
  CHECK(contains(msg, "mismatch: sub.b: checkpoint float32[3], model float64[3]"));
  CHECK(contains(msg, "missing: gain (model float32[1])"));
  CHECK(contains(msg, "unexpected: model.count (checkpoint int64[])"));
  CHECK(other.w.data().to_vector<float>() == std::vector<float>(6, 1.0f));
  CHECK(s.step == 0);

  // A tensor that is neither model nor optimizer state is unexpected too.
  nn::SafetensorsFile f = read_safetensors(p);
  f.tensors.emplace_back("stray", Tensor::ones({1}));
  write_safetensors(p, f.tensors, f.metadata);
  Tiny m(2);
  CHECK(contains(value_error([&] { nn::load_checkpoint(p, m, nullptr, s); }), "unexpected: stray"));
}

TEST_CASE("checkpoint: optimizer and generator mismatches are refused, nothing changed") {
  TempDir dir;
  std::string with_adam = dir.file("adam.safetensors"), without = dir.file("none.safetensors");
  Tiny saved(1);
  nn::Adam saved_opt(saved.named_parameters(), 0.003);
  take_a_step(saved_opt);
  nn::save_checkpoint(with_adam, saved, &saved_opt, sample_state());
  nn::save_checkpoint(without, saved, nullptr, sample_state());

  Tiny m(2);
  const std::vector<float> w_before = m.w.data().to_vector<float>();
  nn::SGD sgd(m.named_parameters(), 0.5);
  nn::Adam adam(m.named_parameters(), 0.5);
  nn::TrainState s;
  CHECK(contains(value_error([&] { nn::load_checkpoint(with_adam, m, &sgd, s); }),
                 "holds adam optimizer state, but a sgd optimizer was given"));
  CHECK(contains(value_error([&] { nn::load_checkpoint(without, m, &adam, s); }),
                 "holds no optimizer state, but a adam optimizer was given"));
  s.rngs = {{"data", Generator(0)}, {"init", Generator(0)}};
  CHECK(contains(value_error([&] { nn::load_checkpoint(with_adam, m, &adam, s); }),
                 "the random streams differ: not in the file [init], only in the file [noise]"));
  s.rngs.clear();

  // Optimizer state that load_state refuses: the model, the learning rate and the state stay.
  nn::SafetensorsFile f = read_safetensors(with_adam);
  std::erase_if(f.tensors, [](const NamedTensor& t) { return t.first == "optim.exp_avg.w"; });
  write_safetensors(with_adam, f.tensors, f.metadata);
  CHECK_THROWS_AS(nn::load_checkpoint(with_adam, m, &adam, s), ValueError);
  CHECK(m.w.data().to_vector<float>() == w_before);
  CHECK(adam.lr() == 0.5);
  CHECK(adam.steps() == 0);
  CHECK(s.step == 0);
}

TEST_CASE("checkpoint: format, version and metadata fields are checked") {
  TempDir dir;
  std::string p = dir.file("ckpt.safetensors");
  Tiny m(1);
  nn::TrainState s;
  auto load_error = [&] { return io_error([&] { nn::load_checkpoint(p, m, nullptr, s); }); };

  write_safetensors(p, {{"model.w", Tensor::ones({2, 3})}});
  CHECK(contains(load_error(), "not a genvae checkpoint (metadata \"format\" is not \"genvae-checkpoint\")"));

  struct Case {
    const char* key;
    const char* value;  // "" removes the field
    const char* problem;
  };
  for (const Case& c : std::vector<Case>{
           {"format_version", "2",
            "written by a newer genvae (checkpoint format version 2; this build reads up to 1): update genvae"},
           {"format_version", "0", "invalid checkpoint format version 0"},
           {"format_version", "", "metadata field \"format_version\" is missing"},
           {"step", "12a", "metadata field \"step\" is \"12a\", not a valid number"},
           {"step", " 12", "metadata field \"step\" is \" 12\", not a valid number"},
           {"epoch", "", "metadata field \"epoch\" is missing"},
           {"batch_in_epoch", "99999999999999999999", "not a valid number"},
           {"rng.data", "42", "metadata field \"rng.data\" is \"42\", not \"<seed>:<offset>\""},
           {"rng.data", "42:-1", "metadata field \"rng.data\" is \"-1\", not a valid number"},
       }) {
    INFO(c.key, " = \"", c.value, "\"");
    nn::save_checkpoint(p, m, nullptr, sample_state());
    rewrite_metadata(p, c.key, c.value);
    std::string msg = load_error();
    CHECK(contains(msg, p));
    CHECK(contains(msg, c.problem));
  }
  CHECK(s.step == 0);  // none of the failed loads changed anything

  // A corrupt file fails as read_safetensors does.
  nn::save_checkpoint(p, m, nullptr, sample_state());
  write_bytes(p, read_bytes(p).substr(0, 20));
  CHECK(contains(load_error(), "is larger than the rest of the file"));
}

TEST_CASE("checkpoint: save refuses two random streams with one name, and can fail atomically") {
  TempDir dir;
  std::string p = dir.file("ckpt.safetensors");
  Tiny m(1);
  nn::TrainState s;
  s.rngs = {{"a", Generator(1)}, {"a", Generator(2)}};
  CHECK(contains(value_error([&] { nn::save_checkpoint(p, m, nullptr, s); }), "two random streams are named \"a\""));
  s.rngs.clear();
  nn::save_checkpoint(p, m, nullptr, s);
  const std::string before = read_bytes(p);
  s.step = 99;
  CHECK(contains(io_error([&] { nn::save_checkpoint(p, m, nullptr, s, nn::WriteOptions{100}); }), "simulated failure"));
  CHECK(read_bytes(p) == before);
  CHECK(dir.listing() == std::vector<std::string>{"ckpt.safetensors"});
}

// ---- exact resume -----------------------------------------------------------------------------
TEST_CASE("checkpoint: exact resume in one process (fresh model and optimizer objects)") {
  TempDir dir;
  const int64_t n = 7;  // mid-epoch: 5 batches per epoch
  resume_test::Run straight;
  straight.train(2 * n);
  straight.save(dir.file("straight.safetensors"));

  {
    resume_test::Run first_half;
    first_half.train(n);
    first_half.save(dir.file("half.safetensors"));
  }
  resume_test::Run resumed;
  resumed.load(dir.file("half.safetensors"));
  CHECK(resumed.state.step == n);
  CHECK(resumed.state.epoch == 1);
  CHECK(resumed.state.batch_in_epoch == 2);
  resumed.train(n);
  resumed.save(dir.file("resumed.safetensors"));
  CHECK(resume_test::compare_files(dir.file("straight.safetensors"), dir.file("resumed.safetensors")) == "");
  for (size_t i = 0; i < 4; ++i)
    CHECK(same_bytes(straight.model.parameters()[i].data(), resumed.model.parameters()[i].data()));

  // The check can fail: a resume that forgets the noise stream's position ends elsewhere.
  resume_test::Run forgetful;
  forgetful.load(dir.file("half.safetensors"));
  forgetful.state.rng("noise") = Generator(3);
  forgetful.train(n);
  forgetful.save(dir.file("forgetful.safetensors"));
  CHECK(contains(resume_test::compare_files(dir.file("straight.safetensors"), dir.file("forgetful.safetensors")),
                 "values differ"));
}

TEST_CASE("checkpoint: a non-finite weight is refused by file, tensor and first bad index, nothing changed") {
  TempDir dir;
  std::string p = dir.file("ckpt.safetensors");
  Tiny saved(1);
  nn::Adam saved_opt(saved.named_parameters(), 0.003);
  take_a_step(saved_opt);
  nn::save_checkpoint(p, saved, &saved_opt, sample_state());
  const nn::SafetensorsFile good = read_safetensors(p);

  auto with_value = [&](const std::string& name, int64_t element, double value) {
    nn::SafetensorsFile f = good;
    for (auto& [n, t] : f.tensors)
      if (n == name) {
        t = t.clone();
        if (t.dtype() == DType::f32) t.data<float>()[element] = (float)value;
        else t.data<double>()[element] = value;
      }
    write_safetensors(p, f.tensors, f.metadata);
  };
  for (double bad : {std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity(),
                     -std::numeric_limits<double>::infinity()}) {
    with_value("model.w", 5, bad);  // w is (2, 3): element 5 is [1, 2]
    Tiny m(2);
    const std::vector<float> before = m.w.data().to_vector<float>();
    nn::TrainState s;
    std::string msg;
    try {
      nn::load_checkpoint(p, m, nullptr, s);
    } catch (const gv::NonFiniteError& e) {
      msg = e.what();
    }
    INFO("message: ", msg);
    CHECK(contains(msg, p));
    CHECK(contains(msg, "tensor model.w [2, 3]"));
    CHECK(contains(msg, "at index [1, 2] (element 5 of 6)"));
    CHECK(m.w.data().to_vector<float>() == before);
    CHECK(s.step == 0);
  }
  // optimizer state is checked when an optimizer is loaded, and ignored without one
  std::string moment;
  for (const auto& [n, t] : good.tensors)
    if (n.rfind("optim.", 0) == 0 && t.dtype() == DType::f32 && t.numel() > 0) moment = n;
  REQUIRE(!moment.empty());
  with_value(moment, 0, std::numeric_limits<double>::quiet_NaN());
  Tiny m(2);
  nn::Adam opt(m.named_parameters(), 0.1);
  nn::TrainState s;
  CHECK_THROWS_WITH_AS(nn::load_checkpoint(p, m, &opt, s), doctest::Contains(("tensor " + moment).c_str()), gv::NonFiniteError);
  CHECK(opt.steps() == 0);
  CHECK_NOTHROW(nn::load_checkpoint(p, m, nullptr, s));
}

}  // namespace file_nn_test_checkpoint
