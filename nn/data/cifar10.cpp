// cifar10.cpp: loading CIFAR-10 from its JPEG tar.gz (or the unpacked folder), and the cache.
//
// The steps: collect the split's entries (path, label, encoded bytes in one blob) from the
// archive in one streaming pass, or from the folder; sort them by path; decode the first `limit`
// in parallel into bytes (N,3,32,32); scale them to float. The cache stores those bytes:
//   header (CacheHeader, 64 bytes) | labels (N bytes) | pixels (N*3*32*32 bytes, CHW per image)
// with a CRC-32 of everything after the header, and the source's fingerprint (size and mtime of
// the archive; number and total size of the files of a folder) to notice a changed source.
#include "nn/data/cifar10.h"

#include <archive.h>
#include <archive_entry.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <memory>
#include <optional>

#include "nn/data/images.h"

namespace gv::data {
namespace fs = std::filesystem;

const std::vector<std::string>& cifar10_classes() {
  static const std::vector<std::string> names = {"airplane", "automobile", "bird",  "cat",  "deer",
                                                 "dog",      "frog",       "horse", "ship", "truck"};
  return names;
}

namespace {

constexpr int64_t kSide = 32, kImageBytes = 3 * kSide * kSide;
constexpr int64_t kMaxEntryBytes = int64_t(1) << 24;  // a 32x32 image file is a few KB

// ---- collecting entries -------------------------------------------------------------------------
struct Entry {
  std::string path;  // <split>/<class>/<file> (with any leading folders of the archive)
  int64_t label;
  size_t offset, size;  // in Entries::blob
};

struct Entries {
  std::string source;  // the archive or folder, for messages
  bool is_archive = false;
  std::vector<uint8_t> blob;
  std::vector<Entry> list;
  int64_t unsafe_skipped = 0;  // archive members with an absolute path or '..', never taken as data
  std::string first_unsafe;
  std::string name(const Entry& e) const { return is_archive ? source + ":" + e.path : e.path; }
};

bool is_image_name(const std::string& file) {
  std::string ext = fs::path(file).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return (char)std::tolower(c); });
  return ext == ".jpg" || ext == ".jpeg" || ext == ".png";
}

// The label of <split>/<class>/<image file>, -1 for a path outside the split or not an image;
// an unknown class in the split is an IOError naming the entry.
int64_t label_of(const std::string& path, const std::string& split, const std::string& where) {
  std::vector<std::string> parts;
  for (const auto& p : fs::path(path)) {
    if (!p.empty() && p != ".") parts.push_back(p.string());
  }
  const size_t n = parts.size();
  if (n < 3 || parts[n - 3] != split || !is_image_name(parts[n - 1])) return -1;
  const auto& names = cifar10_classes();
  const auto it = std::find(names.begin(), names.end(), parts[n - 2]);
  GV_CHECK(it != names.end(), IOError,
           "load_cifar10: {}: unknown class folder '{}': expected one of {}", where, parts[n - 2],
           fmt::join(names, ", "));
  return it - names.begin();
}

}  // namespace

bool unsafe_member_path(const std::string& name) {
  if (name.empty() || name[0] == '/' || name[0] == '\\') return true;
  for (const auto& part : fs::path(name))
    if (part == "..") return true;
  return name.find("..\\") != std::string::npos || name.find("\\..") != std::string::npos;  // Windows separators
}

