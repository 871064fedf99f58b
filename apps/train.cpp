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

#include <csignal>
#include <cstring>
#include <thread>

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "apps/common/datasets.h"
#include "apps/common/figures.h"
#include "apps/common/run_dir.h"
#include "apps/common/train_config.h"
#include "apps/progress.h"
#include "engine/ops.h"
#include "engine/runtime.h"
#include "nn/checkpoint.h"
#include "nn/distributed.h"
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
  apply_config(read_json_file(file), file, cfg, {"resume", "force", "reseed"});
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
  // the other ranks of a resumed run take it from rank 0 (share_config), which may be the only
  // one that sees the run folder
  if (!cfg.resume.empty() && config_file.empty() && nn::launched_by_mpi() && nn::launcher_rank() != 0) return -1;
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
  nn::ProcessGroup* pg = nullptr;             // the run's processes (one: nn::SingleProcess)
  std::unique_ptr<nn::GradReducer> reducer;   // with more than one: the gradients' averaging

  bool lead() const { return pg->rank() == 0; }  // rank 0 writes the run folder and prints
  int64_t world() const { return pg->world_size(); }

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
  j["world-size"] = run.world();
  std::string cmd;
  for (int i = 0; i < argc; ++i) cmd += (i ? " " : "") + std::string(argv[i]);
  j["command"] = cmd;
  return j;
}

// Rank r's stream `which` (1: the z draws, 2: the data's binarization): streams 1 and 2 for rank
// 0, as a single process has always had, then two more per rank.
Generator rank_stream(uint64_t seed, uint64_t which, int64_t rank) {
  return Generator::stream(seed, which + 2 * uint64_t(rank));
}
std::string stream_name(const std::string& base, int64_t rank) {
  return rank == 0 ? base : fmt::format("{}.rank{}", base, rank);
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
  if (run.pg->gpu() >= 0) run.device = Device::cuda(run.pg->gpu());  // NCCL's GPU (local rank without a number)
  run.model->to(run.device);
  run.opt = make_optimizer(c, run.model->named_parameters());
  run.schedule = make_schedule(c);
  const int64_t n = run.data.train.size();
  GV_CHECK(n > 0, ValueError, "no training examples (--limit {})", c.limit);
  run.loader = std::make_unique<data::BatchLoader>(run.data.train, c.batch, true, c.seed + 1, n >= c.batch);
  const int64_t P = run.world(), rank = run.pg->rank();
  if (P > 1) {
    GV_CHECK(c.batch % P == 0, ValueError,
             "--batch {} cannot be split over {} processes: each takes an equal slice of every batch, so --batch must "
             "be a multiple of the number of processes", c.batch, P);
    GV_CHECK(n >= c.batch, ValueError, "--batch {} is larger than the {} training examples: with {} processes every "
             "batch must be whole", c.batch, n, P);
    GV_CHECK(run.device.is_cpu() || run.pg->backend() == "nccl", ValueError,
             "--device {} with --dist {}: MPI carries CPU tensors; use --dist nccl (or auto) for GPU tensors", c.device,
             run.pg->backend());
    run.loader->set_shard(rank, P);
    run.reducer = std::make_unique<nn::GradReducer>(*run.pg, run.model->parameters(),
                                                    int64_t(c.dist_bucket_mib * 1024 * 1024), !c.dist_no_overlap);
  }
  run.state.rngs = {{"train", rank_stream(c.seed, 1, rank)}, {"data", rank_stream(c.seed, 2, rank)}};
  run.test_x = run.prep.eval_set(run.data.test.images);
}

// Rank 0 loads the checkpoint: the weights, the optimizer and the state with every rank's streams.
nn::TrainState load_saved(Run& run, const std::string& dir) {
  nn::TrainState st;  // no streams named yet: the file's, whatever its world size
  nn::load_checkpoint(RunDir::checkpoint_path_in(dir), *run.model, run.opt.get(), st);
  return st;
}

json state_json(const nn::TrainState& st) {
  json rngs = json::array();
  for (const auto& [name, g] : st.rngs) rngs.push_back({name, g.seed(), g.offset()});
  return {{"step", st.step}, {"epoch", st.epoch}, {"batch", st.batch_in_epoch}, {"extra", st.extra}, {"rngs", rngs}};
}

