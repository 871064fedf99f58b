// run_dir.h: the run directory every training program writes:
//   config.json             every flag the run was started with (and what was derived from them)
//   metrics.jsonl           one JSON object per logged training step, each line flushed as written
//   test.jsonl              one JSON object per epoch: the test-set evaluation
//   information.jsonl       I_q(x;z), KL and NLL per pixel on test images, every --mi-every steps
//   curves.png              the training curves, redrawn at the end of each epoch
//   samples/epoch-NNN-*.png sample grids; recon/epoch-NNN.png reconstructions
//   checkpoint.safetensors  the latest checkpoint (nn::save_checkpoint, written atomically)
//   eval.json               written by genvae-eval
// Opening one refuses an existing non-empty folder unless asked to resume it or to start over.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace gv::app {

using json = nlohmann::ordered_json;

enum class RunDirMode {
  create,  // a new run: the folder must not exist or be empty
  force,   // a new run in place of an old one: a previous run's files are deleted first
  resume,  // continue the run in the folder: it must hold config.json
};

class RunDir {
 public:
  // Creates (or checks) the folder; IOError naming the folder and the flag to use otherwise.
  // Programs call check() first, load and check everything else, and only then construct, so a
  // refused run leaves no folder behind and --force deletes nothing.
  RunDir(const std::string& path, RunDirMode mode);
  // The constructor's checks without its side effects.
  static void check(const std::string& path, RunDirMode mode);

  const std::filesystem::path& path() const { return path_; }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

  std::string config_path() const { return config_path_in(path_.string()); }
  static std::string config_path_in(const std::string& dir) { return (std::filesystem::path(dir) / "config.json").string(); }
  std::string metrics_path() const { return file("metrics.jsonl"); }
  std::string test_path() const { return file("test.jsonl"); }
  std::string information_path() const { return file("information.jsonl"); }
  std::string curves_path() const { return file("curves.png"); }
  std::string checkpoint_path() const { return checkpoint_path_in(path_.string()); }
  static std::string checkpoint_path_in(const std::string& dir) { return (std::filesystem::path(dir) / "checkpoint.safetensors").string(); }
  std::string eval_path() const { return file("eval.json"); }
  // samples/<tag>-<kind>.png (kind "mean" or "draw") and recon/<tag>.png; the folders are made here.
  std::string samples_png(const std::string& tag, const std::string& kind) const;
  std::string recon_png(const std::string& tag) const;

  void write_config(const json& config) const;  // written to a temporary file, then renamed
  json read_config() const;
  void append_metrics(const json& row) const { append_jsonl(metrics_path(), row); }
  void append_test(const json& row) const { append_jsonl(test_path(), row); }
  void append_information(const json& row) const { append_jsonl(information_path(), row); }

  // On resume: drops the lines of a JSON-lines file whose `key` (e.g. "step") is above max_value:
  // they were logged after the checkpoint being resumed from, and will be logged again.
  static void truncate_after(const std::string& path, const std::string& key, int64_t max_value);

 private:
  static void append_jsonl(const std::string& path, const json& row);
  std::filesystem::path path_;
};

// Every line of a JSON-lines file (none when the file does not exist); IOError naming the file
// and line when one does not parse.
std::vector<json> read_jsonl(const std::string& path);
// "kl_per_dimension[3] is inf": the first number in v that is NaN or infinite, "" when none.
std::string first_non_finite(const json& v, const std::string& where);
// Writes JSON to path (pretty-printed), through a temporary file and a rename. It and the
// JSON-lines appends refuse (NonFiniteError naming the file and the key) a NaN or infinite number.
void write_json_file(const std::string& path, const json& value);
json read_json_file(const std::string& path);

// "epoch-007", "step-001200": tags for files written at an epoch's end or at a step.
std::string epoch_tag(int64_t epoch);
std::string step_tag(int64_t step);

}  // namespace gv::app
