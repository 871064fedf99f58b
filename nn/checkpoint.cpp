// checkpoint.cpp: the safetensors writer and reader, the atomic file write under them, and the
// checkpoint layer (model + optimizer + TrainState) on top. The format is described in
// checkpoint.h.
//
// Reading trusts nothing: the header length is checked against the file and a cap before any
// allocation, the JSON is parsed with a callback that catches duplicate keys (a plain parse keeps
// one silently), every field is type-checked, and the tensors' byte ranges must tile the data
// section exactly (no overlap, no hole, nothing past the end) before a byte of data is read.
#include "nn/checkpoint.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>

namespace gv::nn {
namespace fs = std::filesystem;
using nlohmann::json;

static_assert(std::endian::native == std::endian::little,
              "safetensors data is little-endian; a big-endian host would need byte swaps");

namespace {

// ---- dtypes ------------------------------------------------------------------------------------
const char* dtype_code(DType t) {
  switch (t) {
    case DType::f32: return "F32";
    case DType::f64: return "F64";
    case DType::i64: return "I64";
  }
  return "?";
}

std::optional<DType> dtype_from_code(const std::string& code) {
  for (DType t : {DType::f32, DType::f64, DType::i64})
    if (code == dtype_code(t)) return t;
  return std::nullopt;
}

std::string describe(DType t, const Shape& s) { return std::string(dtype_name(t)) + shape_str(s); }

// ---- AtomicFile: a temporary file beside the target, renamed over it on commit ----------------
// Until commit() succeeds the target is untouched; a destructor run without commit (an exception)
// closes and deletes the temporary file.
class AtomicFile {
 public:
  AtomicFile(const std::string& path, int64_t fail_after) : path_(path), fail_after_(fail_after) {
    fs::path p(path);
    dir_ = p.parent_path().empty() ? fs::path(".") : p.parent_path();
    open_unique(p.filename().string());
  }
  ~AtomicFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!committed_) ::unlink(tmp_.c_str());
  }
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(const void* data, size_t n) {
    const char* p = static_cast<const char*>(data);
    if (fail_after_ >= 0 && written_ + (int64_t)n > fail_after_) {
      write_all(p, size_t(fail_after_ - written_));
      GV_THROW(IOError, "write {}: simulated failure after {} bytes of {}", path_, fail_after_, tmp_);
    }
    write_all(p, n);
  }

  // fsync the file, rename it over the target, fsync the folder (so the rename is durable).
  void commit() {
    GV_CHECK(::fsync(fd_) == 0, IOError, "write {}: fsync failed: {}", path_, std::strerror(errno));
    int rc = ::close(fd_);
    fd_ = -1;
    GV_CHECK(rc == 0, IOError, "write {}: close failed: {}", path_, std::strerror(errno));
    GV_CHECK(::rename(tmp_.c_str(), path_.c_str()) == 0, IOError, "write {}: cannot rename {} over it: {}",
             path_, tmp_, std::strerror(errno));
    committed_ = true;
    sync_folder();
  }

 private:
  // ".<name>.tmp.<pid>.<n>" in the target's folder, created exclusively (never someone else's).
  void open_unique(const std::string& name) {
    static std::atomic<uint64_t> counter{0};
    for (int attempt = 0; attempt < 100; ++attempt) {
      uint64_t n = counter++ ^ (uint64_t)std::chrono::steady_clock::now().time_since_epoch().count();
      tmp_ = (dir_ / fmt::format(".{}.tmp.{}.{:x}", name, ::getpid(), n)).string();
      fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
      if (fd_ >= 0) return;
      if (errno != EEXIST) break;
    }
    int err = errno;
    GV_THROW(IOError, "write {}: cannot create a temporary file in {}: {}", path_, dir_.string(),
             std::strerror(err));
  }

  void write_all(const char* p, size_t n) {
    while (n > 0) {
      ssize_t got = ::write(fd_, p, n);
      if (got < 0 && errno == EINTR) continue;
      GV_CHECK(got > 0, IOError, "write {}: writing {} failed: {}", path_, tmp_, std::strerror(errno));
      p += got;
      n -= size_t(got);
      written_ += got;
    }
  }

