// train_config.h: the configuration of a VAE training run: one field per command-line flag of
// genvae-train, the flags themselves (with their checks and help), the JSON form stored in
// config.json and in every checkpoint (so genvae-eval can rebuild the model), and the builders
// that turn it into library objects: likelihood, regularizer, model, optimizer, schedule.
#pragma once
#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "apps/common/datasets.h"
#include "apps/common/flags.h"
#include "apps/common/run_dir.h"
#include "nn/optim.h"
#include "vae/model.h"
#include "vae/regularizer.h"

namespace gv::app {

struct TrainConfig {
  // data
  std::string data = "mnist", data_dir, cache_dir;
  int64_t image_size = 32, limit = -1, test_limit = -1;
  bool grayscale = false;
  // model
  std::string arch = "mlp", activation = "softplus", likelihood = "bernoulli";
  int64_t latent = 20, hidden = 500, hidden_layers = 2, components = 5;
  double sigma = 1.0;
  std::string decoder = "factorized";
  int64_t pixel_layers = 12, pixel_channels = 32, pixel_kernel = 3, pixel_first_kernel = 7;
  int64_t pixel_blocks = 1, pixel_resolutions = 3;
  double pixel_dropout = 0, sigma_floor = 0;
  // objective E[log p(x|z)] - lambda R(q)
  std::string regularizer = "kl";
  double lambda = 1.0, reg_param = 0.0;
  int64_t warmup = 0;
  // optimization
  std::string optimizer = "adam", lr_schedule = "constant";
  double lr = 1e-3, momentum = 0.9, weight_decay = 0, lr_gamma = 0.5, grad_clip = 0;
  double adam_beta1 = 0.9, adam_beta2 = 0.999, ema = 0;
  int64_t lr_step = 10000, lr_warmup = 0;
  int64_t epochs = 10, batch = 100, threads = 0;  // threads 0: every core
  std::string device = "cpu";                       // cpu, cuda or cuda:N
  uint64_t seed = 1;
  // data-parallel training over several processes (mpirun; nn/distributed.h)
  std::string dist = "auto";  // auto, single, mpi, nccl
  double dist_timeout = 600, dist_bucket_mib = 4;
  bool dist_no_overlap = false, reseed = false;
  int64_t debug_stall_at_step = 0;
  // the run
  std::string out = "runs/train", resume;
  bool force = false;
  int64_t checkpoint_every = 1000, sample_every = 0, figure_samples = 64, mi_every = 0, mi_examples = 1000, log_every = 50, debug_nan_at_step = 0;

  DataSpec data_spec() const;
};

// Registers every flag of genvae-train on app, bound to cfg's fields. A flag given twice takes its
// last value.
void add_train_flags(CLI::App& app, TrainConfig& cfg);
// Flags that may be given again with --resume (the others must come from the stored config).
// The flags a --resume may give again (without the dashes), and the test of one name ("resume" too).
const std::vector<std::string>& resumable_flags();
bool resumable_flag(const std::string& name);

// The flags whose values may differ between the ranks of one run (local paths, thread counts,
// where rank 0 writes); every other flag must match rank 0's.
const std::set<std::string>& rank_local_flags();

// The JSON form: one key per flag, named as the flag without its dashes ("hidden-layers").
json to_json(const TrainConfig& cfg);
// The keys of config.json that are not flags: facts derived at the start of the run (data-shape,
// parameters, command, ...). Read back, they are ignored.
const std::set<std::string>& derived_config_keys();
// A stored configuration (config.json, or a checkpoint's extra.config) as the command-line
// arguments it stands for ("--latent=20"), so that every value passes its flag's check. Refuses,
// naming `source` and the key: a key that is neither a flag nor a derived fact, and a value of the
// wrong JSON type (a string for an integer, 1.5 for an integer, ...). Keys in `skip` are left out.
std::vector<std::string> config_args(const json& j, const std::string& source, const std::set<std::string>& skip = {});
// Sets cfg's fields from the stored configuration (the others keep their values); ValueError
// naming source and the flag for any value a flag's check refuses.
void apply_config(const json& j, const std::string& source, TrainConfig& cfg, const std::set<std::string>& skip = {});
// The defaults, then apply_config.
TrainConfig train_config_from_json(const json& j, const std::string& source);
// The stored "data-shape" (C, H, W); ValueError naming source when it is not a list of sizes.
Shape stored_shape(const json& j, const std::string& source);

std::shared_ptr<vae::Likelihood> make_likelihood(const TrainConfig& cfg);
std::shared_ptr<vae::Regularizer> make_regularizer(const TrainConfig& cfg);
vae::ModelConfig model_config(const TrainConfig& cfg, const Shape& data_shape);
std::unique_ptr<nn::Optimizer> make_optimizer(const TrainConfig& cfg, std::vector<nn::NamedVar> params);
std::shared_ptr<nn::LRSchedule> make_schedule(const TrainConfig& cfg);

// OpenMP and OpenBLAS threads: n, or every core when n <= 0. Returns the number used.
int set_threads(int64_t n);

}  // namespace gv::app
