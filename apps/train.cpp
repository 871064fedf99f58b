// train.cpp: genvae-train, the general training program of the generalized VAE family
// (Zhao, Song and Ermon 2017): maximizes E_q[log p(x|z)] - lambda R(q) for a chosen data set,
// architecture, likelihood P and regularizer R, and writes a run directory (run_dir.h): config,
// metrics per logged step, the test ELBO and PNGs of samples, reconstructions and curves after each
// epoch, and checkpoints from which --resume continues bit for bit. A non-finite loss, gradient or
// test result stops the run (exit 3) without saving; the note names the last checkpoint only after
// checking that it is good.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <limits>
#include <memory>
#include <stdexcept>

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "apps/common/datasets.h"
#include "apps/common/figures.h"
#include "apps/common/run_dir.h"
#include "apps/common/train_config.h"
#include "apps/progress.h"
#include "engine/ops.h"
#include "nn/checkpoint.h"
#include "nn/train_step.h"
#include "vae/estimators.h"
#include "vae/objective.h"

using namespace gv;
using namespace gv::app;

namespace {

constexpr uint64_t kEvalSeed = 1234567;               // the test ELBO's z draws: the same every epoch
constexpr int kExitNonFinite = 3;
constexpr uint64_t kCheckpointLossSeed = 0x636b7074;  // "ckpt": the z draws of a checkpoint's own loss

// ---- command line -------------------------------------------------------------------------------

std::string help_footer() {
  return "\n" + preprocessing_help() +
         "\nData sets (--data): mnist, fashion-mnist (Debian's dataset-fashion-mnist, or\n"
         "$GENVAE_FASHION_MNIST_DIR), cifar10, folder:PATH (images under PATH; PATH/train and PATH/test\n"
         "when both exist, else 10% held out).\n"
         "\nThe run directory (--out): config.json, metrics.jsonl (every --log-every steps and epoch end),\n"
         "test.jsonl (test ELBO per epoch), curves.png, samples/epoch-NNN-mean.png (and -draw.png for\n"
         "bernoulli), recon/epoch-NNN.png, checkpoint.safetensors.\n"
         "Exit status: 0 done, 1 error, 2 a bad --config or --resume, 3 a non-finite loss, gradient, test\n"
         "result or checkpoint weight (nothing is saved; the note says whether the last checkpoint is good),\n"
         "CLI11's codes (100-115) for bad flags.\n";
}

// With --resume: the stored flags, overridden by the (resumable) flags given again.
TrainConfig resumed_config(const CLI::App& app, int argc, char** argv, const std::string& dir) {
  for (const CLI::Option* o : app.get_options()) {
    if (o->count() == 0 || o->get_lnames().empty() || o->get_lnames()[0] == "config") continue;
    const std::string& name = o->get_lnames()[0];
    GV_CHECK(resumable_flag(name), ValueError,
             "--{} cannot be changed with --resume: the run's stored value is used (start a new run with "
             "--out to change it). Allowed with --resume: --{}",
             name, fmt::join(resumable_flags(), ", --"));
  }
  RunDir::check(dir, RunDirMode::resume);
  const std::string stored = RunDir::config_path_in(dir);
  TrainConfig cfg = train_config_from_json(read_json_file(stored), stored);
  CLI::App again;
  add_train_flags(again, cfg);
  again.parse(argc, argv);  // the flags given now replace the stored ones
  cfg.resume = cfg.out = dir;
  return cfg;
}

// With --config FILE: the flags stored in FILE, overridden by those given on the command line.
TrainConfig configured(int argc, char** argv, const std::string& file) {
  TrainConfig cfg;
  // how that run was started, not what it is: a re-run never resumes or deletes by inheritance
  apply_config(read_json_file(file), file, cfg, {"resume", "force"});
  CLI::App again;
  add_train_flags(again, cfg);
  std::string ignored;
  again.add_option("--config", ignored);
  again.parse(argc, argv);  // explicit flags win over the file
  return cfg;
}

// Returns an exit code when the program should stop now (help, bad flags), else -1.
int parse_flags(int argc, char** argv, TrainConfig& cfg) {
  CLI::App app{"genvae-train: train a generalized VAE (Zhao, Song and Ermon 2017): maximize\n"
               "E_q[log p(x|z)] - lambda R(q) and write a run directory"};
  app.footer(help_footer());
  add_train_flags(app, cfg);
  std::string config_file;
  app.add_option("--config", config_file,
                 "start from the flags stored in FILE (a run's config.json, or any JSON object of flag names "
                 "without dashes and values); flags given on the command line win. The file's resume and force "
                 "keys, and the facts genvae-train adds (data-shape, command, ...), are ignored; any other "
                 "unknown key, or a value of the wrong type, is refused")
      ->group("Run directory");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (cfg.resume.empty() && config_file.empty()) return -1;
  try {
    GV_CHECK(config_file.empty() || cfg.resume.empty(), ValueError,
             "--config and --resume cannot be combined: --resume continues a run with its own stored flags; "
             "--config starts a new one from them");
    cfg = cfg.resume.empty() ? configured(argc, argv, config_file) : resumed_config(app, argc, argv, cfg.resume);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "genvae-train: %s\n", e.what());
    return 2;
  }
  return -1;
}