  void sync_folder() {
    int dfd = ::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    GV_CHECK(dfd >= 0, IOError, "write {}: cannot open folder {} to sync it: {}", path_, dir_.string(),
             std::strerror(errno));
    int rc = ::fsync(dfd);
    int err = errno;
    ::close(dfd);
    GV_CHECK(rc == 0, IOError, "write {}: fsync of folder {} failed: {}", path_, dir_.string(), std::strerror(err));
  }

  std::string path_, tmp_;
  fs::path dir_;
  int fd_ = -1;
  int64_t written_ = 0, fail_after_;
  bool committed_ = false;
};

// ---- writing -----------------------------------------------------------------------------------
// Contiguous CPU copies (views of the originals when already so), sorted by name; checks names.
std::vector<NamedTensor> prepare_tensors(const std::vector<NamedTensor>& tensors) {
  std::vector<NamedTensor> out;
  out.reserve(tensors.size());
  for (const auto& [name, t] : tensors) {
    GV_CHECK(t.defined(), ValueError, "write_safetensors: tensor \"{}\" is undefined", name);
    GV_CHECK(name != "__metadata__", ValueError, "write_safetensors: \"__metadata__\" is reserved");
    out.emplace_back(name, t.to(Device::cpu()).contiguous());
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  for (size_t i = 1; i < out.size(); ++i)
    GV_CHECK(out[i - 1].first != out[i].first, ValueError, "write_safetensors: duplicate tensor name \"{}\"",
             out[i].first);
  return out;
}

// The JSON header, padded with spaces to a multiple of 8 bytes (8 + N is then too).
std::string make_header(const std::vector<NamedTensor>& tensors, const Metadata& metadata) {
  nlohmann::ordered_json h = nlohmann::ordered_json::object();
  if (!metadata.empty()) h["__metadata__"] = metadata;
  uint64_t pos = 0;
  for (const auto& [name, t] : tensors) {
    uint64_t bytes = uint64_t(t.numel()) * dtype_size(t.dtype());
    auto& e = h[name];
    e["dtype"] = dtype_code(t.dtype());
    e["shape"] = t.shape();
    e["data_offsets"] = {pos, pos + bytes};
    pos += bytes;
  }
  std::string text;
  try {
    text = h.dump();
  } catch (const json::exception& e) {  // a name or metadata string that is not valid UTF-8
    GV_THROW(ValueError, "write_safetensors: names and metadata must be UTF-8: {}", e.what());
  }
  text.append((8 - text.size() % 8) % 8, ' ');
  return text;
}

void put_u64_le(uint64_t v, unsigned char out[8]) {
  for (int i = 0; i < 8; ++i) out[i] = (unsigned char)(v >> (8 * i));
}

// ---- reading: the file ------------------------------------------------------------------------
// The problem is reported with the file's name: "read_safetensors: <path>: <problem>".
#define GV_BAD_FILE(path, ...) \
  GV_THROW(IOError, "read_safetensors: {}: {}", path, ::fmt::format(__VA_ARGS__))

class FileIn {
 public:
  explicit FileIn(const std::string& path) : path_(path) {
    std::error_code ec;
    if (fs::is_directory(path, ec)) GV_BAD_FILE(path, "is a directory");
    f_ = std::fopen(path.c_str(), "rb");
    if (!f_) GV_BAD_FILE(path, "cannot open: {}", std::strerror(errno));
    if (::fseeko(f_, 0, SEEK_END) != 0 || (size_ = ::ftello(f_)) < 0)
      GV_BAD_FILE(path, "cannot find its size: {}", std::strerror(errno));
  }
  ~FileIn() { std::fclose(f_); }
  FileIn(const FileIn&) = delete;
  FileIn& operator=(const FileIn&) = delete;

  uint64_t size() const { return uint64_t(size_); }
  void read_at(uint64_t offset, void* dst, size_t n) {
    if (n == 0) return;
    if (::fseeko(f_, off_t(offset), SEEK_SET) != 0) GV_BAD_FILE(path_, "cannot seek: {}", std::strerror(errno));
    size_t got = std::fread(dst, 1, n, f_);
    if (got != n) {
      if (std::ferror(f_)) GV_BAD_FILE(path_, "cannot read: {}", std::strerror(errno));
      GV_BAD_FILE(path_, "ended early (it changed while being read?)");
    }
  }

 private:
  std::string path_;
  FILE* f_ = nullptr;
  off_t size_ = 0;
};

// ---- reading: the header -----------------------------------------------------------------------
// Parses JSON, reporting the first key that appears twice in one object (at any depth).
json parse_header_json(const std::string& path, const std::string& text) {
  std::vector<std::set<std::string>> open_objects;  // keys seen in each object being parsed
  std::string duplicate;
  auto watch_keys = [&](int, json::parse_event_t event, json& parsed) {
    if (event == json::parse_event_t::object_start) open_objects.emplace_back();
    if (event == json::parse_event_t::object_end) open_objects.pop_back();
    if (event == json::parse_event_t::key && !open_objects.back().insert(parsed.get<std::string>()).second &&
        duplicate.empty())
      duplicate = parsed.get<std::string>();
    return true;
  };
  json h;
  try {
    h = json::parse(text, watch_keys);
  } catch (const json::exception& e) {
    GV_BAD_FILE(path, "the header is not valid JSON: {}", e.what());
  }
  if (!duplicate.empty()) GV_BAD_FILE(path, "duplicate key \"{}\" in the header", duplicate);
  if (!h.is_object()) GV_BAD_FILE(path, "the header is not a JSON object but {}", h.type_name());
  return h;
}

// One tensor's header entry, checked.
struct Entry {
  std::string name;
  DType dtype;
  Shape shape;
  uint64_t begin, end;
};

// A non-negative integer that fits int64; what is wrong with it otherwise.
std::optional<std::string> bad_count(const json& v) {
  if (v.is_number_unsigned()) {
    if (v.get<uint64_t>() > uint64_t(INT64_MAX)) return "too large";
    return std::nullopt;
  }
  if (v.is_number_integer()) return "negative";
  return "not an integer";
}

Shape parse_shape(const std::string& path, const std::string& name, const json& s) {
  if (!s.is_array()) GV_BAD_FILE(path, "tensor \"{}\": shape is not an array", name);
  Shape shape;
  for (const json& d : s) {
    if (auto why = bad_count(d)) GV_BAD_FILE(path, "tensor \"{}\": shape entry {} is {}", name, d.dump(), *why);
    shape.push_back(d.get<int64_t>());
  }
  return shape;
}

// Bytes of a tensor of this shape and dtype; rejects shapes whose size overflows int64, and also
// those whose contiguous strides would: with a 0 among them, the product of the other dims.
uint64_t checked_nbytes(const std::string& path, const std::string& name, const Shape& shape, DType dtype) {
  int64_t n = 1, span = 1;
  for (int64_t d : shape)
    if (__builtin_mul_overflow(n, d, &n) || __builtin_mul_overflow(span, std::max<int64_t>(d, 1), &span))
      GV_BAD_FILE(path, "tensor \"{}\": the size of shape {} overflows", name, shape_str(shape));
  int64_t bytes;
  if (__builtin_mul_overflow(n, int64_t(dtype_size(dtype)), &bytes))
    GV_BAD_FILE(path, "tensor \"{}\": the size of shape {} overflows", name, shape_str(shape));
  return uint64_t(bytes);
}

Entry parse_entry(const std::string& path, const std::string& name, const json& v, uint64_t data_size) {
  if (!v.is_object()) GV_BAD_FILE(path, "tensor \"{}\": entry is not an object", name);
  for (const char* field : {"dtype", "shape", "data_offsets"})
    if (!v.contains(field)) GV_BAD_FILE(path, "tensor \"{}\": \"{}\" is missing", name, field);
  if (v.size() != 3) GV_BAD_FILE(path, "tensor \"{}\": unknown fields in {}", name, v.dump());
  const json& dt = v["dtype"];
  std::optional<DType> dtype = dt.is_string() ? dtype_from_code(dt.get<std::string>()) : std::nullopt;
  if (!dtype) GV_BAD_FILE(path, "tensor \"{}\": unsupported dtype {} (genvae reads F32, F64, I64)", name, dt.dump());
  Entry e{name, *dtype, parse_shape(path, name, v["shape"]), 0, 0};
  uint64_t nbytes = checked_nbytes(path, name, e.shape, e.dtype);

  const json& off = v["data_offsets"];
  if (!off.is_array() || off.size() != 2 || bad_count(off[0]) || bad_count(off[1]))
    GV_BAD_FILE(path, "tensor \"{}\": data_offsets {} is not [begin, end] of non-negative integers", name,
                off.dump());
  e.begin = off[0].get<uint64_t>();
  e.end = off[1].get<uint64_t>();
  if (e.begin > e.end)
    GV_BAD_FILE(path, "tensor \"{}\": data_offsets [{}, {}] end before they begin", name, e.begin, e.end);
  if (e.end > data_size)
    GV_BAD_FILE(path, "tensor \"{}\": data_offsets [{}, {}] go past the end of the data section ({} bytes)", name,
                e.begin, e.end, data_size);
  if (e.end - e.begin != nbytes)
    GV_BAD_FILE(path, "tensor \"{}\": data_offsets [{}, {}] hold {} bytes but {} {} needs {}", name, e.begin, e.end,
                e.end - e.begin, dtype_code(e.dtype), shape_str(e.shape), nbytes);
  return e;
}

Metadata parse_metadata(const std::string& path, const json& m) {
  if (!m.is_object()) GV_BAD_FILE(path, "__metadata__ is not an object");
  Metadata out;
  for (const auto& [k, v] : m.items()) {
    if (!v.is_string()) GV_BAD_FILE(path, "metadata value of \"{}\" is not a string but {}", k, v.dump());
    out[k] = v.get<std::string>();
  }
  return out;
}

// The byte ranges must tile [0, data_size): sorted by offset, each begins where the last ended.
void check_tiling(const std::string& path, std::vector<const Entry*> entries, uint64_t data_size) {
  std::stable_sort(entries.begin(), entries.end(),  // ties stay in order of name
            [](const Entry* a, const Entry* b) { return std::pair(a->begin, a->end) < std::pair(b->begin, b->end); });
  uint64_t pos = 0;
  const Entry* prev = nullptr;
  for (const Entry* e : entries) {
    if (e->begin < pos)
      GV_BAD_FILE(path, "tensors \"{}\" [{}, {}) and \"{}\" [{}, {}) overlap", prev->name, prev->begin, prev->end,
                  e->name, e->begin, e->end);
    if (e->begin > pos)
      GV_BAD_FILE(path, "bytes [{}, {}) of the data section belong to no tensor (a hole before \"{}\")", pos, e->begin,
                  e->name);
    pos = e->end;
    prev = e;
  }
  if (pos < data_size)
    GV_BAD_FILE(path, "bytes [{}, {}) at the end of the data section belong to no tensor", pos, data_size);
}

uint64_t get_u64_le(const unsigned char in[8]) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | in[i];
  return v;
}

