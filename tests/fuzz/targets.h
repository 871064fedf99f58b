// targets.h: what the fuzzers run on each input, shared with the replay of tests/fuzz/corpus and
// tests/inputs/fuzz in the normal test suite (tests/nn/test_fuzz_regressions.cpp).
//
// Each fuzz_one_* hands arbitrary bytes to one file reader and either returns (the reader accepted
// them, and what it returned passed the checks below) or throws gv::Error (the reader refused
// them, which is what bad input must get). A broken invariant throws InvariantFailure, which is
// not a gv::Error: the fuzzer lets it escape (std::terminate, reported as a crash) and the replay
// test fails on it. Crashes and sanitizer findings stop the process in both.
//
//  * fuzz_one_idx: the bytes as an IDX file, read by gv::data::read_idx. When they do not start
//    with the gzip magic, the same bytes gzip-compressed are read too, and both reads must agree
//    (both refuse, or both return the same array), so the IDX parser is fuzzed behind zlib as well.
//  * fuzz_one_image: gv::data::decode_image on the bytes; a small decoded image then goes through
//    an encode_png / decode_png round trip (which must give it back), the channel conversions and
//    resize_and_crop.
//  * fuzz_one_safetensors: the bytes as a file, read by gv::nn::read_safetensors.
//
// The readers take paths, so the bytes go into a memfd (an anonymous in-memory file) opened by
// its /proc/self/fd path: nothing is written to disk, and nothing is left behind. Where memfd is
// unavailable, a per-process file in the temporary folder is used and removed at exit.
#pragma once
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/error.h"
#include "nn/checkpoint.h"
#include "nn/data/idx.h"
#include "nn/data/images.h"

namespace gv::fuzz {

// A reader returned something that contradicts its contract.
struct InvariantFailure : std::logic_error {
  using std::logic_error::logic_error;
};

#define GV_FUZZ_CHECK(cond, ...)                                                              \
  do {                                                                                        \
    if (!(cond))                                                                              \
      throw ::gv::fuzz::InvariantFailure(::fmt::format("fuzz invariant broken: " __VA_ARGS__) + \
                                         ::fmt::format(" [{}:{}]", __FILE__, __LINE__));      \
  } while (0)

// One scratch file, rewritten for each input; path() is what the readers are given.
class ScratchFile {
 public:
  explicit ScratchFile(const char* tag) {
    fd_ = ::memfd_create(tag, MFD_CLOEXEC);
    if (fd_ >= 0) {
      path_ = "/proc/self/fd/" + std::to_string(fd_);
    } else {
      path_ = (std::filesystem::temp_directory_path() /
               ("genvae-fuzz-" + std::to_string(::getpid()) + "-" + tag)).string();
      fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
      owns_path_ = true;
    }
    if (fd_ < 0) throw std::runtime_error("ScratchFile: cannot make a scratch file " + path_ + ": " + std::strerror(errno));
  }
  ~ScratchFile() {
    ::close(fd_);
    if (owns_path_) ::unlink(path_.c_str());
  }
  ScratchFile(const ScratchFile&) = delete;
  ScratchFile& operator=(const ScratchFile&) = delete;

  // Replaces the file's contents with the bytes; returns its path.
  const std::string& set(const uint8_t* data, size_t size) {
    if (::ftruncate(fd_, 0) != 0) fail("truncate");
    size_t done = 0;
    while (done < size) {
      ssize_t n = ::pwrite(fd_, data + done, size - done, (off_t)done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) fail("write");
      done += (size_t)n;
    }
    return path_;
  }

