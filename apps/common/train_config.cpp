// train_config.cpp: genvae-train's flags, their JSON form, and the builders (train_config.h).
#include "apps/common/train_config.h"


#include <algorithm>
#include <limits>
#include <map>
#include <set>
#include <type_traits>

#include <fmt/format.h>

#include "engine/runtime.h"
#include "nn/distributed.h"
#include "vae/likelihood.h"
#include "vae/regularizer.h"

namespace gv::app {

// Every field with its flag name, for the JSON form (X(field, "flag-name")).
#define GV_TRAIN_FIELDS(X)                                                                             \
  X(data, "data") X(data_dir, "data-dir") X(cache_dir, "cache-dir") X(image_size, "image-size")         \
  X(grayscale, "grayscale") X(limit, "limit") X(test_limit, "test-limit") X(arch, "arch")               \
  X(latent, "latent") X(hidden, "hidden") X(hidden_layers, "hidden-layers") X(activation, "activation") \
  X(likelihood, "likelihood") X(sigma, "sigma") X(components, "components") X(decoder, "decoder")       \
  X(pixel_layers, "pixel-layers") X(pixel_channels, "pixel-channels") X(pixel_kernel, "pixel-kernel")    \
  X(pixel_first_kernel, "pixel-first-kernel") X(pixel_blocks, "pixel-blocks")                           \
  X(pixel_resolutions, "pixel-resolutions") X(pixel_dropout, "pixel-dropout") X(sigma_floor, "sigma-floor") \
  X(adam_beta1, "adam-beta1") X(adam_beta2, "adam-beta2") X(ema, "ema")                                 \
  X(regularizer, "regularizer") X(lambda, "lambda") X(reg_param, "reg-param") X(warmup, "warmup")      \
  X(optimizer, "optimizer") X(lr, "lr") X(momentum, "momentum") X(weight_decay, "weight-decay")        \
  X(lr_schedule, "lr-schedule") X(lr_gamma, "lr-gamma") X(lr_step, "lr-step") X(lr_warmup, "lr-warmup") \
  X(grad_clip, "grad-clip") X(epochs, "epochs") X(batch, "batch") X(seed, "seed") X(threads, "threads") X(device, "device") \
  X(out, "out") X(resume, "resume") X(force, "force") X(checkpoint_every, "checkpoint-every")          \
  X(sample_every, "sample-every") X(figure_samples, "figure-samples") X(mi_every, "mi-every") X(mi_examples, "mi-examples") X(log_every, "log-every") X(debug_nan_at_step, "debug-nan-at-step") \
  X(dist, "dist") X(dist_timeout, "dist-timeout") X(dist_bucket_mib, "dist-bucket-mib")                 \
  X(dist_no_overlap, "dist-no-overlap") X(reseed, "reseed") X(debug_stall_at_step, "debug-stall-at-step")

namespace {

const CLI::Validator kPositive = number_above(0, false), kNonNegative = number_above(0, true);

CLI::Validator data_name_check() {
  return CLI::Validator(
      [](std::string& s) {
        return valid_data_name(s) ? std::string() : "unknown data set '" + s + "'; allowed: " + data_names_help();
      },
      "NAME");
}

void add_data_flags(CLI::App& app, TrainConfig& c) {
  const char* g = "Data";
  app.add_option("--data", c.data, "data set: " + data_names_help())->check(data_name_check())->capture_default_str()->group(g);
  app.add_option("--data-dir", c.data_dir,
                 "where the data set is (folder of IDX files, or the CIFAR-10 archive); default: "
                 "$GENVAE_MNIST_DIR / $GENVAE_FASHION_MNIST_DIR / $GENVAE_CIFAR10, else the usual place")
      ->group(g);
  app.add_option("--image-size", c.image_size, "folder:PATH: every image is resized and cropped to this square size")
      ->check(int_range(4, 1024))->capture_default_str()->group(g);
  app.add_flag("--grayscale", c.grayscale, "folder:PATH: load the images as one gray channel")->group(g);
  app.add_option("--limit", c.limit, "use only N training examples (-1: all)")
      ->check(at_least(-1))->capture_default_str()->group(g);
  app.add_option("--test-limit", c.test_limit, "use only N test examples (-1: all)")
      ->check(at_least(-1))->capture_default_str()->group(g);
  app.add_option("--cache-dir", c.cache_dir, "cifar10: cache the decoded images in this folder (faster later loads)")
      ->group(g);
}

void add_model_flags(CLI::App& app, TrainConfig& c) {
  const char* g = "Model";
  app.add_option("--arch", c.arch,
                 "encoder/decoder architecture: mlp, conv (W2's), conv3 (conv 4x4 s2 at 64, 128, 256 channels, dense "
                 "512: the paper's CIFAR-10 encoder)")->check(CLI::IsMember({"mlp", "conv", "conv3"}))->capture_default_str()->group(g);
  app.add_option("--latent", c.latent, "latent dimensions Z")->check(int_range(1, 4096))->capture_default_str()->group(g);
  app.add_option("--hidden", c.hidden, "mlp: units per hidden layer")->check(int_range(1, 100000))->capture_default_str()->group(g);
  app.add_option("--hidden-layers", c.hidden_layers, "mlp: hidden layers in the encoder and in the decoder")
      ->check(int_range(1, 16))->capture_default_str()->group(g);
  app.add_option("--activation", c.activation, "mlp: hidden activation")
      ->check(CLI::IsMember({"softplus", "relu", "leaky_relu", "tanh"}))->capture_default_str()->group(g);
  app.add_option("--likelihood", c.likelihood, "the family of p(x|z) (and so the pixel preprocessing, see below)")
      ->check(CLI::IsMember({"bernoulli", "gaussian", "gaussian-learned", "categorical256", "logistic-mixture",
                             "logistic-mixture-rgb"}))
      ->capture_default_str()->group(g);
  app.add_option("--sigma", c.sigma, "gaussian: the fixed standard deviation")->check(kPositive)->capture_default_str()->group(g);
  app.add_option("--decoder", c.decoder,
                 "p(x|z): factorized (the network, then the likelihood per pixel), pixelcnn (a gated PixelCNN "
                 "conditioned on z, autoregressive over the pixels; bernoulli on one-channel images: the PixelVAE) or "
                 "pixelcnn++ (PixelCNN++-style, any likelihood; logistic-mixture-rgb on CIFAR-10: Fig. 6)")
      ->check(CLI::IsMember({"factorized", "pixelcnn", "pixelcnn++"}))->capture_default_str()->group(g);
  app.add_option("--pixel-layers", c.pixel_layers, "pixelcnn: gated layers (the first with mask A)")
      ->check(int_range(1, 64))->capture_default_str()->group(g);
  app.add_option("--pixel-channels", c.pixel_channels, "pixelcnn: channels per stack; pixelcnn++: filters of both streams")
      ->check(int_range(1, 1024))->capture_default_str()->group(g);
  app.add_option("--pixel-kernel", c.pixel_kernel, "pixelcnn: kernel size of the later layers (odd)")
      ->check(int_range(1, 15))->capture_default_str()->group(g);
  app.add_option("--pixel-first-kernel", c.pixel_first_kernel, "pixelcnn: kernel size of the first layer (odd)")
      ->check(int_range(1, 15))->capture_default_str()->group(g);
  app.add_option("--pixel-blocks", c.pixel_blocks, "pixelcnn++: gated residual blocks per resolution and pass")
      ->check(int_range(1, 16))->capture_default_str()->group(g);
  app.add_option("--pixel-resolutions", c.pixel_resolutions,
                 "pixelcnn++: resolutions (3: 32, 16 and 8 for 32x32 images); H and W divisible by 2^(N-1)")
      ->check(int_range(1, 6))->capture_default_str()->group(g);
  app.add_option("--pixel-dropout", c.pixel_dropout, "pixelcnn++: dropout on each block's hidden layer, training only")
      ->check(number_range(0.0, 0.95))->capture_default_str()->group(g);
  app.add_option("--sigma-floor", c.sigma_floor,
                 "a floor on the encoder's standard deviation, logvar = log(floor^2 + e^raw) (0: none)")
      ->check(kNonNegative)->capture_default_str()->group(g);
  app.add_option("--components", c.components, "logistic-mixture(-rgb): mixture components per pixel")
      ->check(int_range(1, 64))->capture_default_str()->group(g);
}

void add_objective_flags(CLI::App& app, TrainConfig& c) {
  const char* g = "Objective: maximize E_q[log p(x|z)] - lambda R(q)";
  app.add_option("--regularizer", c.regularizer,
                 "R(q): none (unregularized autoencoder), kl (the ELBO), free-bits (KL with a floor per dimension), "
                 "mmd (InfoVAE's MMD between q(z) and p(z))")
      ->check(CLI::IsMember({"none", "kl", "free-bits", "mmd"}))->capture_default_str()->group(g);
  app.add_option("--lambda", c.lambda, "the weight lambda of R(q)")->check(kNonNegative)->capture_default_str()->group(g);
  app.add_option("--reg-param", c.reg_param,
                 "free-bits: the floor in nats per latent dimension; mmd: the kernel's sigma (0: automatic)")
      ->check(kNonNegative)->capture_default_str()->group(g);
  app.add_option("--warmup", c.warmup, "ramp lambda linearly from 0 over this many steps (0: no warm-up)")
      ->check(at_least(0))->capture_default_str()->group(g);
}

void add_optimizer_flags(CLI::App& app, TrainConfig& c) {
  const char* g = "Optimization";
  app.add_option("--optimizer", c.optimizer, "the update rule")->check(CLI::IsMember({"adam", "adamax", "sgd"}))->capture_default_str()->group(g);
  app.add_option("--adam-beta1", c.adam_beta1, "adam, adamax: beta1, the decay of the mean of the gradient")
      ->check(number_range(0.0, 0.9999))->capture_default_str()->group(g);
  app.add_option("--adam-beta2", c.adam_beta2, "adam, adamax: beta2, the decay of its second moment (or of its maximum)")
      ->check(number_range(0.0, 0.99999))->capture_default_str()->group(g);
  app.add_option("--ema", c.ema,
                 "Polyak averaging: keep a moving average of the weights with this decay (PixelCNN++: 0.9995; the "
                 "first steps use (1+t)/(10+t) when smaller) for the test figures, samples, genvae-eval and "
                 "genvae-sample (0: none)")
      ->check(number_range(0.0, 0.999999))->capture_default_str()->group(g);
  app.add_option("--lr", c.lr, "learning rate")->check(kPositive)->capture_default_str()->group(g);
  app.add_option("--momentum", c.momentum, "sgd: momentum")->check(number_range(0.0, 0.999))->capture_default_str()->group(g);
  app.add_option("--weight-decay", c.weight_decay, "L2 weight decay added to the gradient")->check(kNonNegative)->capture_default_str()->group(g);
  app.add_option("--lr-schedule", c.lr_schedule,
                 "constant; step (lr * gamma^floor(step / lr-step)); exponential (lr * gamma^(step / lr-step))")
      ->check(CLI::IsMember({"constant", "step", "exponential"}))->capture_default_str()->group(g);
  app.add_option("--lr-gamma", c.lr_gamma, "decay factor of the step and exponential schedules")
      ->check(number_range(1e-9, 1.0))->capture_default_str()->group(g);
  app.add_option("--lr-step", c.lr_step, "steps per decay of the step and exponential schedules")
      ->check(at_least(1))->capture_default_str()->group(g);
  app.add_option("--lr-warmup", c.lr_warmup, "ramp the learning rate linearly from 0 over this many steps")
      ->check(at_least(0))->capture_default_str()->group(g);
  app.add_option("--grad-clip", c.grad_clip, "clip the global gradient norm to this (0: no clipping)")
      ->check(kNonNegative)->capture_default_str()->group(g);
  app.add_option("--epochs", c.epochs, "passes over the training set (with --resume: the new total)")
      ->check(int_range(1, 1000000))->capture_default_str()->group(g);
  app.add_option("--batch", c.batch, "mini-batch size. An epoch's last short batch is dropped, except when the training set is smaller than one "
                 "batch: then every epoch is that one short batch")
      ->check(int_range(1, int64_t(1) << 20))->capture_default_str()->group(g);
  app.add_option("--seed", c.seed, "seed of every random stream (weights, data order, binarization, z samples)")->check(uint64_any())->capture_default_str()->group(g);
  app.add_option("--threads", c.threads, "CPU threads for OpenMP and OpenBLAS (0: every core)")
      ->check(int_range(0, 1024))->capture_default_str()->group(g);
  add_device_flag(app, c.device)->group(g);
}

void add_run_flags(CLI::App& app, TrainConfig& c) {
  const char* g = "Run directory";
  app.add_option("--out", c.out, "the run directory to create (config.json, metrics.jsonl, PNGs, checkpoint)")->capture_default_str()->group(g);
  app.add_flag("--force", c.force, "delete an earlier run in --out and start over")->group(g);
  app.add_option("--resume", c.resume,
                 "continue the run in DIR exactly where its checkpoint stopped, with its stored flags (only --" +
                     fmt::format("{}", fmt::join(resumable_flags(), ", --")) + " may be given again)")
      ->group(g);
  app.add_option("--checkpoint-every", c.checkpoint_every,
                 "save a checkpoint every N steps (0: only at the end of each epoch, which is always done)")
      ->check(at_least(0))->capture_default_str()->group(g);
  app.add_option("--sample-every", c.sample_every,
                 "also write sample and reconstruction PNGs every N steps (0: only at the end of each epoch)")
      ->check(at_least(0))->capture_default_str()->group(g);
  app.add_option("--mi-every", c.mi_every,
                 "every N steps, append the mutual information I_q(x;z) (appendix A.3, with its ceiling log M), "
                 "KL(q(z|x)||p(z)) and the reconstruction NLL per pixel on the first --mi-examples test images to "
                 "information.jsonl (0: only at the end of each epoch, which is always done)")
      ->check(at_least(0))->capture_default_str()->group(g);
  app.add_option("--mi-examples", c.mi_examples, "test images M of the mutual information (its ceiling is log M)")
      ->check(int_range(2, 100000))->capture_default_str()->group(g);
  app.add_option("--figure-samples", c.figure_samples,
                 "samples in each sample PNG (and half as many reconstructions); a PixelCNN decoder draws pixel by "
                 "pixel, so fewer is faster")
      ->check(int_range(1, 4096))->capture_default_str()->group(g);
  app.add_option("--log-every", c.log_every, "append the mean of the steps since the last line to metrics.jsonl every N steps, and at the end of each epoch")
      ->check(at_least(1))->capture_default_str()->group(g);
  app.add_option("--debug-nan-at-step", c.debug_nan_at_step,
                 "testing aid: make the training batch of step N all NaN, to exercise the non-finite-loss stop "
                 "(0: off)")
      ->check(at_least(0))->capture_default_str()->group(g);
}

void add_dist_flags(CLI::App& app, TrainConfig& c) {
  const char* g = "Several processes (mpirun -np N genvae-train ...)";
  app.add_option("--dist", c.dist,
                 "how the processes of one run talk: auto (mpi when started by mpirun, nccl with it when --device "
                 "is cuda and the build has NCCL; else single), single, mpi (CPU tensors), nccl (GPU tensors). "
                 "This build has: " + fmt::format("{}", fmt::join(nn::process_group_backends(), ", ")))
      ->check(CLI::IsMember({"auto", "single", "mpi", "nccl"}))->capture_default_str()->group(g);
  app.add_option("--dist-timeout", c.dist_timeout,
                 "seconds a collective may wait for the other ranks before every rank stops (0: for ever)")
      ->check(kNonNegative)->capture_default_str()->group(g);
  app.add_option("--dist-bucket-mib", c.dist_bucket_mib, "size of the gradient buckets reduced in one collective, MiB")
      ->check(number_range(1.0 / 1024, 1024))->capture_default_str()->group(g);
  app.add_flag("--dist-no-overlap", c.dist_no_overlap,
               "reduce the gradients after backward instead of while it runs (the same result; for measuring)")
      ->group(g);
  app.add_flag("--reseed", c.reseed,
               "with --resume on a different number of processes: give every rank fresh random streams, from --seed "
               "and the step (refused without it: the run would not continue as it would have)")
      ->group(g);
  app.add_option("--debug-stall-at-step", c.debug_stall_at_step,
                 "testing aid: the last rank stops answering (sleeps) at step N, to exercise --dist-timeout (0: off)")
      ->check(at_least(0))->capture_default_str()->group(g);
}

}  // namespace

DataSpec TrainConfig::data_spec() const {
  return DataSpec{data, data_dir, image_size, grayscale, limit, test_limit, cache_dir};
}

void add_train_flags(CLI::App& app, TrainConfig& c) {
  // a flag given twice takes its last value (scripts pass defaults, then the user's flags)
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  add_data_flags(app, c);
  add_model_flags(app, c);
  add_objective_flags(app, c);
  add_optimizer_flags(app, c);
  add_run_flags(app, c);
  add_dist_flags(app, c);
}

const std::set<std::string>& rank_local_flags() {
  static const std::set<std::string> keys = {"threads", "data-dir", "cache-dir", "out", "resume", "force"};
  return keys;
}

const std::vector<std::string>& resumable_flags() {
  static const std::vector<std::string> ok = {"epochs", "threads", "device", "data-dir", "cache-dir", "checkpoint-every",
                                              "sample-every", "figure-samples", "mi-every", "log-every",
                                              "debug-nan-at-step", "dist", "dist-timeout", "dist-bucket-mib",
                                              "dist-no-overlap", "reseed", "debug-stall-at-step"};
  return ok;
}

bool resumable_flag(const std::string& name) {
  const auto& ok = resumable_flags();
  return name == "resume" || std::find(ok.begin(), ok.end(), name) != ok.end();
}

json to_json(const TrainConfig& c) {
  json j = json::object();
#define GV_TO_JSON(field, name) j[name] = c.field;
  GV_TRAIN_FIELDS(GV_TO_JSON)
#undef GV_TO_JSON
  return j;
}

namespace {

enum class Kind { text, integer, unsigned_integer, number, boolean };

template <class T>
constexpr Kind kind_of() {
  if constexpr (std::is_same_v<T, std::string>) return Kind::text;
  else if constexpr (std::is_same_v<T, bool>) return Kind::boolean;
  else if constexpr (std::is_same_v<T, uint64_t>) return Kind::unsigned_integer;
  else if constexpr (std::is_integral_v<T>) return Kind::integer;
  else return Kind::number;
}

const std::map<std::string, Kind>& field_kinds() {
  static const std::map<std::string, Kind> kinds = {
#define GV_KIND(field, name) {name, kind_of<decltype(TrainConfig::field)>()},
      GV_TRAIN_FIELDS(GV_KIND)
#undef GV_KIND
  };
  return kinds;
}

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::text: return "a string";
    case Kind::integer: return "an integer";
    case Kind::unsigned_integer: return "an integer >= 0";
    case Kind::number: return "a number";
    case Kind::boolean: return "true or false";
  }
  return "?";
}