// ---- checkpoint metadata -----------------------------------------------------------------------
constexpr const char* kFormat = "genvae-checkpoint";

#define GV_BAD_CKPT(path, ...) \
  GV_THROW(IOError, "load_checkpoint: {}: {}", path, ::fmt::format(__VA_ARGS__))

const std::string& field(const std::string& path, const Metadata& md, const std::string& key) {
  auto it = md.find(key);
  if (it == md.end()) GV_BAD_CKPT(path, "metadata field \"{}\" is missing", key);
  return it->second;
}

// A whole string as one number (no sign for unsigned types, no spaces, nothing after).
template <class T>
T parse_number(const std::string& path, const std::string& key, const std::string& text) {
  T value{};
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty())
    GV_BAD_CKPT(path, "metadata field \"{}\" is \"{}\", not a valid number", key, text);
  return value;
}

template <class T>
T number_field(const std::string& path, const Metadata& md, const std::string& key) {
  return parse_number<T>(path, key, field(path, md, key));
}

void check_format(const std::string& path, const Metadata& md) {
  auto it = md.find("format");
  if (it == md.end() || it->second != kFormat)
    GV_BAD_CKPT(path, "not a genvae checkpoint (metadata \"format\" is not \"{}\")", kFormat);
  int64_t v = number_field<int64_t>(path, md, "format_version");
  if (v > kCheckpointFormatVersion)
    GV_BAD_CKPT(path, "written by a newer genvae (checkpoint format version {}; this build reads up to {}): "
                "update genvae to load it", v, kCheckpointFormatVersion);
  if (v < 1) GV_BAD_CKPT(path, "invalid checkpoint format version {}", v);
}

