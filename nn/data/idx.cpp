// idx.cpp: reading IDX files (plain or gzip-compressed) and loading MNIST splits from them.
//
// An IDX file is a 4-byte magic number (0x00, 0x00, type code, number of dims), then each dim
// as a big-endian uint32, then the elements in row-major order. Everything is read through
// ByteReader with bounded reads: the header first, then exactly the bytes the header promises
// (in chunks, so a lying header cannot make us allocate much more than the file holds), then a
// check that nothing follows.
#include "nn/data/idx.h"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>

namespace gv::data {
namespace fs = std::filesystem;

namespace {

// ---- ByteReader: the bytes of a plain file or of a gzip stream --------------------------------
// read() returns fewer bytes than asked only at the end of the data; an I/O error or a corrupt
// or truncated gzip stream throws IOError naming the file.
class ByteReader {
 public:
  explicit ByteReader(const std::string& path) : path_(path) {
    std::error_code ec;
    GV_CHECK(!fs::is_directory(path, ec), IOError, "read_idx: cannot read {}: it is a directory",
             path);
    file_ = std::fopen(path.c_str(), "rb");
    GV_CHECK(file_ != nullptr, IOError, "read_idx: cannot open {}: {}", path, std::strerror(errno));
    if (starts_with_gzip_magic()) open_gzip();
  }
  ~ByteReader() {
    if (gz_) gzclose(gz_);
    if (file_) std::fclose(file_);
  }
  ByteReader(const ByteReader&) = delete;
  ByteReader& operator=(const ByteReader&) = delete;

  bool is_gzip() const { return gz_ != nullptr; }
  const std::string& path() const { return path_; }

  size_t read(uint8_t* dst, size_t n) {
    size_t total = 0;
    while (total < n) {
      size_t got = is_gzip() ? read_gzip(dst + total, n - total) : read_plain(dst + total, n - total);
      if (got == 0) break;
      total += got;
    }
    return total;
  }

 private:
  // Looks at the first two bytes (1f 8b for gzip) and rewinds.
  bool starts_with_gzip_magic() {
    unsigned char m[2] = {0, 0};
    size_t got = std::fread(m, 1, 2, file_);
    GV_CHECK(!std::ferror(file_), IOError, "read_idx: cannot read {}: {}", path_, std::strerror(errno));
    std::rewind(file_);
    return got == 2 && m[0] == 0x1f && m[1] == 0x8b;
  }

  void open_gzip() {
    std::fclose(file_);
    file_ = nullptr;
    errno = 0;
    gz_ = gzopen(path_.c_str(), "rb");
    GV_CHECK(gz_ != nullptr, IOError, "read_idx: cannot open {} as gzip: {}", path_,
             errno ? std::strerror(errno) : "out of memory");
    gzbuffer(gz_, 1 << 18);  // fewer, larger reads: inflate is then the only cost
  }

  size_t read_plain(uint8_t* dst, size_t n) {
    size_t got = std::fread(dst, 1, n, file_);
    GV_CHECK(!std::ferror(file_), IOError, "read_idx: cannot read {}: {}", path_, std::strerror(errno));
    return got;
  }

  size_t read_gzip(uint8_t* dst, size_t n) {
    unsigned ask = (unsigned)std::min<size_t>(n, size_t(1) << 30);  // gzread takes an unsigned
    int got = gzread(gz_, dst, ask);
    if (got < 0 || (unsigned)got < ask) check_gzip_error();
    return got < 0 ? 0 : (size_t)got;
  }

  // zlib reports a truncated stream as a soft error after a short read, so look after each one.
  void check_gzip_error() {
    int code = Z_OK;
    const char* msg = gzerror(gz_, &code);
    if (code == Z_OK) return;
    std::string what = code == Z_ERRNO ? std::strerror(errno) : msg;
    if (what.rfind(path_ + ": ", 0) == 0) what.erase(0, path_.size() + 2);  // zlib adds the path
    GV_THROW(IOError, "read_idx: {}: corrupt or truncated gzip stream: {} (zlib)", path_, what);
  }