bool has_kind(const json& v, Kind k) {
  switch (k) {
    case Kind::text: return v.is_string();
    case Kind::integer:
    case Kind::unsigned_integer: return v.is_number_integer();  // the range is the flag's check
    case Kind::number: return v.is_number();
    case Kind::boolean: return v.is_boolean();
  }
  return false;
}

// The value as a command-line argument would spell it (a negative number too: CLI11 takes "-1"
// after an option as its value).
std::string arg_text(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
  if (v.is_number_float()) return fmt::format("{}", v.get<double>());  // shortest round-trip form
  return v.dump();
}

}  // namespace

const std::set<std::string>& derived_config_keys() {
  static const std::set<std::string> keys = {"data-path",  "data-shape",   "train-examples", "test-examples",
                                             "preprocessing", "parameters", "threads-used",   "command",
                                             "world-size"};
  return keys;
}

std::vector<std::string> config_args(const json& j, const std::string& source, const std::set<std::string>& skip) {
  GV_CHECK(j.is_object(), ValueError, "{}: expected a JSON object of flag names and values, got {}", source,
           j.type_name());
  std::vector<std::string> args;
  for (const auto& [key, value] : j.items()) {
    if (derived_config_keys().count(key) || skip.count(key)) continue;
    const auto it = field_kinds().find(key);
    GV_CHECK(it != field_kinds().end(), ValueError,
             "{}: unknown key \"{}\": not a flag of genvae-train (keys are the flags' names without their dashes, "
             "as in --help, and the facts genvae-train adds: {})",
             source, key, fmt::join(derived_config_keys(), ", "));
    GV_CHECK(has_kind(value, it->second), ValueError, "{}: key \"{}\" must be {}, got {} ({})", source, key,
             kind_name(it->second), value.dump(), value.type_name());
    if (value.is_boolean()) {
      args.push_back("--" + key + "=" + arg_text(value));
    } else {  // two arguments, so an empty string stays a value
      args.push_back("--" + key);
      args.push_back(arg_text(value));
    }
  }
  return args;
}