Generator parse_rng(const std::string& path, const std::string& key, const std::string& text) {
  auto colon = text.find(':');
  if (colon == std::string::npos)
    GV_BAD_CKPT(path, "metadata field \"{}\" is \"{}\", not \"<seed>:<offset>\"", key, text);
  Generator g;
  g.set_state(parse_number<uint64_t>(path, key, text.substr(0, colon)),
              parse_number<uint64_t>(path, key, text.substr(colon + 1)));
  return g;
}

bool starts_with(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

// step, epoch, batch_in_epoch, rng.* (in order of name) and extra.* from the metadata.
TrainState parse_train_state(const std::string& path, const Metadata& md) {
  TrainState s;
  s.step = number_field<int64_t>(path, md, "step");
  s.epoch = number_field<int64_t>(path, md, "epoch");
  s.batch_in_epoch = number_field<int64_t>(path, md, "batch_in_epoch");
  for (const auto& [k, v] : md) {
    if (starts_with(k, "rng.")) s.rngs.emplace_back(k.substr(4), parse_rng(path, k, v));
    if (starts_with(k, "extra.")) s.extra[k.substr(6)] = v;
  }
  return s;
}

Metadata checkpoint_metadata(const Optimizer* opt, const TrainState& s) {
  Metadata md{{"format", kFormat},
              {"format_version", std::to_string(kCheckpointFormatVersion)},
              {"step", std::to_string(s.step)},
              {"epoch", std::to_string(s.epoch)},
              {"batch_in_epoch", std::to_string(s.batch_in_epoch)}};
  if (opt) {
    md["optimizer"] = opt->kind();
    md["optimizer_steps"] = std::to_string(opt->steps());
    md["lr"] = fmt::format("{}", opt->lr());  // shortest text that reads back to the same double
  }
  for (const auto& [name, g] : s.rngs) {
    GV_CHECK(md.emplace("rng." + name, fmt::format("{}:{}", g.seed(), g.offset())).second, ValueError,
             "save_checkpoint: two random streams are named \"{}\"", name);
  }
  for (const auto& [k, v] : s.extra) md["extra." + k] = v;
  return md;
}

// ---- checkpoint tensors ------------------------------------------------------------------------
struct CheckpointTensors {
  std::map<std::string, Tensor> model;  // without the "model." prefix
  std::vector<NamedTensor> optim;       // without the "optim." prefix
  std::vector<std::string> other;       // names with neither prefix
};

CheckpointTensors split_tensors(std::vector<NamedTensor> tensors) {
  CheckpointTensors out;
  for (auto& [name, t] : tensors) {
    if (starts_with(name, "model.")) out.model[name.substr(6)] = std::move(t);
    else if (starts_with(name, "optim.")) out.optim.emplace_back(name.substr(6), std::move(t));
    else out.other.push_back(name);
  }
  return out;
}

// Every parameter and buffer of the module, by name.
std::map<std::string, Tensor> module_tensors(const Module& m) {
  std::map<std::string, Tensor> out;
  for (const auto& [name, v] : m.named_parameters()) out[name] = v.data();
  for (const auto& [name, b] : m.named_buffers()) out[name] = b;
  return out;
}

// A weight that is NaN or infinite would train or evaluate into garbage: refused by name, with its
// first bad index, before anything is loaded.
void check_finite_tensor(const std::string& path, const std::string& name, const Tensor& t) {
  if (const auto bad = first_non_finite(t))
    GV_THROW(NonFiniteError, "{}: tensor {} {} holds {} at index {} (element {} of {}): a checkpoint's weights must "
             "be finite; this file cannot be used (resume from an earlier checkpoint, or train again)",
             path, name, shape_str(t.shape()), bad->value, index_str(t.shape(), bad->index), bad->index, t.numel());
}

// All the ways the file's model tensors differ from the module's, in one ValueError.
void check_model(const std::string& path, const Module& model, const CheckpointTensors& ck) {
  std::vector<std::string> problems;
  auto mine = module_tensors(model);
  for (const auto& [name, t] : mine) {
    auto it = ck.model.find(name);
    if (it == ck.model.end())
      problems.push_back(fmt::format("missing: {} (model {})", name, describe(t.dtype(), t.shape())));
    else if (it->second.dtype() != t.dtype() || it->second.shape() != t.shape())
      problems.push_back(fmt::format("mismatch: {}: checkpoint {}, model {}", name,
                                     describe(it->second.dtype(), it->second.shape()), describe(t.dtype(), t.shape())));
  }
  for (const auto& [name, t] : ck.model)
    if (!mine.count(name))
      problems.push_back(fmt::format("unexpected: model.{} (checkpoint {})", name, describe(t.dtype(), t.shape())));
  for (const auto& name : ck.other) problems.push_back(fmt::format("unexpected: {}", name));
  if (problems.empty()) return;
  GV_THROW(ValueError, "load_checkpoint: {} does not fit the model ({} problems):\n  {}", path, problems.size(),
           fmt::join(problems, "\n  "));
}

// The caller's generators (names kept, in their order) with the file's states; see checkpoint.h.
std::vector<std::pair<std::string, Generator>> match_rngs(const std::string& path,
                                                          const std::vector<std::pair<std::string, Generator>>& mine,
                                                          const std::vector<std::pair<std::string, Generator>>& file) {
  if (mine.empty()) return file;
  std::map<std::string, Generator> stored(file.begin(), file.end());
  std::vector<std::string> missing, unexpected;
  auto out = mine;
  for (auto& [name, g] : out) {
    auto it = stored.find(name);
    if (it == stored.end()) missing.push_back(name);
    else g = it->second, stored.erase(it);
  }
  for (const auto& [name, g] : stored) unexpected.push_back(name);
  GV_CHECK(missing.empty() && unexpected.empty(), ValueError,
           "load_checkpoint: {}: the random streams differ: not in the file [{}], only in the file [{}]", path,
           fmt::join(missing, ", "), fmt::join(unexpected, ", "));
  return out;
}

// Checks the optimizer's kind and reads its step count and learning rate from the metadata.
std::pair<int64_t, double> optimizer_fields(const std::string& path, const Metadata& md, const Optimizer& opt) {
  auto it = md.find("optimizer");
  GV_CHECK(it != md.end(), ValueError, "load_checkpoint: {} holds no optimizer state, but a {} optimizer was given",
           path, opt.kind());
  GV_CHECK(it->second == opt.kind(), ValueError,
           "load_checkpoint: {} holds {} optimizer state, but a {} optimizer was given", path, it->second, opt.kind());
  return {number_field<int64_t>(path, md, "optimizer_steps"), number_field<double>(path, md, "lr")};
}

// Values into the existing tensors (parameters) or through set_buffer (buffers). Checked before.
void copy_into_model(Module& model, const CheckpointTensors& ck) {
  for (const auto& [name, v] : model.named_parameters()) {
    Tensor dst = v.data();
    dst.copy_(ck.model.at(name).to(dst.device()));
  }
  for (const auto& [name, b] : model.named_buffers()) model.set_buffer(name, ck.model.at(name).to(b.device()));
}

}  // namespace

