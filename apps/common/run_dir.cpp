// run_dir.cpp: creating, checking and writing the run directory (run_dir.h).
#include "apps/common/run_dir.h"

#include <cmath>
#include <fstream>

#include <fmt/format.h>

#include "engine/error.h"

namespace gv::app {
namespace fs = std::filesystem;

namespace {

bool is_empty_dir(const fs::path& p) { return fs::is_directory(p) && fs::directory_iterator(p) == fs::directory_iterator(); }

// A folder some earlier run wrote: it holds one of the files only a run writes.
bool looks_like_run(const fs::path& p) {
  for (const char* f : {"config.json", "metrics.jsonl", "checkpoint.safetensors"})
    if (fs::exists(p / f)) return true;
  return false;
}

void write_text_atomic(const std::string& path, const std::string& text) {
  std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    GV_CHECK(f, IOError, "cannot write {}", tmp);
    f << text;
    f.flush();
    GV_CHECK(f, IOError, "failed writing {}", tmp);
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  GV_CHECK(!ec, IOError, "cannot rename {} to {}: {}", tmp, path, ec.message());
}

}  // namespace

void RunDir::check(const std::string& path, RunDirMode mode) {
  const fs::path p(path);
  GV_CHECK(!path.empty(), ValueError, "run directory: the path is empty (--out)");
  GV_CHECK(!fs::exists(p) || fs::is_directory(p), IOError, "run directory {} exists and is not a folder", path);
  if (mode == RunDirMode::resume) {
    GV_CHECK(fs::exists(p / "config.json"), IOError,
             "--resume {}: no config.json there (not a run directory, or the run never started)", path);
    return;
  }
  if (fs::exists(p) && !is_empty_dir(p)) {
    GV_CHECK(mode == RunDirMode::force, IOError,
             "run directory {} exists and is not empty: pass --resume {} to continue that run, --force to "
             "delete it and start over, or another --out",
             path, path);
    GV_CHECK(looks_like_run(p), IOError,
             "--force: {} is not empty and holds no earlier run (no config.json, metrics.jsonl or checkpoint); "
             "refusing to delete it",
             path);
  }
}

RunDir::RunDir(const std::string& path, RunDirMode mode) : path_(path) {
  check(path, mode);
  if (mode == RunDirMode::resume) return;
  if (mode == RunDirMode::force && fs::exists(path_) && !is_empty_dir(path_)) fs::remove_all(path_);
  std::error_code ec;
  fs::create_directories(path_, ec);
  GV_CHECK(!ec, IOError, "cannot create run directory {}: {}", path, ec.message());
}

std::string RunDir::samples_png(const std::string& tag, const std::string& kind) const {
  fs::create_directories(path_ / "samples");
  return (path_ / "samples" / fmt::format("{}-{}.png", tag, kind)).string();
}

std::string RunDir::recon_png(const std::string& tag) const {
  fs::create_directories(path_ / "recon");
  return (path_ / "recon" / fmt::format("{}.png", tag)).string();
}

void RunDir::write_config(const json& config) const { write_json_file(config_path(), config); }
json RunDir::read_config() const { return read_json_file(config_path()); }

std::string first_non_finite(const json& v, const std::string& where) {
  if (v.is_number_float() && !std::isfinite(v.get<double>()))
    return fmt::format("{} is {}", where.empty() ? "the value" : where, v.get<double>());
  if (v.is_object())
    for (const auto& [k, x] : v.items())
      if (std::string bad = first_non_finite(x, where.empty() ? k : where + "." + k); !bad.empty()) return bad;
  if (v.is_array())
    for (size_t i = 0; i < v.size(); ++i)
      if (std::string bad = first_non_finite(v[i], fmt::format("{}[{}]", where, i)); !bad.empty()) return bad;
  return "";
}

namespace {
// JSON has no NaN or infinity (nlohmann writes null): a figure that is not finite is refused, never
// written as if it were one.
void check_finite(const std::string& path, const json& value) {
  const std::string bad = first_non_finite(value, "");
  GV_CHECK(bad.empty(), NonFiniteError, "refusing to write {}: {}, not a finite number", path, bad);
}
}  // namespace

void RunDir::append_jsonl(const std::string& path, const json& row) {
  check_finite(path, row);
  std::ofstream f(path, std::ios::app);
  GV_CHECK(f, IOError, "cannot append to {}", path);
  f << row.dump() << '\n';
  f.flush();
  GV_CHECK(f, IOError, "failed writing {}", path);
}

void RunDir::truncate_after(const std::string& path, const std::string& key, int64_t max_value) {
  if (!fs::exists(path)) return;
  std::string kept;
  for (const json& row : read_jsonl(path))
    if (!row.contains(key) || row[key].get<int64_t>() <= max_value) kept += row.dump() + "\n";
  write_text_atomic(path, kept);
}

std::vector<json> read_jsonl(const std::string& path) {
  std::vector<json> rows;
  std::ifstream f(path);
  if (!f) return rows;
  std::string line;
  for (int64_t n = 1; std::getline(f, line); ++n) {
    if (line.empty()) continue;
    try {
      rows.push_back(json::parse(line));
    } catch (const json::exception& e) {
      GV_THROW(IOError, "{} line {}: not JSON ({})", path, n, e.what());
    }
  }
  return rows;
}

void write_json_file(const std::string& path, const json& value) {
  check_finite(path, value);
  write_text_atomic(path, value.dump(2) + "\n");
}

json read_json_file(const std::string& path) {
  std::ifstream f(path);
  GV_CHECK(f, IOError, "cannot read {}", path);
  try {
    return json::parse(f);
  } catch (const json::exception& e) {
    GV_THROW(IOError, "{}: not valid JSON ({})", path, e.what());
  }
}

std::string epoch_tag(int64_t epoch) { return fmt::format("epoch-{:03d}", epoch); }
std::string step_tag(int64_t step) { return fmt::format("step-{:07d}", step); }

}  // namespace gv::app