// Every rank's state from rank 0's (the checkpoint it loaded), with this rank's own two streams:
// the saved ones when the world size is the checkpoint's, fresh ones with --reseed, else refused.
void adopt_state(Run& run, const json& j) {
  nn::TrainState& st = run.state;
  st.step = j["step"], st.epoch = j["epoch"], st.batch_in_epoch = j["batch"];
  st.extra = j["extra"].get<std::map<std::string, std::string>>();
  const int64_t saved = st.extra.count("world-size") ? std::stoll(st.extra["world-size"]) : 1;
  const int64_t P = run.world(), rank = run.pg->rank();
  if (saved != P) {
    GV_CHECK(run.cfg.reseed, ValueError,
             "--resume {}: the run was saved by {} process(es) and is resumed by {}; each process has its own random "
             "streams, so it cannot continue exactly. Resume with {} process(es), or pass --reseed to give every "
             "process fresh streams (from --seed and the step)", run.cfg.resume, saved, P, saved);
    const uint64_t salt = run.cfg.seed ^ (0x9E3779B97F4A7C15ull * uint64_t(st.step + 1));
    st.rngs = {{"train", rank_stream(salt, 1, rank)}, {"data", rank_stream(salt, 2, rank)}};
  } else {
    std::map<std::string, Generator> by_name;
    for (const auto& r : j["rngs"]) {
      Generator g;
      g.set_state(r[1].get<uint64_t>(), r[2].get<uint64_t>());
      by_name[r[0].get<std::string>()] = g;
    }
    for (auto& [base, g] : st.rngs) {
      const auto it = by_name.find(stream_name(base, rank));
      GV_CHECK(it != by_name.end(), IOError, "--resume {}: the checkpoint has no stream {} for rank {}", run.cfg.resume,
               stream_name(base, rank), rank);
      g = it->second;
    }
  }
}

// Puts the data order, the logs and the clock where the checkpoint stopped.
void restore(Run& run) {
  const int64_t index = std::min(run.loader->size(), run.state.batch_in_epoch * run.cfg.batch);
  run.loader->seek(run.state.epoch, index);
  run.elapsed_before = std::stod(run.state.extra.count("elapsed") ? run.state.extra["elapsed"] : "0");
  run.last_checkpoint = run.state.step;
  auto& extra = run.state.extra;
  if (extra.count("log_window")) run.log_window = Window::parse(extra["log_window"]);
  if (extra.count("epoch_window")) run.epoch_window = Window::parse(extra["epoch_window"]);
}

// Start-up of a run on several processes: every rank has rank 0's weights, optimizer and (on
// resume) state, whether or not it can see the run folder.
void share_start(Run& run, bool resuming, const nn::TrainState& saved) {
  const json j = run.lead() && resuming ? state_json(saved) : json();
  if (resuming) adopt_state(run, run.world() > 1 ? json::parse(run.pg->broadcast_string(j.dump())) : j);
  nn::broadcast_module(*run.pg, *run.model);
  nn::broadcast_optimizer(*run.pg, *run.opt);
  if (resuming) restore(run);
}