// ---- public API --------------------------------------------------------------------------------
void write_safetensors(const std::string& path, const std::vector<NamedTensor>& tensors, const Metadata& metadata,
                       const WriteOptions& options) {
  std::vector<NamedTensor> sorted = prepare_tensors(tensors);
  std::string header = make_header(sorted, metadata);
  unsigned char len[8];
  put_u64_le(header.size(), len);

  AtomicFile file(path, options.fail_after_bytes);
  file.write(len, 8);
  file.write(header.data(), header.size());
  for (const auto& [name, t] : sorted)
    if (t.numel() > 0) file.write(t.raw_data(), size_t(t.numel()) * dtype_size(t.dtype()));
  file.commit();
}

SafetensorsFile read_safetensors(const std::string& path) {
  FileIn in(path);
  if (in.size() < 8) GV_BAD_FILE(path, "the file is {} bytes, shorter than the 8-byte header length", in.size());
  unsigned char len_bytes[8];
  in.read_at(0, len_bytes, 8);
  uint64_t n = get_u64_le(len_bytes);
  if (n > kMaxSafetensorsHeader)
    GV_BAD_FILE(path, "header length {} is over the limit of {} bytes", n, kMaxSafetensorsHeader);
  if (n > in.size() - 8)
    GV_BAD_FILE(path, "header length {} is larger than the rest of the file ({} bytes)", n, in.size() - 8);
  std::string text(n, '\0');
  in.read_at(8, text.data(), n);
  json header = parse_header_json(path, text);

  uint64_t data_size = in.size() - 8 - n;
  SafetensorsFile out;
  std::vector<Entry> entries;  // in order of name (json objects iterate sorted by key)
  for (const auto& [key, value] : header.items()) {
    if (key == "__metadata__") out.metadata = parse_metadata(path, value);
    else entries.push_back(parse_entry(path, key, value, data_size));
  }
  std::vector<const Entry*> ptrs;
  for (const Entry& e : entries) ptrs.push_back(&e);
  check_tiling(path, ptrs, data_size);

  for (const Entry& e : entries) {
    Tensor t = Tensor::empty(e.shape, e.dtype);
    if (e.end > e.begin) in.read_at(8 + n + e.begin, t.raw_data(), size_t(e.end - e.begin));
    out.tensors.emplace_back(e.name, std::move(t));
  }
  return out;
}