 private:
  [[noreturn]] void fail(const char* what) {
    throw std::runtime_error(std::string("ScratchFile: cannot ") + what + " " + path_ + ": " + std::strerror(errno));
  }
  int fd_ = -1;
  std::string path_;
  bool owns_path_ = false;
};

// The bytes as one gzip member (what `gzip` writes), at compression level 6.
inline std::vector<uint8_t> gzip_bytes(const uint8_t* data, size_t size) {
  z_stream z{};
  if (deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    throw std::runtime_error("gzip_bytes: deflateInit2 failed");
  std::vector<uint8_t> out(deflateBound(&z, (uLong)size) + 32);
  z.next_in = const_cast<Bytef*>(data);
  z.avail_in = (uInt)size;
  z.next_out = out.data();
  z.avail_out = (uInt)out.size();
  int rc = deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  if (rc != Z_STREAM_END) throw std::runtime_error("gzip_bytes: deflate did not finish");
  return out;
}

// ---- IDX ------------------------------------------------------------------------------------------
inline void check_idx_array(const data::IdxArray& a, int64_t file_size, bool gzip) {
  int64_t n = 1;
  for (int64_t d : a.dims) {
    GV_FUZZ_CHECK(d >= 0 && d <= 0xFFFFFFFFll, "read_idx: dim {} out of range", d);
    n *= d;
    GV_FUZZ_CHECK(n <= data::kMaxIdxElements, "read_idx: accepted more than kMaxIdxElements");
  }
  GV_FUZZ_CHECK(a.dims.size() <= 255, "read_idx: {} dims", a.dims.size());
  GV_FUZZ_CHECK((int64_t)a.bytes.size() == n, "read_idx: {} bytes for dims {}", a.bytes.size(), shape_str(a.dims));
  if (!gzip)  // a plain file holds exactly the header and the data
    GV_FUZZ_CHECK(file_size == 4 + 4 * (int64_t)a.dims.size() + n, "read_idx: a file of {} bytes gave dims {}",
                  file_size, shape_str(a.dims));
}

inline void fuzz_one_idx(const uint8_t* data, size_t size) {
  static ScratchFile plain_file("genvae-fuzz-idx"), gzip_file("genvae-fuzz-idx-gz");
  const bool is_gzip = size >= 2 && data[0] == 0x1f && data[1] == 0x8b;
  std::optional<data::IdxArray> plain;
  std::exception_ptr refused;
  try {
    plain = data::read_idx(plain_file.set(data, size));
    check_idx_array(*plain, (int64_t)size, is_gzip);
  } catch (const Error&) {
    refused = std::current_exception();
  }
  if (plain) {  // the rank check: the right rank is accepted, another one refused
    data::IdxArray again = data::read_idx(plain_file.set(data, size), (int)plain->dims.size());
    GV_FUZZ_CHECK(again.dims == plain->dims && again.bytes == plain->bytes, "read_idx: rank-checked read differs");
    bool wrong_rank_refused = false;
    try {
      data::read_idx(plain_file.set(data, size), ((int)plain->dims.size() + 1) % 256);
    } catch (const IOError&) {
      wrong_rank_refused = true;
    }
    GV_FUZZ_CHECK(wrong_rank_refused, "read_idx: a file of {} dims passed as another rank", plain->dims.size());
  }
  if (!is_gzip) {  // the same bytes behind gzip must read the same
    const std::vector<uint8_t> z = gzip_bytes(data, size);
    std::optional<data::IdxArray> unzipped;
    try {
      unzipped = data::read_idx(gzip_file.set(z.data(), z.size()));
      check_idx_array(*unzipped, (int64_t)z.size(), true);
    } catch (const Error&) {
    }
    GV_FUZZ_CHECK(plain.has_value() == unzipped.has_value(), "read_idx: the plain file was {} but its gzip {}",
                  plain ? "accepted" : "refused", unzipped ? "accepted" : "refused");
    if (plain)
      GV_FUZZ_CHECK(plain->dims == unzipped->dims && plain->bytes == unzipped->bytes,
                    "read_idx: the plain file and its gzip read differently");
  }
  if (refused) std::rethrow_exception(refused);
}

// ---- images ---------------------------------------------------------------------------------------
inline void check_image(const data::Image& img, const char* what) {
  GV_FUZZ_CHECK(img.height > 0 && img.width > 0 && img.channels >= 1 && img.channels <= 4,
                "{}: an image of {}x{}x{}", what, img.height, img.width, img.channels);
  GV_FUZZ_CHECK(img.height * img.width <= data::kMaxImagePixels, "{}: more than kMaxImagePixels", what);
  GV_FUZZ_CHECK(img.pixels.size() == (size_t)(img.height * img.width * img.channels),
                "{}: {} bytes for {}x{}x{}", what, img.pixels.size(), img.height, img.width, img.channels);
}

inline bool same_image(const data::Image& a, const data::Image& b) {
  return a.height == b.height && a.width == b.width && a.channels == b.channels && a.pixels == b.pixels;
}

inline void fuzz_one_image(const uint8_t* data, size_t size) {
  const data::Image img = data::decode_image(data, size, "fuzz-input");
  check_image(img, "decode_image");
  const data::ImageFormat format = data::detect_image_format(data, size);
  GV_FUZZ_CHECK(format != data::ImageFormat::unknown, "decode_image: accepted an unknown format");
  if (format == data::ImageFormat::jpeg)  // PNG may give any of 1..4 channels, JPEG gray or RGB
    GV_FUZZ_CHECK(img.channels == 1 || img.channels == 3, "decode_jpeg: {} channels", img.channels);
  if (img.height * img.width > 4096) return;  // the rest for small images only: it is about their shapes

  const std::vector<uint8_t> png = data::encode_png(img, "fuzz-roundtrip");
  GV_FUZZ_CHECK(same_image(data::decode_png(png.data(), png.size(), "fuzz-roundtrip"), img),
                "encode_png / decode_png did not give the image back");
  for (int64_t c : {1, 3}) check_image(data::convert_channels(img, c), "convert_channels");
  const int64_t size_out = 1 + (int64_t)(size % 7);
  for (auto filter : {data::ResizeFilter::area, data::ResizeFilter::bilinear}) {
    const data::Image small = data::resize_and_crop(img, size_out, filter);
    check_image(small, "resize_and_crop");
    GV_FUZZ_CHECK(small.height == size_out && small.width == size_out && small.channels == img.channels,
                  "resize_and_crop: {}x{}x{} from {}x{}x{} to size {}", small.height, small.width, small.channels,
                  img.height, img.width, img.channels, size_out);
  }
}

// ---- safetensors ----------------------------------------------------------------------------------
inline void fuzz_one_safetensors(const uint8_t* data, size_t size) {
  static ScratchFile file("genvae-fuzz-safetensors");
  const nn::SafetensorsFile f = nn::read_safetensors(file.set(data, size));
  uint64_t total = 0;
  for (size_t i = 0; i < f.tensors.size(); ++i) {
    const auto& [name, t] = f.tensors[i];
    GV_FUZZ_CHECK(name != "__metadata__", "read_safetensors: a tensor named __metadata__");
    GV_FUZZ_CHECK(i == 0 || f.tensors[i - 1].first < name, "read_safetensors: names not sorted and unique");
    GV_FUZZ_CHECK(t.is_contiguous() && t.device().is_cpu(), "read_safetensors: tensor \"{}\" not contiguous CPU",
                  name);
    GV_FUZZ_CHECK(t.dtype() == DType::f32 || t.dtype() == DType::f64 || t.dtype() == DType::i64,
                  "read_safetensors: tensor \"{}\" of an unexpected dtype", name);
    total += (uint64_t)t.numel() * dtype_size(t.dtype());
  }
  GV_FUZZ_CHECK(total + 8 <= size, "read_safetensors: {} bytes of tensors from a file of {}", total, size);
}

}  // namespace gv::fuzz