namespace {

struct ArchiveCloser {
  void operator()(archive* a) const { archive_read_free(a); }
};

// Appends the data of the current archive entry (size bytes) to the blob.
void read_entry_data(archive* a, Entries& out, const std::string& where, int64_t size) {
  GV_CHECK(size >= 0 && size <= kMaxEntryBytes, IOError,
           "load_cifar10: {}: entry of {} bytes: expected a small image file (at most {} bytes)", where,
           size, kMaxEntryBytes);
  const size_t start = out.blob.size();
  out.blob.resize(start + (size_t)size);
  size_t got = 0;
  while (got < (size_t)size) {
    const la_ssize_t r = archive_read_data(a, out.blob.data() + start + got, (size_t)size - got);
    GV_CHECK(r >= 0, IOError, "load_cifar10: {}: cannot read the entry: {} (libarchive)", where,
             archive_error_string(a) ? archive_error_string(a) : "unknown error");
    if (r == 0) break;
    got += (size_t)r;
  }
  GV_CHECK(got == (size_t)size, IOError, "load_cifar10: {}: truncated entry: {} of {} bytes", where, got, size);
}

void collect_from_archive(const std::string& path, const std::string& split, Entries& out) {
  std::unique_ptr<archive, ArchiveCloser> a(archive_read_new());
  GV_CHECK(a != nullptr, IOError, "load_cifar10: {}: libarchive: out of memory", path);
  archive_read_support_filter_all(a.get());
  archive_read_support_format_tar(a.get());
  GV_CHECK(archive_read_open_filename(a.get(), path.c_str(), 1 << 18) == ARCHIVE_OK, IOError,
           "load_cifar10: cannot open {} as a tar archive: {} (libarchive)", path,
           archive_error_string(a.get()) ? archive_error_string(a.get()) : "unknown error");
  archive_entry* entry = nullptr;
  int r;
  while ((r = archive_read_next_header(a.get(), &entry)) == ARCHIVE_OK || r == ARCHIVE_WARN) {
    const char* name = archive_entry_pathname(entry);
    if (name == nullptr || archive_entry_filetype(entry) != AE_IFREG) continue;
    const std::string where = path + ":" + name;
    if (unsafe_member_path(name)) {
      if (out.unsafe_skipped++ == 0) out.first_unsafe = name;
      continue;
    }
    const int64_t label = label_of(name, split, where);
    if (label < 0) continue;  // libarchive skips unread data by itself
    out.list.push_back({name, label, out.blob.size(), (size_t)archive_entry_size(entry)});
    read_entry_data(a.get(), out, where, archive_entry_size(entry));
  }
  GV_CHECK(r == ARCHIVE_EOF, IOError, "load_cifar10: {}: corrupt or truncated archive{}: {} (libarchive)",
           path, out.list.empty() ? "" : " after " + out.list.back().path,
           archive_error_string(a.get()) ? archive_error_string(a.get()) : "unknown error");
  if (out.unsafe_skipped > 0)
    std::fprintf(stderr,
                 "genvae: warning: load_cifar10: %s: skipped %lld archive member(s) with an absolute path or '..' "
                 "(the first: %s); they are never taken as data\n",
                 path.c_str(), (long long)out.unsafe_skipped, out.first_unsafe.c_str());
}

void collect_from_folder(const std::string& root, const std::string& split, Entries& out) {
  const fs::path dir = fs::path(root) / split;
  std::error_code ec;
  GV_CHECK(fs::is_directory(dir, ec), IOError,
           "load_cifar10: {} has no '{}' folder: expected {}/<class>/*.jpg", root, split, dir.string());
  for (fs::directory_iterator cls(dir, ec), end; !ec && cls != end; cls.increment(ec)) {
    std::error_code skip;
    if (!cls->is_directory(skip)) continue;
    for (fs::directory_iterator file(cls->path(), ec); !ec && file != end; file.increment(ec)) {
      const std::string rel = split + "/" + cls->path().filename().string() + "/" + file->path().filename().string();
      const int64_t label = label_of(rel, split, file->path().string());
      if (label < 0 || !file->is_regular_file(skip)) continue;
      const std::vector<uint8_t> bytes = read_file_bytes(file->path().string());
      out.list.push_back({rel, label, out.blob.size(), bytes.size()});
      out.blob.insert(out.blob.end(), bytes.begin(), bytes.end());
    }
  }
  GV_CHECK(!ec, IOError, "load_cifar10: cannot list {}: {}", dir.string(), ec.message());
}

Entries collect_entries(const std::string& path, const std::string& split) {
  std::error_code ec;
  GV_CHECK(fs::exists(path, ec), IOError,
           "load_cifar10: {} not found: expected the CIFAR-10 .tar.gz or its unpacked folder (set "
           "GENVAE_CIFAR10 or pass the path)",
           path);
  Entries out;
  out.source = path;
  out.is_archive = !fs::is_directory(path, ec);
  if (out.is_archive) collect_from_archive(path, split, out);
  else collect_from_folder(path, split, out);
  GV_CHECK(!out.list.empty(), IOError, "load_cifar10: {} holds no {}/<class>/*.jpg images", path, split);
  std::sort(out.list.begin(), out.list.end(), [](const Entry& a, const Entry& b) { return a.path < b.path; });
  for (size_t i = 1; i < out.list.size(); ++i)
    GV_CHECK(out.list[i].path != out.list[i - 1].path, IOError, "load_cifar10: {}: entry {} appears twice",
             path, out.list[i].path);
  return out;
}

// ---- decoding -----------------------------------------------------------------------------------
// A split as bytes: labels (N) and pixels (N,3,32,32).
struct RawSplit {
  int64_t n = 0, unsafe_skipped = 0;
  std::vector<uint8_t> labels, pixels;
};

// Checks that img is 32x32 RGB and writes it to dst in CHW order.
void store_chw(const Image& img, uint8_t* dst, const std::string& name) {
  GV_CHECK(img.height == kSide && img.width == kSide && img.channels == 3, IOError,
           "load_cifar10: {}: image of {}x{} pixels with {} channels: expected 32x32 RGB", name,
           img.height, img.width, img.channels);
  for (int64_t i = 0; i < kSide * kSide; ++i)
    for (int64_t c = 0; c < 3; ++c) dst[c * kSide * kSide + i] = img.pixels[i * 3 + c];
}

// Decodes the first n entries across OpenMP threads; the first failing entry's error is thrown.
RawSplit decode_entries(const Entries& in, int64_t n) {
  RawSplit raw;
  raw.n = n;
  raw.labels.resize((size_t)n);
  raw.pixels.resize((size_t)(n * kImageBytes));
  std::exception_ptr error;
  int64_t error_at = n;
#pragma omp parallel
  {
    ImageDecoder decoder;
#pragma omp for schedule(dynamic, 64)
    for (int64_t i = 0; i < n; ++i) {
      const Entry& e = in.list[i];
      try {
        const Image img = decoder.decode(in.blob.data() + e.offset, e.size, in.name(e));
        store_chw(img, raw.pixels.data() + i * kImageBytes, in.name(e));
        raw.labels[i] = (uint8_t)e.label;
      } catch (...) {
#pragma omp critical(gv_cifar10_decode)
        if (i < error_at) {
          error_at = i;
          error = std::current_exception();
        }
      }
    }
  }
  if (error) std::rethrow_exception(error);
  return raw;
}

Cifar10Split to_tensors(const RawSplit& raw) {
  Cifar10Split s;
  s.unsafe_skipped = raw.unsafe_skipped;
  s.images = Tensor::empty({raw.n, 3, kSide, kSide}, DType::f32);
  s.labels = Tensor::empty({raw.n}, DType::i64);
  float scale[256];
  for (int v = 0; v < 256; ++v) scale[v] = float(v) / 255.0f;
  float* img = s.images.data<float>();
  const int64_t total = raw.n * kImageBytes;
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < total; ++i) img[i] = scale[raw.pixels[i]];
  int64_t* lab = s.labels.data<int64_t>();
  for (int64_t i = 0; i < raw.n; ++i) lab[i] = raw.labels[i];
  return s;
}

