// trained_run.cpp: see trained_run.h.
#include "apps/common/trained_run.h"

#include <filesystem>

namespace gv::app {
namespace fs = std::filesystem;

std::string checkpoint_of(const std::string& run) {
  fs::path p(run);
  if (fs::is_directory(p)) p /= "checkpoint.safetensors";
  GV_CHECK(fs::is_regular_file(p), IOError, "{}: no checkpoint (give a genvae-train run directory or a .safetensors file)",
           p.string());
  return p.string();
}

TrainedRun load_trained_run(const std::string& run, const LoadOptions& o) {
  TrainedRun l;
  l.checkpoint = checkpoint_of(run);
  nn::Metadata meta = nn::read_safetensors(l.checkpoint).metadata;
  GV_CHECK(meta.count("extra.config"), IOError, "{}: no training configuration in its metadata (not written by "
           "genvae-train?)", l.checkpoint);
  json stored;
  try {
    stored = json::parse(meta["extra.config"]);
  } catch (const json::exception& e) {
    GV_THROW(IOError, "{}: its training configuration (metadata extra.config) is not valid JSON: {}", l.checkpoint,
             e.what());
  }
  l.cfg = train_config_from_json(stored, l.checkpoint);
  if (!o.data_dir.empty()) l.cfg.data_dir = o.data_dir;
  DataSpec spec = l.cfg.data_spec();
  spec.test_limit = o.test_limit;
  spec.with_train = o.with_train;
  if (o.with_train && o.train_limit != -1) spec.limit = o.train_limit;
  LoadedData data = load_data(spec);
  if (stored.contains("data-shape")) check_data_shape(data, stored_shape(stored, l.checkpoint), "the checkpoint " + l.checkpoint);
  l.shape = data.shape;
  l.p = make_likelihood(l.cfg);
  Generator init(0);
  l.model = std::make_unique<vae::VAE>(model_config(l.cfg, data.shape, *l.p), init);
  nn::load_checkpoint(l.checkpoint, *l.model, nullptr, l.state);
  l.model->eval();
  l.test_x = Preprocessing::for_likelihood(l.cfg.likelihood).eval_set(data.test.images);
  if (o.with_train) l.train_x = data.train.images;
  return l;
}

}  // namespace gv::app