void apply_config(const json& j, const std::string& source, TrainConfig& cfg, const std::set<std::string>& skip) {
  const std::vector<std::string> args = config_args(j, source, skip);
  std::vector<const char*> argv = {"config"};
  for (const auto& a : args) argv.push_back(a.c_str());
  CLI::App app;
  add_train_flags(app, cfg);
  try {
    app.parse((int)argv.size(), argv.data());
  } catch (const CLI::ParseError& e) {
    GV_THROW(ValueError, "{}: {}", source, e.what());  // CLI11 names the flag: "--latent: must be ..."
  }
}

TrainConfig train_config_from_json(const json& j, const std::string& source) {
  TrainConfig c;
  apply_config(j, source, c, {});
  return c;
}

Shape stored_shape(const json& j, const std::string& source) {
  const json& s = j.at("data-shape");
  GV_CHECK(s.is_array() && !s.empty(), ValueError, "{}: key \"data-shape\" must be a list of sizes, got {}", source,
           s.dump());
  Shape shape;
  for (const json& d : s) {
    GV_CHECK(d.is_number_integer() && d.get<int64_t>() > 0, ValueError,
             "{}: key \"data-shape\" must be a list of positive sizes, got {}", source, s.dump());
    shape.push_back(d.get<int64_t>());
  }
  return shape;
}