// ---- the run ------------------------------------------------------------------------------------

struct StepStats {
  double loss = 0, reconstruction = 0, regularizer = 0, weight = 0, lr = 0, grad_norm = 0;
};

// Sums of the stats over the steps since the last log line (or since the epoch began).
struct Window {
  StepStats sum;
  int64_t n = 0;
  void add(const StepStats& s) {
    sum.loss += s.loss, sum.reconstruction += s.reconstruction, sum.regularizer += s.regularizer, ++n;
  }
  double mean(double StepStats::*field) const { return n > 0 ? sum.*field / double(n) : 0; }
  // Checkpoints hold the windows, so a resumed run logs the same means as one never stopped.
  std::string dump() const {
    return json{{"loss", sum.loss}, {"reconstruction", sum.reconstruction}, {"regularizer", sum.regularizer}, {"n", n}}
        .dump();
  }
  static Window parse(const std::string& text) {
    json j = json::parse(text);
    Window w;
    w.sum.loss = j["loss"], w.sum.reconstruction = j["reconstruction"], w.sum.regularizer = j["regularizer"];
    w.n = j["n"];
    return w;
  }
};

struct Run {
  TrainConfig cfg;
  json config;  // cfg as JSON plus what was derived from it: config.json and every checkpoint hold it
  std::unique_ptr<RunDir> dir;
  LoadedData data;
  Preprocessing prep{PixelTransform::identity};
  std::shared_ptr<vae::Likelihood> p;
  std::shared_ptr<vae::Regularizer> r;
  std::unique_ptr<vae::Model> model;
  std::unique_ptr<nn::Optimizer> opt;
  std::shared_ptr<nn::LRSchedule> schedule;
  std::unique_ptr<data::BatchLoader> loader;
  nn::TrainState state;
  Tensor test_x;              // the test images as the model sees them (binarized once, etc.)
  Device device;              // --device: where the model and its batches live
  double elapsed_before = 0;  // seconds trained by earlier processes of this run
  std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
  int64_t last_checkpoint = -1;  // step of the last checkpoint saved or loaded
  Window log_window, epoch_window;  // the steps since the last log line, and since the epoch began
  json information;                 // the last line of information.jsonl (empty before the first)