// Refuses to run when this rank's flags (or facts about its data) differ from rank 0's, naming
// every rank and flag that differs, on every rank.
void check_same_config(Run& run, const json& mine, const std::string& what) {
  if (run.world() == 1) return;
  const json root = json::parse(run.pg->broadcast_string(mine.dump()));
  std::string diff;
  for (const auto& [k, v] : mine.items()) {
    if (rank_local_flags().count(k)) continue;
    // --device: the kind must match (cpu, cuda); each rank may pin its own GPU
    auto kind = [](const json& d) { return d.is_string() ? d.get<std::string>().substr(0, 4) : d.dump(); };
    if (k == "device" && root.contains(k) && kind(root[k]) == kind(v)) continue;
    if (!root.contains(k) || root[k] != v) {
      diff = fmt::format("rank {}: {}{} is {} there but {} on rank 0", run.pg->rank(), what, k, v.dump(),
                         root.contains(k) ? root[k].dump() : "not given");
      break;
    }
  }
  std::vector<std::string> all = run.pg->all_gather_strings(diff);
  std::erase(all, std::string());
  GV_CHECK(all.empty(), ValueError, "the processes of one run must be given the same flags and data; {}",
           fmt::join(all, "; "));
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

// The threads of one process: --threads, else this machine's cores shared by its processes.
int threads_for(const Run& run) {
  if (run.cfg.threads > 0 || run.pg->local_size() <= 1) return set_threads(run.cfg.threads);
  return set_threads(std::max(1, gv::cpu_count() / run.pg->local_size()));
}

void open_run(Run& run, int argc, char** argv) {
  const bool resuming = !run.cfg.resume.empty(), lead = run.lead();
  RunDirMode mode = resuming ? RunDirMode::resume : run.cfg.force ? RunDirMode::force : RunDirMode::create;
  const std::string path = resuming ? run.cfg.resume : run.cfg.out;
  check_same_config(run, to_json(run.cfg), "--");
  // Everything is checked (flags, data, checkpoint) before the folder is made or --force deletes
  // the old run: a refused run leaves nothing behind. Only rank 0 looks at the folder.
  if (lead) {
    RunDir::check(path, mode);
    GV_CHECK(!resuming || std::filesystem::exists(RunDir::checkpoint_path_in(path)), IOError,
             "--resume {}: no checkpoint there yet (the run stopped before its first); start over with --force",
             run.cfg.resume);
  }
  int threads = threads_for(run);
  build(run);
  json facts = derived_facts(run, threads, argc, argv);
  json shared;
  for (const char* k : {"data-shape", "train-examples", "test-examples", "preprocessing", "parameters"}) shared[k] = facts[k];
  check_same_config(run, shared, "the data's ");
  nn::TrainState saved;
  if (resuming && lead) {
    const json stored = read_json_file(RunDir::config_path_in(path));
    if (stored.contains("data-shape"))
      check_data_shape(run.data, stored_shape(stored, RunDir::config_path_in(path)), "the run " + path);
    saved = load_saved(run, path);
  }
  share_start(run, resuming, saved);
  run.config = facts;
  if (!lead) return;
  run.dir = std::make_unique<RunDir>(path, mode);
  if (resuming) truncate_logs(run);
  run.dir->write_config(run.config);
  fmt::print("{}: {} {} training / {} test examples {}, {}; VAE {} ({} parameters), likelihood {}, "
             "regularizer {} (lambda {}), {} threads{}\n",
             run.dir->path().string(), run.cfg.data, run.data.train.size(), run.data.test.size(),
             shape_str(run.data.shape), run.prep.describe(), run.cfg.arch, run.model->parameter_count(),
             run.cfg.likelihood, run.cfg.regularizer, run.cfg.lambda, threads,
             run.world() > 1 ? fmt::format(" per process; {} processes ({}), {} examples each per batch of {}",
                                           run.world(), run.pg->backend(), run.cfg.batch / run.world(), run.cfg.batch)
                             : std::string());
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
// After work that rank 0 alone does (evaluations, figures, checkpoints): the others wait for it
// at a barrier without a deadline, since it may take long (a PixelCNN's samples, a slow disk); a
// rank that dies meanwhile is still caught by mpirun.
void wait_for_lead(Run& run) {
  if (run.world() == 1) return;
  const double t = run.pg->timeout();
  run.pg->set_timeout(0);
  run.pg->barrier();
  run.pg->set_timeout(t);
}

// Every rank calls it (it gathers their streams); rank 0 checks and writes.
void save(Run& run) {
  auto& extra = run.state.extra;
  nn::check_same_weights(*run.pg, *run.model, fmt::format("the checkpoint at step {}", run.state.step));
  std::vector<int64_t> mine;
  for (const auto& [name, g] : run.state.rngs) mine.push_back(int64_t(g.seed())), mine.push_back(int64_t(g.offset()));
  const std::vector<int64_t> all = run.pg->all_gather(mine);
  if (!run.lead()) {
    run.last_checkpoint = run.state.step;
    wait_for_lead(run);
    return;
  }
  nn::TrainState st = run.state;  // with every rank's streams
  st.rngs.clear();
  for (int64_t r = 0; r < run.world(); ++r)
    for (size_t k = 0; k < run.state.rngs.size(); ++k) {
      Generator g;
      g.set_state(uint64_t(all[size_t(r) * mine.size() + 2 * k]), uint64_t(all[size_t(r) * mine.size() + 2 * k + 1]));
      st.rngs.emplace_back(stream_name(run.state.rngs[k].first, r), g);
    }
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
  extra["world-size"] = std::to_string(run.world());
  st.extra = extra;
  st.epoch = run.state.epoch, st.batch_in_epoch = run.state.batch_in_epoch;
  nn::save_checkpoint(run.dir->checkpoint_path(), *run.model, run.opt.get(), st);
  run.last_checkpoint = run.state.step;
  wait_for_lead(run);
}

// One update from the batch's images: objective, backward, clipping, optimizer step.
StepStats train_step(Run& run, const Tensor& images, int64_t epoch) {
  const TrainConfig& c = run.cfg;
  const int64_t step = run.state.step + 1;  // the number of this update
  Tensor x = run.prep.train_batch(images, run.state.rng("data")).to(run.device);  // drawn on the CPU: any device, one batch
  if (step == c.debug_nan_at_step) x = mul(x, std::numeric_limits<double>::quiet_NaN());
  if (step == c.debug_stall_at_step && run.world() > 1 && run.pg->rank() == run.world() - 1)
    std::this_thread::sleep_for(std::chrono::hours(1));  // a rank that stops answering (--dist-timeout's test)
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
        c.grad_clip > 0 ? c.grad_clip : std::numeric_limits<double>::infinity(), run.reducer.get());
    s.loss = r.loss, s.grad_norm = r.grad_norm;
  } catch (const NonFiniteError& e) {
    GV_THROW(NonFiniteError, "{} at step {} (epoch {})", e.what(), step, epoch + 1);
  }
  run.state.step = step;
  if (nn::WeightAverage* a = run.model->average()) a->update();
  s.reconstruction = t.reconstruction.item();
  s.regularizer = t.regularizer.item();
  if (run.world() > 1) {  // each rank's terms are its slice's means: the batch's are their mean
    Tensor m = Tensor::from_vector<double>({s.loss, s.reconstruction, s.regularizer}, {3});
    run.pg->all_reduce_sum_(m);
    const double* v = m.data<double>();
    const double P = double(run.world());
    s.loss = v[0] / P, s.reconstruction = v[1] / P, s.regularizer = v[2] / P;
  }
  return s;
}