  std::string path_;
  FILE* file_ = nullptr;
  gzFile gz_ = nullptr;
};

// ---- header -----------------------------------------------------------------------------------
uint32_t big_endian_u32(const uint8_t* p) {
  return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | uint32_t(p[3]);
}

const char* idx_type_name(uint8_t code) {
  switch (code) {
    case 0x08: return "unsigned byte";
    case 0x09: return "signed byte";
    case 0x0B: return "int16";
    case 0x0C: return "int32";
    case 0x0D: return "float32";
    case 0x0E: return "float64";
  }
  return "not an IDX type";
}

std::string expected_magic(int rank) {
  if (rank >= 0) return fmt::format("0x{:08X}", 0x800 + rank);
  return "0x00000800 + number of dims (0x00000801 for labels, 0x00000803 for images)";
}

// Reads and checks the magic number; returns the number of dims.
int read_magic(ByteReader& in, int expected_rank) {
  uint8_t m[4];
  size_t got = in.read(m, 4);
  GV_CHECK(got == 4, IOError, "read_idx: {}: truncated IDX header: the file has {} bytes, the magic number alone needs 4",
           in.path(), got);
  const uint32_t magic = big_endian_u32(m);
  GV_CHECK(m[0] == 0 && m[1] == 0, IOError,
           "read_idx: {}: not an IDX file: expected magic number {}, found 0x{:08X}", in.path(),
           expected_magic(expected_rank), magic);
  GV_CHECK(m[2] == 0x08, IOError,
           "read_idx: {}: IDX type code 0x{:02X} ({}) is not supported, only 0x08 (unsigned byte) "
           "is (magic number 0x{:08X})",
           in.path(), m[2], idx_type_name(m[2]), magic);
  GV_CHECK(expected_rank < 0 || m[3] == expected_rank, IOError,
           "read_idx: {}: wrong IDX magic number: expected {} ({} dims), found 0x{:08X} ({} dims)",
           in.path(), expected_magic(expected_rank), expected_rank, magic, m[3]);
  return m[3];
}

std::vector<int64_t> read_dims(ByteReader& in, int ndims) {
  std::vector<uint8_t> raw(4 * (size_t)ndims);  // at most 255 dims: 1020 bytes
  size_t got = in.read(raw.data(), raw.size());
  GV_CHECK(got == raw.size(), IOError,
           "read_idx: {}: truncated IDX header: {} dims need {} bytes after the magic number, "
           "the file has {}",
           in.path(), ndims, raw.size(), got);
  std::vector<int64_t> dims(ndims);
  for (int i = 0; i < ndims; ++i) dims[i] = big_endian_u32(&raw[4 * i]);
  return dims;
}

// The number of elements, refusing more than kMaxIdxElements. Each dim is below 2^32 and the
// running product stays at most 2^31, so no product can overflow int64.
int64_t checked_numel(const std::vector<int64_t>& dims, const std::string& path) {
  int64_t n = 1;
  for (int64_t d : dims) {
    n *= d;
    GV_CHECK(n <= kMaxIdxElements, IOError,
             "read_idx: {}: IDX dims {} are absurd: more than {} elements (the limit is 2^31)",
             path, shape_str(dims), kMaxIdxElements);
  }
  return n;
}

// ---- body -------------------------------------------------------------------------------------
std::string size_mismatch(const ByteReader& in, const std::vector<int64_t>& dims, int64_t expected,
                          int64_t actual, bool at_least) {
  return fmt::format("its header (dims {}) calls for {} bytes, the file has {}{}{}", shape_str(dims),
                     expected, at_least ? "at least " : "", actual,
                     in.is_gzip() ? " after gzip decompression" : "");
}

// Reads exactly numel bytes, growing the buffer chunk by chunk as the data really arrives.
std::vector<uint8_t> read_body(ByteReader& in, const std::vector<int64_t>& dims, int64_t numel,
                               int64_t header_bytes) {
  constexpr size_t kChunk = size_t(1) << 24;
  std::vector<uint8_t> bytes;
  bytes.reserve(std::min<size_t>((size_t)numel, size_t(1) << 26));
  while (bytes.size() < (size_t)numel) {
    size_t old = bytes.size(), want = std::min(kChunk, (size_t)numel - old);
    bytes.resize(old + want);
    size_t got = in.read(bytes.data() + old, want);
    GV_CHECK(got == want, IOError, "read_idx: {}: truncated IDX file: {}", in.path(),
             size_mismatch(in, dims, header_bytes + numel, header_bytes + int64_t(old + got), false));
  }
  return bytes;
}

// Checks that nothing follows the data (counting at most 1 GiB of what does, for the message).
// For gzip, this last read is also what makes zlib verify the stream's checksum.
void check_no_trailing_bytes(ByteReader& in, const std::vector<int64_t>& dims, int64_t expected) {
  constexpr int64_t kCountCap = int64_t(1) << 30;
  std::vector<uint8_t> sink(1 << 16);
  int64_t extra = 0;
  while (extra < kCountCap) {
    size_t got = in.read(sink.data(), sink.size());
    if (got == 0) break;
    extra += (int64_t)got;
  }
  GV_CHECK(extra == 0, IOError, "read_idx: {}: {} trailing bytes after the IDX data: {}", in.path(),
           extra, size_mismatch(in, dims, expected, expected + extra, extra >= kCountCap));
}

// ---- MNIST ------------------------------------------------------------------------------------
// dir/name if it exists, else dir/name.gz if that does.
std::string find_split_file(const std::string& dir, const std::string& name) {
  const fs::path plain = fs::path(dir) / name;
  const fs::path gz = fs::path(dir) / (name + ".gz");
  std::error_code ec;
  if (fs::exists(plain, ec)) return plain.string();
  if (fs::exists(gz, ec)) return gz.string();
  GV_THROW(IOError,
           "load_mnist: found neither {} nor {} (set GENVAE_MNIST_DIR or pass the folder that "
           "holds the MNIST files)",
           plain.string(), gz.string());
}

Tensor images_to_tensor(const IdxArray& a, int64_t n) {
  float scale[256];
  for (int v = 0; v < 256; ++v) scale[v] = float(v) / 255.0f;
  Tensor t = Tensor::empty({n, 1, a.dims[1], a.dims[2]}, DType::f32);
  float* out = t.data<float>();
  const uint8_t* in = a.bytes.data();
  for (int64_t i = 0, m = t.numel(); i < m; ++i) out[i] = scale[in[i]];
  return t;
}

// Every label in the file is checked, not only the first n: a bad file is refused whatever --limit.
Tensor labels_to_tensor(const IdxArray& a, int64_t n, int64_t num_classes, const std::string& path) {
  for (size_t i = 0; i < a.bytes.size(); ++i)
    GV_CHECK(a.bytes[i] < num_classes, IOError,
             "load_mnist: {}: label {} at index {} (byte {} of the IDX data) is outside 0..{} ({} classes)", path, a.bytes[i], i,
             8 + i, num_classes - 1, num_classes);
  Tensor t = Tensor::empty({n}, DType::i64);
  int64_t* out = t.data<int64_t>();
  for (int64_t i = 0; i < n; ++i) out[i] = a.bytes[i];
  return t;
}

}  // namespace

IdxArray read_idx(const std::string& path, int expected_rank) {
  GV_CHECK(expected_rank >= -1 && expected_rank <= 255, ValueError,
           "read_idx: expected_rank must be -1 (any) or 0..255, got {}", expected_rank);
  ByteReader in(path);
  IdxArray a;
  const int ndims = read_magic(in, expected_rank);
  a.dims = read_dims(in, ndims);
  const int64_t numel = checked_numel(a.dims, path);
  const int64_t header_bytes = 4 + 4 * int64_t(ndims);
  a.bytes = read_body(in, a.dims, numel, header_bytes);
  check_no_trailing_bytes(in, a.dims, header_bytes + numel);
  return a;
}

MnistSplit load_mnist(const std::string& dir, bool train, int64_t limit, int64_t num_classes) {
  GV_CHECK(limit >= -1, ValueError, "load_mnist: limit must be -1 (all) or at least 0, got {}", limit);
  GV_CHECK(num_classes >= 1 && num_classes <= 256, ValueError, "load_mnist: num_classes must be in 1..256, got {}",
           num_classes);
  const std::string prefix = train ? "train" : "t10k";
  const std::string image_path = find_split_file(dir, prefix + "-images-idx3-ubyte");
  const std::string label_path = find_split_file(dir, prefix + "-labels-idx1-ubyte");
  const IdxArray images = read_idx(image_path, 3);
  const IdxArray labels = read_idx(label_path, 1);
  GV_CHECK(images.dims[0] == labels.dims[0], IOError,
           "load_mnist: {} holds {} images but {} holds {} labels", image_path, images.dims[0],
           label_path, labels.dims[0]);
  GV_CHECK(images.dims[1] > 0 && images.dims[2] > 0, IOError,
           "load_mnist: {}: images of {}x{} pixels", image_path, images.dims[1], images.dims[2]);
  const int64_t n = limit < 0 ? images.dims[0] : std::min(limit, images.dims[0]);
  return {images_to_tensor(images, n), labels_to_tensor(labels, n, num_classes, label_path), image_path, label_path};
}

std::string default_mnist_dir() {
  const char* env = std::getenv("GENVAE_MNIST_DIR");
  if (env != nullptr && *env != '\0') return env;
  const fs::path rel = fs::path("..") / "shared" / "data" / "mnist";
  std::error_code ec;
  if (fs::is_directory(rel, ec)) return rel.string();
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    fs::path dir = exe.parent_path();
    for (int up = 0; up < 5 && dir.has_relative_path(); ++up, dir = dir.parent_path()) {
      const fs::path candidate = (dir / rel).lexically_normal();
      if (fs::is_directory(candidate, ec)) return candidate.string();
    }
  }
  return rel.string();
}

}  // namespace gv::data