  double elapsed() const {
    return elapsed_before + std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
};

json derived_facts(const Run& run, int threads, int argc, char** argv) {
  json j = to_json(run.cfg);
  j["data-path"] = run.data.source;
  j["data-shape"] = run.data.shape;
  j["train-examples"] = run.data.train.size();
  j["test-examples"] = run.data.test.size();
  j["preprocessing"] = run.prep.describe();
  j["parameters"] = run.model->parameter_count();
  j["threads-used"] = threads;
  std::string cmd;
  for (int i = 0; i < argc; ++i) cmd += (i ? " " : "") + std::string(argv[i]);
  j["command"] = cmd;
  return j;
}

void build(Run& run) {
  const TrainConfig& c = run.cfg;
  run.data = load_data(c.data_spec());
  run.prep = Preprocessing::for_likelihood(c.likelihood);
  run.p = make_likelihood(c);
  run.r = make_regularizer(c);
  Generator init = Generator::stream(c.seed, 0);
  run.model = std::make_unique<vae::VAE>(model_config(c, run.data.shape), run.p, init);
  // made on the CPU (the same initial weights on every device), then moved; the optimizer after
  // the move keeps its state on the parameters' device
  run.device = checked_device(c.device);
  run.model->to(run.device);
  run.opt = make_optimizer(c, run.model->named_parameters());
  run.schedule = make_schedule(c);
  const int64_t n = run.data.train.size();
  GV_CHECK(n > 0, ValueError, "no training examples (--limit {})", c.limit);
  run.loader = std::make_unique<data::BatchLoader>(run.data.train, c.batch, true, c.seed + 1, n >= c.batch);
  run.state.rngs = {{"train", Generator::stream(c.seed, 1)}, {"data", Generator::stream(c.seed, 2)}};
  run.test_x = run.prep.eval_set(run.data.test.images);
}

// Loads the checkpoint and puts the data order, the logs and the clock where it stopped.
void restore(Run& run, const std::string& dir) {
  nn::load_checkpoint(RunDir::checkpoint_path_in(dir), *run.model, run.opt.get(), run.state);
  const int64_t index = std::min(run.loader->size(), run.state.batch_in_epoch * run.cfg.batch);
  run.loader->seek(run.state.epoch, index);
  run.elapsed_before = std::stod(run.state.extra.count("elapsed") ? run.state.extra["elapsed"] : "0");
  run.last_checkpoint = run.state.step;
  auto& extra = run.state.extra;
  if (extra.count("log_window")) run.log_window = Window::parse(extra["log_window"]);
  if (extra.count("epoch_window")) run.epoch_window = Window::parse(extra["epoch_window"]);
}

// The log lines written after the checkpoint are dropped: they will be written again.
void truncate_logs(Run& run) {
  RunDir::truncate_after(run.dir->metrics_path(), "step", run.state.step);
  RunDir::truncate_after(run.dir->test_path(), "epoch", run.state.epoch);  // epochs completed
  RunDir::truncate_after(run.dir->information_path(), "step", run.state.step);
  if (const std::vector<json> info = read_jsonl(run.dir->information_path()); !info.empty()) run.information = info.back();
  fmt::print("resuming {} at step {} (epoch {}, batch {})\n", run.cfg.resume, run.state.step, run.state.epoch + 1,
             run.state.batch_in_epoch);
}

void open_run(Run& run, int argc, char** argv) {
  const bool resuming = !run.cfg.resume.empty();
  RunDirMode mode = resuming ? RunDirMode::resume : run.cfg.force ? RunDirMode::force : RunDirMode::create;
  const std::string path = resuming ? run.cfg.resume : run.cfg.out;
  // Everything is checked (flags, data, checkpoint) before the folder is made or --force deletes
  // the old run: a refused run leaves nothing behind.
  RunDir::check(path, mode);
  GV_CHECK(!resuming || std::filesystem::exists(RunDir::checkpoint_path_in(path)), IOError,
           "--resume {}: no checkpoint there yet (the run stopped before its first); start over with --force",
           run.cfg.resume);
  int threads = set_threads(run.cfg.threads);
  build(run);
  if (resuming) {
    const json stored = read_json_file(RunDir::config_path_in(path));
    if (stored.contains("data-shape"))
      check_data_shape(run.data, stored_shape(stored, RunDir::config_path_in(path)), "the run " + path);
    restore(run, path);
  }
  run.dir = std::make_unique<RunDir>(path, mode);
  if (resuming) truncate_logs(run);
  run.config = derived_facts(run, threads, argc, argv);
  run.dir->write_config(run.config);
  fmt::print("{}: {} {} training / {} test examples {}, {}; VAE {} ({} parameters), likelihood {}, "
             "regularizer {} (lambda {}), {} threads\n",
             run.dir->path().string(), run.cfg.data, run.data.train.size(), run.data.test.size(),
             shape_str(run.data.shape), run.prep.describe(), run.cfg.arch, run.model->parameter_count(),
             run.cfg.likelihood, run.cfg.regularizer, run.cfg.lambda, threads);
  std::fflush(stdout);
}

// The batch a checkpoint at state st was saved at: the last one its data order had handed out
// (from (seed, epoch) alone, as the loader does), preprocessed as the test set is (fixed noise), so
// that it can be rebuilt from the checkpoint file and the data at any later time.
Tensor saved_at_batch(const Run& run, const nn::TrainState& st) {
  int64_t epoch = st.epoch, b = st.batch_in_epoch - 1;
  if (b < 0) {  // saved at an epoch's end: the last batch of the epoch before
    if (epoch == 0) return {};
    --epoch, b = run.loader->batches_per_epoch() - 1;
  }
  const int64_t n = run.loader->size(), begin = std::min(n, b * run.cfg.batch);
  const Tensor order = data::BatchLoader::epoch_order(n, run.cfg.seed + 1, epoch);
  const Tensor idx = order.slice(0, begin, std::min(n, begin + run.cfg.batch)).contiguous();
  return run.prep.eval_set(data::take(run.data.train, idx).images);
}

// The objective of model on a batch, without a graph and with z draws of its own (the run's
// streams are not touched, so checking a checkpoint changes nothing in the run).
double loss_on(const Run& run, vae::Model& model, const Tensor& x, int64_t step) {
  ag::NoGradGuard no_grad;
  Generator g = Generator::stream(run.cfg.seed ^ kCheckpointLossSeed, uint64_t(step));
  const double w = vae::regularizer_weight(run.cfg.lambda, run.cfg.warmup, step);
  return vae::objective(model, x.to(model.device()), *run.r, w, g).loss.item();
}

// A checkpoint is saved only when it is good: its weights are finite, and so is their loss on the
// batch it is saved at (saved_at_batch; stored as extra.checkpoint_loss).
void save(Run& run) {
  auto& extra = run.state.extra;
  for (const auto& [name, v] : run.model->named_parameters())
    if (const auto bad = first_non_finite(v.data()))
      GV_THROW(NonFiniteError, "parameter {} is {} at {} after step {}; not saved", name, number_str(bad->value),
               index_str(v.shape(), bad->index), run.state.step);
  data::LoaderPosition pos = run.loader->position();
  run.state.epoch = pos.epoch;
  run.state.batch_in_epoch = (pos.index + run.cfg.batch - 1) / run.cfg.batch;
  if (const Tensor x = saved_at_batch(run, run.state); x.defined()) {
    const double l = loss_on(run, *run.model, x, run.state.step);
    if (!std::isfinite(l))
      GV_THROW(NonFiniteError, "the weights after step {} give a loss of {} on the batch they are saved at; they were "
               "not saved", run.state.step, number_str(l));
    extra["checkpoint_loss"] = fmt::format("{:.17g}", l);
  }
  extra["config"] = run.config.dump();
  extra["elapsed"] = fmt::format("{:.3f}", run.elapsed());
  extra["log_window"] = run.log_window.dump();
  extra["epoch_window"] = run.epoch_window.dump();
  nn::save_checkpoint(run.dir->checkpoint_path(), *run.model, run.opt.get(), run.state);
  run.last_checkpoint = run.state.step;
}

// One update from the batch's images: objective, backward, clipping, optimizer step.
StepStats train_step(Run& run, const Tensor& images, int64_t epoch) {
  const TrainConfig& c = run.cfg;
  const int64_t step = run.state.step + 1;  // the number of this update
  Tensor x = run.prep.train_batch(images, run.state.rng("data")).to(run.device);  // drawn on the CPU: any device, one batch
  if (step == c.debug_nan_at_step) x = mul(x, std::numeric_limits<double>::quiet_NaN());
  StepStats s;
  s.weight = vae::regularizer_weight(c.lambda, c.warmup, run.state.step);
  s.lr = run.schedule->lr(run.state.step);
  run.opt->set_lr(s.lr);
  vae::ObjectiveTerms t;
  try {
    const nn::StepResult r = nn::train_step(
        *run.opt,
        [&] {
          t = vae::objective(*run.model, x, *run.r, s.weight, run.state.rng("train"));
          return t.loss;
        },
        c.grad_clip > 0 ? c.grad_clip : std::numeric_limits<double>::infinity());
    s.loss = r.loss, s.grad_norm = r.grad_norm;
  } catch (const NonFiniteError& e) {
    GV_THROW(NonFiniteError, "{} at step {} (epoch {})", e.what(), step, epoch + 1);
  }
  run.state.step = step;
  if (nn::WeightAverage* a = run.model->average()) a->update();
  s.reconstruction = t.reconstruction.item();
  s.regularizer = t.regularizer.item();
  return s;
}

void log_metrics(Run& run, const StepStats& last, int64_t epoch) {
  const Window& w = run.log_window;
  run.dir->append_metrics(json{{"step", run.state.step},
                               {"epoch", epoch + 1},
                               {"loss", w.mean(&StepStats::loss)},
                               {"reconstruction", w.mean(&StepStats::reconstruction)},
                               {"regularizer", w.mean(&StepStats::regularizer)},
                               {"weight", last.weight},
                               {"lr", last.lr},
                               {"grad_norm", last.grad_norm},
                               {"time", run.elapsed()}});
  run.log_window = Window{};
}

// The weights that evaluations and figures use for one scope: the Polyak average when the run
// keeps one (--ema), else the trained weights themselves.
std::unique_ptr<nn::WeightAverage::Swap> averaged(Run& run) {
  nn::WeightAverage* a = run.model->average();
  return a ? std::make_unique<nn::WeightAverage::Swap>(*a) : nullptr;
}

void write_images(Run& run, const std::string& tag) {
  const auto weights = averaged(run);
  write_samples(*run.model, run.prep, *run.dir, tag, run.cfg.figure_samples);
  write_reconstructions(*run.model, run.prep, *run.dir, tag, run.test_x, std::max<int64_t>(1, run.cfg.figure_samples / 2));
}

json log_information(Run& run, int64_t epoch);

// The rest of the current epoch.
void train_epoch(Run& run, int64_t epoch) {
  const TrainConfig& c = run.cfg;
  const int64_t done = (run.loader->position().index + c.batch - 1) / c.batch;
  app::Progress progress(fmt::format("epoch {}/{}", epoch + 1, c.epochs), run.loader->batches_per_epoch() - done);
  data::Batch batch;
  StepStats last;
  for (int64_t i = 1; run.loader->next(batch); ++i) {
    StepStats s = train_step(run, batch.images, epoch);
    run.log_window.add(s), run.epoch_window.add(s);
    progress.update(i, fmt::format("loss {:.3f}", s.loss));
    if (run.state.step % c.log_every == 0) log_metrics(run, s, epoch);
    if (c.checkpoint_every > 0 && run.state.step % c.checkpoint_every == 0) save(run);
    if (c.sample_every > 0 && run.state.step % c.sample_every == 0) write_images(run, step_tag(run.state.step));
    if (c.mi_every > 0 && run.state.step % c.mi_every == 0) log_information(run, epoch);
    last = s;
  }
  if (run.log_window.n > 0) log_metrics(run, last, epoch);  // the epoch's steps since the last line
}

// I_q(x;z) (appendix A.3, logsumexp over the M posteriors), KL and the reconstruction NLL per pixel on
// the first M test images, with fixed draws: information.jsonl. Returns the row.
json log_information(Run& run, int64_t epoch) {
  const Tensor x = run.test_x.slice(0, 0, std::min(run.cfg.mi_examples, run.test_x.size(0))).contiguous();
  const auto weights = averaged(run);
  Generator g(kEvalSeed + 1);
  const vae::MutualInformation mi = vae::mutual_information(*run.model, x, run.cfg.batch, g);
  Generator ge(kEvalSeed + 2);
  const vae::ElboEstimate e = vae::test_elbo(*run.model, x, run.cfg.batch, ge);
  json row{{"step", run.state.step},
           {"epoch", epoch + 1},
           {"mi", mi.mi},
           {"mi_ceiling", mi.ceiling},
           {"mi_examples", mi.m},
           {"kl", e.kl},
           {"nll_per_pixel", -e.reconstruction / double(shape_numel(run.data.shape))}};
  // a discrete family's NLL in bits per dimension (the unit of CIFAR-10 likelihoods)
  if (run.model->decoder().likelihood().discrete())
    row["nll_bits_per_dim"] = -e.reconstruction / (double(shape_numel(run.data.shape)) * std::log(2.0));
  run.dir->append_information(row);
  run.information = row;
  return row;
}

// Test ELBO, the information line, PNGs and curves, and a checkpoint.
void end_of_epoch(Run& run, int64_t epoch) {
  const Window train = run.epoch_window;
  run.epoch_window = Window{};
  Generator g(kEvalSeed);
  vae::ElboEstimate t;
  {
    const auto weights = averaged(run);
    t = vae::test_elbo(*run.model, run.test_x, run.cfg.batch, g);
  }
  json test{{"epoch", epoch + 1},  {"step", run.state.step}, {"test_elbo", t.elbo},
            {"test_reconstruction", t.reconstruction}, {"test_kl", t.kl}, {"time", run.elapsed()}};
  if (run.model->decoder().likelihood().discrete())  // -ELBO in bits per dimension: a bound on the NLL
    test["test_elbo_bits_per_dim"] = -t.elbo / (double(shape_numel(run.data.shape)) * std::log(2.0));
  run.dir->append_test(test);
  // the line of this step, unless --mi-every has logged it already
  const json info = !run.information.empty() && run.information["step"] == run.state.step ? run.information
                                                                                          : log_information(run, epoch);
  write_images(run, epoch_tag(epoch + 1));
  write_training_curves(*run.dir);
  save(run);
  fmt::print("epoch {}: train loss {:.3f} (reconstruction {:.3f}, regularizer {:.3f}); test ELBO {:.3f} "
             "(reconstruction {:.3f}, KL {:.3f}); I_q(x;z) {:.3f} of at most log {} = {:.3f}; step {}, {:.1f}s\n",
             epoch + 1, train.mean(&StepStats::loss), train.mean(&StepStats::reconstruction),
             train.mean(&StepStats::regularizer), t.elbo, t.reconstruction, t.kl, info["mi"].get<double>(),
             info["mi_examples"].get<int64_t>(), info["mi_ceiling"].get<double>(), run.state.step, run.elapsed());
  std::fflush(stdout);
}

void train(Run& run) {
  const int64_t first = run.loader->position().epoch;
  if (first >= run.cfg.epochs)
    fmt::print("the run has already trained {} epoch(s); pass a larger --epochs to go on\n", first);
  for (int64_t epoch = first; epoch < run.cfg.epochs; ++epoch) {
    train_epoch(run, epoch);
    end_of_epoch(run, epoch);
  }
  fmt::print("done: {} steps, {:.1f}s. Samples: {}/samples, reconstructions: {}/recon, curves: {}, checkpoint: {}\n",
             run.state.step, run.elapsed(), run.dir->path().string(), run.dir->path().string(),
             run.dir->curves_path(), run.dir->checkpoint_path());
}

// Ends a progress line left half-drawn on a terminal.
const char* line_break() { return isatty(STDERR_FILENO) ? "\n" : ""; }

// What the stop leaves behind. The checkpoint on disk is called good only after it is checked
// again from the file: it loads (the loader refuses non-finite weights), and the loss of its
// weights on the batch it was saved at (rebuilt from its position and the data) is finite.
std::string last_checkpoint_note(const Run& run) {
  if (!run.dir) return "nothing was written";
  const std::string path = run.dir->checkpoint_path();
  if (!std::filesystem::exists(path)) return "nothing was saved, and no checkpoint had been saved yet";
  try {
    Generator init(0);
    vae::VAE model(model_config(run.cfg, run.data.shape), run.p, init);
    std::unique_ptr<nn::Optimizer> opt = make_optimizer(run.cfg, model.named_parameters());
    nn::TrainState state;
    nn::load_checkpoint(path, model, opt.get(), state);
    const Tensor x = saved_at_batch(run, state);
    if (!x.defined()) return fmt::format("nothing was saved; the checkpoint {} holds no step to check", path);
    const double l = loss_on(run, model, x, state.step);
    if (!std::isfinite(l))
      return fmt::format("nothing was saved; the checkpoint {} (step {}) is not good: its loss on the batch it was "
                         "saved at is {}", path, state.step, number_str(l));
    return fmt::format("nothing was saved; the last good checkpoint is {} (step {}: it loads, its weights are "
                       "finite, and their loss on the batch it was saved at is {:.4f})",
                       path, state.step, l);
  } catch (const std::exception& e) {
    return fmt::format("nothing was saved; the checkpoint {} is not good: {}", path, e.what());
  }
}
}  // namespace

int main(int argc, char** argv) {
  Run run;
  if (int rc = parse_flags(argc, argv, run.cfg); rc >= 0) return rc;
  try {
    open_run(run, argc, argv);
    train(run);
  } catch (const NonFiniteError& e) {  // a loss, gradient, test result or loaded weight that is not finite
    std::fprintf(stderr, "%sgenvae-train: stopped: %s; %s\n", line_break(), e.what(), last_checkpoint_note(run).c_str());
    return kExitNonFinite;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%sgenvae-train: %s\n", line_break(), e.what());
    return 1;
  }
  return 0;
}