void log_metrics(Run& run, const StepStats& last, int64_t epoch) {
  const Window& w = run.log_window;
  if (run.dir) run.dir->append_metrics(json{{"step", run.state.step},
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

// Work that rank 0 alone does (evaluations, figures), then wait_for_lead.
template <class F>
void on_lead(Run& run, F&& f) {
  if (run.lead()) f();
  wait_for_lead(run);
}

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
    if (run.lead()) progress.update(i, fmt::format("loss {:.3f}", s.loss));
    if (run.state.step % c.log_every == 0) log_metrics(run, s, epoch);
    if (c.checkpoint_every > 0 && run.state.step % c.checkpoint_every == 0) save(run);
    if (c.sample_every > 0 && run.state.step % c.sample_every == 0)
      on_lead(run, [&] { write_images(run, step_tag(run.state.step)); });
    if (c.mi_every > 0 && run.state.step % c.mi_every == 0) on_lead(run, [&] { log_information(run, epoch); });
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
  vae::ElboEstimate t;
  json info;
  on_lead(run, [&] {
    Generator g(kEvalSeed);
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
    info = !run.information.empty() && run.information["step"] == run.state.step ? run.information
                                                                                 : log_information(run, epoch);
    write_images(run, epoch_tag(epoch + 1));
    write_training_curves(*run.dir);
  });
  save(run);
  if (!run.lead()) return;
  fmt::print("epoch {}: train loss {:.3f} (reconstruction {:.3f}, regularizer {:.3f}); test ELBO {:.3f} "
             "(reconstruction {:.3f}, KL {:.3f}); I_q(x;z) {:.3f} of at most log {} = {:.3f}; step {}, {:.1f}s\n",
             epoch + 1, train.mean(&StepStats::loss), train.mean(&StepStats::reconstruction),
             train.mean(&StepStats::regularizer), t.elbo, t.reconstruction, t.kl, info["mi"].get<double>(),
             info["mi_examples"].get<int64_t>(), info["mi_ceiling"].get<double>(), run.state.step, run.elapsed());
  std::fflush(stdout);
}

void train(Run& run) {
  const int64_t first = run.loader->position().epoch;
  if (first >= run.cfg.epochs && run.lead())
    fmt::print("the run has already trained {} epoch(s); pass a larger --epochs to go on\n", first);
  for (int64_t epoch = first; epoch < run.cfg.epochs; ++epoch) {
    train_epoch(run, epoch);
    end_of_epoch(run, epoch);
  }
  if (!run.lead()) return;
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


// A rank that mpirun ends (another rank failed, or the job was cancelled) says so before it goes.
char g_signal_note[160];
void on_terminate(int) {
  const ssize_t n = ::write(STDERR_FILENO, g_signal_note, std::strlen(g_signal_note));
  (void)n;
  std::_Exit(128 + SIGTERM);
}

// Ends every rank. An error that all ranks meet at once (flags that differ, a refused resume)
// would race to MPI_Abort; the others give rank 0 a moment to say what it knows first (the last
// good checkpoint), and a rank that failed alone still ends the run within that moment.
[[noreturn]] void abort_run(nn::ProcessGroup& pg, int code) {
  if (pg.rank() != 0) std::this_thread::sleep_for(std::chrono::seconds(2));
  pg.abort(code);
  std::_Exit(code);  // not reached: g++ does not carry [[noreturn]] through a virtual call
}

// The other ranks of a resumed run take its configuration from rank 0 (which read it from the run
// folder), keeping their own rank-local flags (threads, data paths).
void share_config(nn::ProcessGroup& pg, TrainConfig& cfg) {
  if (pg.world_size() == 1 || cfg.resume.empty()) return;
  const json root = json::parse(pg.broadcast_string(to_json(cfg).dump()));
  if (pg.rank() == 0) return;
  json mine = to_json(cfg), merged = root;
  for (const std::string& k : rank_local_flags())
    if (k != "out" && k != "resume" && mine.contains(k)) merged[k] = mine[k];
  cfg = train_config_from_json(merged, "rank 0's configuration");
  cfg.resume = cfg.out = root["resume"].get<std::string>();
}

}  // namespace

int main(int argc, char** argv) {
  Run run;
  if (int rc = parse_flags(argc, argv, run.cfg); rc >= 0) return rc;
  // A resumed run's ranks other than 0 learn its flags (--device, --dist, ...) from rank 0 over
  // a plain MPI group first; the run's own group is made from them (the same one when it is MPI).
  std::unique_ptr<nn::ProcessGroup> boot, own;
  nn::ProcessGroup* pg = nullptr;
  try {
    const auto have = nn::process_group_backends();
    if (!run.cfg.resume.empty() && nn::launched_by_mpi() && std::find(have.begin(), have.end(), "mpi") != have.end()) {
      boot = nn::make_process_group("mpi");
      boot->set_timeout(600);
      share_config(*boot, run.cfg);
    }
    const Device dev = parse_device(run.cfg.device);
    // "--device cuda" without a number: with NCCL, each rank takes its machine's GPU local_rank
    const bool numbered = run.cfg.device.find(':') != std::string::npos;
    if (boot && nn::resolve_backend(run.cfg.dist, dev.is_cuda()) == "mpi") pg = boot.get();
    else pg = (own = nn::make_process_group(run.cfg.dist, dev.is_cuda(), numbered ? dev.index : -1)).get();
    pg->set_timeout(run.cfg.dist_timeout);
    GV_CHECK(pg->backend() != "nccl" || dev.is_cuda(), ValueError,
             "--dist nccl carries GPU tensors: it needs --device cuda (or cuda:N), not --device {}", run.cfg.device);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "genvae-train: %s\n", e.what());
    if (boot && boot->world_size() > 1) boot->abort(1);
    return 1;
  }
  run.pg = pg;
  const bool several = pg->world_size() > 1;
  // messages from the process group name the rank already ("rank 1 of 2 (mpi): ...")
  auto who = [&](const std::exception& e) {
    return several && std::string(e.what()).rfind("rank ", 0) != 0 ? fmt::format("rank {}: ", pg->rank()) : std::string();
  };
  if (several) {
    std::snprintf(g_signal_note, sizeof g_signal_note,
                  "genvae-train: rank %d: ended by the launcher (another rank failed, or the job was cancelled)\n",
                  pg->rank());
    std::signal(SIGTERM, on_terminate);
  }
  try {
    open_run(run, argc, argv);
    train(run);
    pg->barrier();
  } catch (const NonFiniteError& e) {  // a loss, gradient, test result or loaded weight that is not finite
    const std::string note = run.lead() ? last_checkpoint_note(run) : "rank 0 names the last good checkpoint";
    std::fprintf(stderr, "%sgenvae-train: %sstopped: %s; %s\n", line_break(), who(e).c_str(), e.what(), note.c_str());
    if (several) abort_run(*pg, kExitNonFinite);
    return kExitNonFinite;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%sgenvae-train: %s%s\n", line_break(), who(e).c_str(), e.what());
    if (several) abort_run(*pg, 1);
    return 1;
  }
  return 0;
}