RawSplit build_split(const std::string& path, bool train, int64_t limit) {
  const Entries entries = collect_entries(path, train ? "train" : "test");
  const int64_t n = limit < 0 ? (int64_t)entries.list.size() : std::min<int64_t>(limit, entries.list.size());
  RawSplit raw = decode_entries(entries, n);
  raw.unsafe_skipped = entries.unsafe_skipped;
  return raw;
}

// ---- cache --------------------------------------------------------------------------------------
constexpr char kCacheMagic[8] = {'G', 'V', 'C', 'I', 'F', 'A', 'R', '1'};
constexpr uint32_t kCacheVersion = 1, kByteOrder = 0x01020304;

struct CacheHeader {
  char magic[8];
  uint32_t version, byte_order;
  int64_t n, limit;
  uint32_t train, crc;      // crc: CRC-32 of labels and pixels
  uint64_t source_a;        // archive: size in bytes; folder: total size of its files
  int64_t source_b;         // archive: mtime in ns;   folder: number of files
  uint64_t reserved;
};
static_assert(sizeof(CacheHeader) == 64);

// What identifies the source's content cheaply.
std::pair<uint64_t, int64_t> source_fingerprint(const std::string& path, bool train) {
  std::error_code ec;
  if (!fs::is_directory(path, ec))
    return {fs::file_size(path, ec), (int64_t)fs::last_write_time(path, ec).time_since_epoch().count()};
  uint64_t bytes = 0;
  int64_t files = 0;
  for (fs::recursive_directory_iterator it(fs::path(path) / (train ? "train" : "test"), ec), end; !ec && it != end;
       it.increment(ec)) {
    std::error_code skip;
    if (it->is_regular_file(skip)) bytes += it->file_size(skip), ++files;
  }
  return {bytes, files};
}

uint32_t crc_of(const RawSplit& raw) {
  uLong crc = crc32(0L, Z_NULL, 0);
  crc = crc32_z(crc, raw.labels.data(), raw.labels.size());
  return (uint32_t)crc32_z(crc, raw.pixels.data(), raw.pixels.size());
}

fs::path cache_file(const std::string& dir, bool train, int64_t limit) {
  const std::string suffix = limit < 0 ? "" : fmt::format("-{}", limit);
  return fs::path(dir) / fmt::format("cifar10-{}{}.gvcache", train ? "train" : "test", suffix);
}

void warn(const std::string& message) { std::fprintf(stderr, "genvae: warning: %s\n", message.c_str()); }

using File = std::unique_ptr<FILE, decltype(&std::fclose)>;