std::shared_ptr<vae::Likelihood> make_likelihood(const TrainConfig& c) {
  return vae::make_likelihood(c.likelihood, c.sigma, c.components);
}

std::shared_ptr<vae::Regularizer> make_regularizer(const TrainConfig& c) {
  return vae::make_regularizer(c.regularizer, c.reg_param);
}

vae::ModelConfig model_config(const TrainConfig& c, const Shape& data_shape) {
  vae::ModelConfig m;
  m.arch = c.arch;
  m.data_shape = data_shape;
  m.latent = c.latent;
  m.hidden = c.hidden;
  m.hidden_layers = c.hidden_layers;
  m.activation = c.activation;
  m.decoder = c.decoder;
  m.pixel_layers = c.pixel_layers, m.pixel_channels = c.pixel_channels;
  m.pixel_kernel = c.pixel_kernel, m.pixel_first_kernel = c.pixel_first_kernel;
  m.pixel_blocks = c.pixel_blocks, m.pixel_resolutions = c.pixel_resolutions, m.pixel_dropout = c.pixel_dropout;
  m.sigma_floor = c.sigma_floor;
  m.average_decay = c.ema;
  return m;
}

std::unique_ptr<nn::Optimizer> make_optimizer(const TrainConfig& c, std::vector<nn::NamedVar> params) {
  if (c.optimizer == "adam")
    return std::make_unique<nn::Adam>(std::move(params), c.lr, c.adam_beta1, c.adam_beta2, 1e-8, c.weight_decay);
  if (c.optimizer == "adamax")
    return std::make_unique<nn::Adamax>(std::move(params), c.lr, c.adam_beta1, c.adam_beta2, 1e-8, c.weight_decay);
  if (c.optimizer == "sgd") return std::make_unique<nn::SGD>(std::move(params), c.lr, c.momentum, c.weight_decay);
  GV_THROW(ValueError, "--optimizer {}: unknown (adam, adamax, sgd)", c.optimizer);
}

std::shared_ptr<nn::LRSchedule> make_schedule(const TrainConfig& c) {
  std::shared_ptr<nn::LRSchedule> s;
  if (c.lr_schedule == "constant") s = std::make_shared<nn::ConstantLR>(c.lr);
  else if (c.lr_schedule == "step") s = std::make_shared<nn::StepLR>(c.lr, c.lr_step, c.lr_gamma);
  else if (c.lr_schedule == "exponential") s = std::make_shared<nn::ExponentialLR>(c.lr, c.lr_gamma, double(c.lr_step));
  else GV_THROW(ValueError, "--lr-schedule {}: unknown (constant, step, exponential)", c.lr_schedule);
  if (c.lr_warmup > 0) s = std::make_shared<nn::WarmupLR>(s, c.lr_warmup);
  return s;
}

int set_threads(int64_t n) {
  int t = n > 0 ? int(n) : cpu_count();
  set_num_threads(t);
  return t;
}

}  // namespace gv::app
