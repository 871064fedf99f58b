// trained_run.cpp: see trained_run.h.
#include "apps/common/trained_run.h"

#include <cmath>
#include <filesystem>

#include "engine/ops.h"

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
  Generator init(0);
  l.model = std::make_unique<vae::VAE>(model_config(l.cfg, data.shape), make_likelihood(l.cfg), init);
  nn::load_checkpoint(l.checkpoint, *l.model, nullptr, l.state);
  l.model->to(o.device);  // the estimators and samplers move each batch to the model's device
  if (nn::WeightAverage* a = l.model->average()) a->copy_to_model();  // evaluate and sample the average
  l.model->eval();
  l.test_x = Preprocessing::for_likelihood(l.cfg.likelihood).eval_set(data.test.images);
  if (o.with_train) l.train_x = data.train.images;
  return l;
}

void check_outputs_finite(TrainedRun& l) {
  ag::NoGradGuard no_grad;
  const int64_t n = std::min<int64_t>(l.test_x.size(0), 100);
  const Tensor x = l.test_x.slice(0, 0, n).to(l.model->device()).contiguous();
  auto [mu_v, logvar] = l.model->encode(ag::Var(x));
  const Tensor var = exp(logvar.data()).to(Device::cpu());
  vae::Decoder& d = l.model->decoder();
  const Tensor params = (d.has_mean() ? d.mean(mu_v.data()) : d.log_prob(x, mu_v).data()).to(Device::cpu());
  const Tensor mu = mu_v.data().to(Device::cpu());
  for (const auto& [what, t] : {std::pair<const char*, const Tensor*>{"the encoder's mean", &mu},
                                {"the encoder's variance exp(logvar)", &var},
                                {d.has_mean() ? "the decoder's mean g(mu)" : "the decoder's log p(x|mu)", &params}}) {
    if (const auto bad = first_non_finite(*t))
      GV_THROW(NonFiniteError,
               "{}: the weights are finite but the model's outputs are not finite: {} is {} at {} on the first {} "
               "test image(s); nothing it would produce can be trusted",
               l.checkpoint, what, bad->value, index_str(t->shape(), bad->index), n);
  }
}

}  // namespace gv::app