Generator& TrainState::rng(const std::string& name) {
  for (auto& [n, g] : rngs)
    if (n == name) return g;
  std::vector<std::string> names;
  for (const auto& [n, g] : rngs) names.push_back(n);
  GV_THROW(ValueError, "TrainState::rng: no random stream named \"{}\" (have: [{}])", name, fmt::join(names, ", "));
}

void save_checkpoint(const std::string& path, const Module& model, const Optimizer* optimizer, const TrainState& state,
                     const WriteOptions& options) {
  std::vector<NamedTensor> tensors;
  for (const auto& [name, v] : model.named_parameters()) tensors.emplace_back("model." + name, v.data());
  for (const auto& [name, b] : model.named_buffers()) tensors.emplace_back("model." + name, b);
  if (optimizer)
    for (const auto& [name, t] : optimizer->state()) tensors.emplace_back("optim." + name, t);
  write_safetensors(path, tensors, checkpoint_metadata(optimizer, state), options);
}

void load_checkpoint(const std::string& path, Module& model, Optimizer* optimizer, TrainState& state) {
  SafetensorsFile file = read_safetensors(path);
  check_format(path, file.metadata);
  TrainState loaded = parse_train_state(path, file.metadata);
  CheckpointTensors ck = split_tensors(std::move(file.tensors));
  check_model(path, model, ck);
  for (const auto& [name, t] : ck.model) check_finite_tensor(path, "model." + name, t);
  if (optimizer)
    for (const auto& [name, t] : ck.optim) check_finite_tensor(path, "optim." + name, t);
  loaded.rngs = match_rngs(path, state.rngs, loaded.rngs);

  // Nothing has changed yet. load_state checks its tensors before it changes anything, and what
  // follows it cannot fail, so a failed load leaves model, optimizer and state as they were.
  if (optimizer) {
    auto [steps, lr] = optimizer_fields(path, file.metadata, *optimizer);
    double old_lr = optimizer->lr();
    optimizer->set_lr(lr);
    try {
      optimizer->load_state(ck.optim, steps);
    } catch (...) {
      optimizer->set_lr(old_lr);
      throw;
    }
  }
  copy_into_model(model, ck);
  state = std::move(loaded);
}

#undef GV_BAD_FILE
#undef GV_BAD_CKPT

}  // namespace gv::nn