// Reads the cache, or returns nullopt (with a warning when it exists but is unusable).
std::optional<RawSplit> read_cache(const fs::path& file, const CacheHeader& want) {
  std::error_code ec;
  if (!fs::exists(file, ec)) return std::nullopt;
  File f(std::fopen(file.c_str(), "rb"), &std::fclose);
  CacheHeader h{};
  const uint64_t size = fs::file_size(file, ec);
  auto bad = [&](const std::string& why) {
    warn(fmt::format("CIFAR-10 cache {} {}: rebuilding it", file.string(), why));
    return std::nullopt;
  };
  if (!f || std::fread(&h, sizeof h, 1, f.get()) != 1) return bad("is unreadable or shorter than its header");
  if (std::memcmp(h.magic, kCacheMagic, 8) != 0 || h.version != kCacheVersion || h.byte_order != kByteOrder)
    return bad("has a wrong magic number, version or byte order");
  if (h.n < 0 || size != sizeof h + (uint64_t)h.n * (1 + kImageBytes))
    return bad(fmt::format("has {} bytes, its header calls for {}", size, sizeof h + (uint64_t)std::max<int64_t>(h.n, 0) * (1 + kImageBytes)));
  if (h.train != want.train || h.limit != want.limit || h.source_a != want.source_a || h.source_b != want.source_b)
    return bad("was made from another source, split or limit");
  RawSplit raw;
  raw.n = h.n;
  raw.labels.resize((size_t)h.n);
  raw.pixels.resize((size_t)(h.n * kImageBytes));
  if (std::fread(raw.labels.data(), 1, raw.labels.size(), f.get()) != raw.labels.size() ||
      std::fread(raw.pixels.data(), 1, raw.pixels.size(), f.get()) != raw.pixels.size())
    return bad("cannot be read");
  if (crc_of(raw) != h.crc) return bad("fails its checksum");
  for (uint8_t l : raw.labels)
    if (l >= 10) return bad("holds a label outside 0..9");
  return raw;
}

bool write_all(FILE* f, const void* data, size_t n) { return std::fwrite(data, 1, n, f) == n; }

// Writes to a temporary file in the same folder, then renames it over the cache file.
void write_cache(const fs::path& file, CacheHeader h, const RawSplit& raw) {
  static std::atomic<int> counter{0};
  std::error_code ec;
  fs::create_directories(file.parent_path(), ec);
  const fs::path tmp = file.parent_path() / fmt::format(".{}.tmp.{}.{}", file.filename().string(), (long)getpid(), counter++);
  h.n = raw.n;
  h.crc = crc_of(raw);
  File f(std::fopen(tmp.c_str(), "wb"), &std::fclose);
  bool ok = f && write_all(f.get(), &h, sizeof h) && write_all(f.get(), raw.labels.data(), raw.labels.size()) &&
            write_all(f.get(), raw.pixels.data(), raw.pixels.size());
  ok = (f && std::fclose(f.release()) == 0) && ok;
  if (ok) fs::rename(tmp, file, ec);
  if (!ok || ec) {
    warn(fmt::format("cannot write the CIFAR-10 cache {}: {}", file.string(), ec ? ec.message() : std::strerror(errno)));
    fs::remove(tmp, ec);
  }
}

}  // namespace

Cifar10Split load_cifar10(const std::string& path, bool train, int64_t limit, const std::string& cache_dir) {
  GV_CHECK(limit >= -1, ValueError, "load_cifar10: limit must be -1 (all) or at least 0, got {}", limit);
  if (cache_dir.empty()) return to_tensors(build_split(path, train, limit));
  std::error_code ec;
  GV_CHECK(fs::exists(path, ec), IOError, "load_cifar10: {} not found: expected the CIFAR-10 .tar.gz or its unpacked folder", path);
  CacheHeader want{};
  std::memcpy(want.magic, kCacheMagic, 8);
  want.version = kCacheVersion;
  want.byte_order = kByteOrder;
  want.limit = limit;
  want.train = train;
  std::tie(want.source_a, want.source_b) = source_fingerprint(path, train);
  const fs::path file = cache_file(cache_dir, train, limit);
  if (std::optional<RawSplit> hit = read_cache(file, want)) return to_tensors(*hit);
  const RawSplit raw = build_split(path, train, limit);
  write_cache(file, want, raw);
  return to_tensors(raw);
}

std::string default_cifar10_path() {
  const char* env = std::getenv("GENVAE_CIFAR10");
  if (env != nullptr && *env != '\0') return env;
  const fs::path rel = fs::path("..") / "shared" / "data" / "cifar10" / "cifar10-jpg.tar.gz";
  std::error_code ec;
  if (fs::exists(rel, ec)) return rel.string();
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    fs::path dir = exe.parent_path();
    for (int up = 0; up < 5 && dir.has_relative_path(); ++up, dir = dir.parent_path()) {
      const fs::path candidate = (dir / rel).lexically_normal();
      if (fs::exists(candidate, ec)) return candidate.string();
    }
  }
  return rel.string();
}

}  // namespace gv::data
