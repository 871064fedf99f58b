// seqvae.cpp: genvae-seqvae, the paper's sequential VAE experiment (Zhao, Song and Ermon 2017,
// section 3.2, Figure 4, Proposition 5), in two subcommands:
//   train    one run: --model sequential (T steps), onestep (one step with T times the latent
//            code: the same total code size) or infusion (Bordes et al. 2016, the baseline), on
//            MNIST, Fashion-MNIST, CIFAR-10 or a folder of images, with the Gaussian (L2) family.
//            Writes into --out: config.json, metrics.jsonl, checkpoint.safetensors (each epoch's
//            end, atomically; --resume continues exactly), samples.png (rows: samples, columns:
//            the steps of the chain from the prior, Fig. 4), reconstructions.png (first column the
//            test image, then the chain of reconstructions), steps.json and steps.png: per step,
//            the test reconstruction error, the samples' sharpness against the data's, and the
//            posterior variance E Var q(x | z(0..t)) with whether Proposition 5 holds.
//   compare  several runs' steps.json side by side: one PNG of the per-step figures, a Markdown
//            table and a JSON file.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "apps/common/datasets.h"
#include "apps/common/figures.h"
#include "apps/common/flags.h"
#include "apps/common/plot.h"
#include "apps/common/run_dir.h"
#include "apps/common/train_config.h"
#include "apps/progress.h"
#include "engine/ops.h"
#include "nn/checkpoint.h"
#include "nn/optim.h"
#include "nn/train_step.h"
#include "vae/sequential.h"

using namespace gv;
using namespace gv::app;
namespace fs = std::filesystem;

namespace {

constexpr uint64_t kEvalSeed = 4242;  // the figures' and evaluations' draws: the same in every run

struct SeqOptions {
  // data
  std::string data = "mnist", data_dir, cache_dir;
  int64_t image_size = 32, limit = -1, test_limit = -1;
  bool grayscale = false;
  // model
  std::string model = "sequential", gate = "map";
  int64_t steps = 4, latent = 16, channels1 = 64, channels2 = 128;
  bool no_skips = false, grad_through_prev = false;
  double sigma = 0.17677669529663687;  // 1/sqrt(32): the authors' 16 x squared error
  double alpha0 = 0.1, alpha_step = 0.15;
  // objective
  std::string regularizer = "kl";
  double lambda = 1, reg_param = 0, kl_warmup = 0;
  // optimization
  double lr = 1e-3;
  int64_t epochs = 5, batch = 100, threads = 0;
  std::string device = "cpu";
  uint64_t seed = 1;
  // the run and its evaluation
  std::string out = "runs/seqvae", resume;
  bool force = false;
  int64_t log_every = 50, figure_samples = 10, eval_examples = 2000, posterior_examples = 10000,
          posterior_points = 256;
};

json to_json(const SeqOptions& o) {
  return json{{"data", o.data},
              {"data-dir", o.data_dir},
              {"cache-dir", o.cache_dir},
              {"image-size", o.image_size},
              {"limit", o.limit},
              {"test-limit", o.test_limit},
              {"grayscale", o.grayscale},
              {"model", o.model},
              {"gate", o.gate},
              {"steps", o.steps},
              {"latent", o.latent},
              {"channels1", o.channels1},
              {"channels2", o.channels2},
              {"no-skips", o.no_skips},
              {"grad-through-prev", o.grad_through_prev},
              {"sigma", o.sigma},
              {"alpha0", o.alpha0},
              {"alpha-step", o.alpha_step},
              {"regularizer", o.regularizer},
              {"lambda", o.lambda},
              {"reg-param", o.reg_param},
              {"kl-warmup", o.kl_warmup},
              {"lr", o.lr},
              {"epochs", o.epochs},
              {"batch", o.batch},
              {"threads", o.threads},
              {"seed", o.seed},
              {"log-every", o.log_every},
              {"figure-samples", o.figure_samples},
              {"eval-examples", o.eval_examples},
              {"posterior-examples", o.posterior_examples},
              {"posterior-points", o.posterior_points}};
}

// A run's config.json read back through the flags (add_train_flags below): each key is a flag,
// each value passes that flag's check; the facts train_main adds are skipped. ValueError naming the
// file and CLI11's message ("--steps: ...", or the unknown key) otherwise.
void add_train_flags(CLI::App* tr, SeqOptions& o);
SeqOptions stored_options(const std::string& file) {
  const json j = read_json_file(file);
  GV_CHECK(j.is_object(), ValueError, "{}: expected a JSON object of flags and values", file);
  std::vector<std::string> args = {"genvae-seqvae train"};
  for (const auto& [key, value] : j.items()) {
    if (key == "data-shape" || key == "parameters" || key == "threads-used") continue;  // derived, not flags
    if (value.is_boolean()) {
      args.push_back("--" + key + "=" + (value.get<bool>() ? "true" : "false"));
    } else {  // two arguments, so that an empty string stays a value
      args.push_back("--" + key);
      args.push_back(value.is_string() ? value.get<std::string>() : value.dump());
    }
  }
  SeqOptions o;
  CLI::App app;
  add_train_flags(&app, o);
  std::vector<const char*> argv;
  for (const std::string& a : args) argv.push_back(a.c_str());
  try {
    app.parse(int(argv.size()), argv.data());
  } catch (const CLI::ParseError& e) {
    GV_THROW(ValueError, "{}: {}", file, e.what());
  }
  return o;
}

DataSpec data_spec(const SeqOptions& o) {
  DataSpec d;
  d.name = o.data, d.dir = o.data_dir, d.image_size = o.image_size, d.grayscale = o.grayscale;
  d.limit = o.limit, d.test_limit = o.test_limit, d.cache_dir = o.cache_dir;
  return d;
}

vae::SequentialConfig model_config(const SeqOptions& o, const Shape& shape) {
  vae::SequentialConfig c;
  c.kind = o.model == "infusion" ? "infusion" : "sequential";
  c.data_shape = shape;
  c.steps = o.model == "onestep" ? 1 : o.steps;
  c.latent = o.model == "onestep" ? o.steps * o.latent : o.latent;  // the same total code size
  c.channels1 = o.channels1, c.channels2 = o.channels2;
  c.gate = o.gate, c.skips = !o.no_skips, c.detach_prev = !o.grad_through_prev;
  c.alpha0 = o.alpha0, c.alpha_step = o.alpha_step;
  return c;
}

// ---- training ------------------------------------------------------------------------------------
struct Run {
  SeqOptions o;
  LoadedData data;
  std::unique_ptr<vae::SequentialVAE> model;
  std::unique_ptr<nn::Adam> opt;
  std::unique_ptr<data::BatchLoader> loader;
  std::shared_ptr<vae::Likelihood> p;
  std::shared_ptr<vae::Regularizer> r;
  nn::TrainState state;
  std::unique_ptr<RunDir> dir;
  double elapsed_before = 0;  // seconds trained by earlier processes of this run
  std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
  double elapsed() const {
    return elapsed_before + std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
};

void build(Run& run) {
  const SeqOptions& o = run.o;
  run.data = load_data(data_spec(o));
  GV_CHECK(run.data.train.size() > 0, ValueError, "no training examples (--limit {})", o.limit);
  GV_CHECK(run.data.shape.size() == 3 && run.data.shape[1] % 4 == 0 && run.data.shape[2] % 4 == 0, ShapeError,
           "--data {}: images of {} do not fit the model (height and width divisible by 4); for a folder give "
           "--image-size 32 or 64",
           o.data, shape_str(run.data.shape));
  Generator init = Generator::stream(o.seed, 0);
  run.model = std::make_unique<vae::SequentialVAE>(model_config(o, run.data.shape), init);
  run.model->to(checked_device(o.device));  // before the optimizer: its state goes where the weights are
  run.opt = std::make_unique<nn::Adam>(run.model->named_parameters(), o.lr);
  run.p = vae::gaussian_fixed(o.sigma);
  run.r = vae::make_regularizer(o.regularizer, o.reg_param);
  const int64_t n = run.data.train.size();
  run.loader = std::make_unique<data::BatchLoader>(run.data.train, o.batch, true, o.seed + 1, n >= o.batch);
  run.state.rngs = {{"train", Generator::stream(o.seed, 1)}};
}

double weight_at(const SeqOptions& o, int64_t step) {
  return o.lambda * (o.kl_warmup > 0 ? vae::kl_warmup_weight(step, o.kl_warmup) : 1.0);
}

void save(Run& run) {
  for (const auto& [name, v] : run.model->named_parameters())
    if (const auto bad = first_non_finite(v.data()))
      GV_THROW(NonFiniteError, "parameter {} is {} after step {}; not saved", name, number_str(bad->value),
               run.state.step);
  const data::LoaderPosition pos = run.loader->position();
  run.state.epoch = pos.epoch;
  run.state.batch_in_epoch = (pos.index + run.o.batch - 1) / run.o.batch;
  run.state.extra["config"] = to_json(run.o).dump();
  run.state.extra["elapsed"] = fmt::format("{:.3f}", run.elapsed());
  nn::save_checkpoint(run.dir->checkpoint_path(), *run.model, run.opt.get(), run.state);
}

void train_epoch(Run& run, int64_t epoch) {
  const SeqOptions& o = run.o;
  const int64_t done = (run.loader->position().index + o.batch - 1) / o.batch;
  Progress progress(fmt::format("epoch {}/{}", epoch + 1, o.epochs), run.loader->batches_per_epoch() - done);
  data::Batch batch;
  for (int64_t i = 1; run.loader->next(batch); ++i) {
    const int64_t step = run.state.step + 1;
    const double w = weight_at(o, run.state.step);
    vae::SequentialTerms t;
    nn::StepResult res;
    try {
      res = nn::train_step(*run.opt, [&] {
        t = vae::sequential_objective(*run.model, batch.images, *run.p, *run.r, w, run.state.rng("train"));
        return t.loss;
      });
    } catch (const NonFiniteError& e) {
      GV_THROW(NonFiniteError, "{} at step {} (epoch {})", e.what(), step, epoch + 1);
    }
    run.state.step = step;
    if (step % o.log_every == 0) {
      json row{{"step", step}, {"epoch", epoch + 1}, {"loss", res.loss}, {"weight", w}, {"grad_norm", res.grad_norm}};
      json per = json::array();
      for (const auto& s : t.steps)
        per.push_back(json{{"reconstruction", s.reconstruction.item()},
                           {"regularizer", s.regularizer.defined() ? s.regularizer.item() : 0.0},
                           {"gate", s.gate_mean}});
      row["steps"] = per;
      row["time"] = run.elapsed();
      run.dir->append_metrics(row);
    }
    progress.update(i, fmt::format("loss {:.1f}", res.loss));
  }
}

// Images (T, B, C, H, W) as a list over t -> one grid: row b = [first?, x_0(b), ..., x_(T-1)(b)].
void write_chain_png(const std::string& path, const std::vector<Tensor>& chain, const Tensor& first) {
  const int64_t B = chain[0].size(0), T = int64_t(chain.size()), cols = T + (first.defined() ? 1 : 0);
  std::vector<Tensor> rows;
  for (int64_t b = 0; b < B; ++b) {
    if (first.defined()) rows.push_back(first.slice(0, b, b + 1).to(DType::f32));
    for (int64_t t = 0; t < T; ++t) rows.push_back(chain[size_t(t)].slice(0, b, b + 1).to(DType::f32));
  }
  write_image_grid(path, gv::clamp(gv::concat(rows, 0), 0, 1), cols);
}

// steps.json: per step the test reconstruction error, the samples' sharpness and the posterior variance.
json evaluate(Run& run) {
  const SeqOptions& o = run.o;
  vae::SequentialVAE& m = *run.model;
  const Tensor& test = run.data.test.images;
  const int64_t ne = std::min(o.eval_examples, test.size(0));
  const Tensor x = test.slice(0, 0, ne).contiguous();
  const int64_t D = shape_numel(run.data.shape);
  // the reconstruction chain with z_t = mu_t(x) (infusion: its masks from a fixed seed), in batches
  std::vector<double> sq(size_t(m.steps()), 0.0);
  std::vector<std::vector<Tensor>> recons(size_t(m.steps()));
  Generator gr(kEvalSeed);
  for (int64_t s = 0; s < ne; s += o.batch) {
    const Tensor xb = x.slice(0, s, std::min(ne, s + o.batch)).contiguous(), xb64 = xb.to(DType::f64);
    std::vector<Tensor> chain = vae::reconstruction_chain(m, xb, gr, true);
    for (size_t t = 0; t < chain.size(); ++t) {
      sq[t] += gv::sum(gv::square(chain[t].to(DType::f64) - xb64)).item();
      recons[t].push_back(chain[t]);
    }
  }
  // samples from the prior (infusion: from noise), as many as the evaluation images, in batches
  std::vector<std::vector<Tensor>> samples(size_t(m.steps()));
  Generator gs(kEvalSeed + 1);
  for (int64_t s = 0; s < ne; s += o.batch) {
    std::vector<Tensor> chain = vae::sample_chain(m, std::min(o.batch, ne - s), gs);
    for (size_t t = 0; t < chain.size(); ++t) samples[t].push_back(chain[t]);
  }
  const double data_sharp = vae::laplacian_variance(x);
  // Proposition 5: the data posterior of the first t+1 codes (not for infusion: no density)
  std::vector<vae::StepPosterior> post;
  json prop5 = nullptr;
  if (!m.infusion()) {
    const int64_t np = std::min(o.posterior_examples, test.size(0));
    const Tensor px = test.slice(0, 0, np).contiguous();
    Generator gp(kEvalSeed + 2);
    post = vae::step_posterior_variance(vae::encode_steps(m, px, o.batch), px, o.posterior_points, gp);
    bool holds = true, within_noise = true;
    for (size_t t = 1; t < post.size(); ++t) {
      holds = holds && post[t].variance <= post[t - 1].variance;
      within_noise = within_noise && post[t].variance <= post[t - 1].variance +
                                                            2 * std::hypot(post[t].variance_se, post[t - 1].variance_se);
    }
    prop5 = json{{"non_increasing", holds}, {"within_two_se", within_noise}, {"images", np},
                 {"points", o.posterior_points}};
  }
  json steps = json::array();
  for (int64_t t = 0; t < m.steps(); ++t) {
    const double sharp = vae::laplacian_variance(gv::concat(samples[size_t(t)], 0));
    json row{{"step", t},
             {"recon_mse_per_pixel", sq[size_t(t)] / double(ne * D)},
             {"recon_sq_error_per_image", sq[size_t(t)] / double(ne)},
             {"sample_sharpness", sharp},
             {"sharpness_ratio", sharp / data_sharp},
             {"recon_sharpness_ratio", vae::laplacian_variance(gv::concat(recons[size_t(t)], 0)) / data_sharp}};
    if (!post.empty()) {
      row["posterior_variance"] = post[size_t(t)].variance;
      row["posterior_variance_se"] = post[size_t(t)].variance_se;
      row["posterior_ess"] = post[size_t(t)].ess;
    }
    steps.push_back(row);
  }
  return json{{"model", o.model},
              {"steps", steps},
              {"data_sharpness", data_sharp},
              {"eval_examples", ne},
              {"proposition5", prop5},
              {"train_steps", run.state.step},
              {"train_seconds", run.elapsed()}};
}

// One plot per figure, one series per run in every plot (an empty one where a run has no such
// figure), so that a run has the same colour in all of them.
std::vector<Plot> step_plots(const std::vector<json>& runs, const std::vector<std::string>& labels) {
  Plot err{"test reconstruction error", "step t", "MSE per pixel", {}};
  Plot sharp{"sample sharpness / data's", "step t", "Laplacian variance ratio", {}};
  Plot rsharp{"reconstruction sharpness / data's", "step t", "Laplacian variance ratio", {}};
  Plot var{"posterior variance (Prop. 5)", "step t", "E sum_d Var q(x|z(0..t))", {}};
  bool any_var = false;
  for (size_t i = 0; i < runs.size(); ++i) {
    Series e{labels[i], {}, {}, true}, s{labels[i], {}, {}, true}, rs{labels[i], {}, {}, true},
        v{labels[i], {}, {}, true};
    for (const json& row : runs[i].at("steps")) {
      const double t = row.at("step").get<double>();
      e.x.push_back(t), e.y.push_back(row.at("recon_mse_per_pixel").get<double>());
      s.x.push_back(t), s.y.push_back(row.at("sharpness_ratio").get<double>());
      if (row.contains("recon_sharpness_ratio")) rs.x.push_back(t), rs.y.push_back(row.at("recon_sharpness_ratio").get<double>());
      if (row.contains("posterior_variance")) v.x.push_back(t), v.y.push_back(row.at("posterior_variance").get<double>());
    }
    if (v.x.empty()) v.name += " (no density)";
    any_var = any_var || !v.x.empty();
    err.series.push_back(e), sharp.series.push_back(s), rsharp.series.push_back(rs), var.series.push_back(v);
  }
  std::vector<Plot> plots{err, sharp, rsharp};
  if (any_var) plots.push_back(var);
  return plots;
}

void finish(Run& run) {
  Generator g(kEvalSeed + 3);
  const int64_t n = std::min(run.o.figure_samples, run.data.test.size());
  write_chain_png(run.dir->file("samples.png"), vae::sample_chain(*run.model, n, g), Tensor());
  const Tensor x = run.data.test.images.slice(0, 0, n).contiguous();
  write_chain_png(run.dir->file("reconstructions.png"), vae::reconstruction_chain(*run.model, x, g, true), x);
  fmt::print("evaluating the {} steps on {} test images...\n", run.model->steps(),
             std::min(run.o.eval_examples, run.data.test.size()));
  std::fflush(stdout);
  json report = evaluate(run);
  report["config"] = to_json(run.o);
  write_json_file(run.dir->file("steps.json"), report);
  write_plots_png(run.dir->file("steps.png"), step_plots({report}, {run.o.model}), 2);
  fmt::print("{:>4} {:>12} {:>10} {:>16}\n", "step", "recon MSE", "sharpness", "posterior var");
  for (const json& row : report["steps"])
    fmt::print("{:>4} {:>12.5f} {:>10.3f} {:>16}\n", row["step"].get<int64_t>(), row["recon_mse_per_pixel"].get<double>(),
               row["sharpness_ratio"].get<double>(),
               row.contains("posterior_variance") ? fmt::format("{:.3f}", row["posterior_variance"].get<double>()) : "n/a");
  if (!report["proposition5"].is_null() && run.model->steps() > 1)
    fmt::print("Proposition 5 (posterior variance non-increasing in t): {}\n",
               report["proposition5"]["non_increasing"].get<bool>() ? "holds" : "violated");
  fmt::print("wrote {}: samples.png, reconstructions.png, steps.json, steps.png\n", run.dir->path().string());
}

int train_main(SeqOptions& o, const std::vector<std::string>& given, int argc, char** argv) {
  Run run;
  const bool resuming = !o.resume.empty();
  if (resuming) {
    // A resumed run takes its configuration from the run; only the length of training, the
    // threads and the evaluation's settings may be given again. --epochs equal to the epochs done
    // trains nothing and evaluates the run again.
    const std::vector<std::string> allowed = {"resume", "epochs", "threads", "figure-samples", "eval-examples",
                                              "posterior-examples", "posterior-points"};
    for (const std::string& f : given)
      GV_CHECK(std::find(allowed.begin(), allowed.end(), f) != allowed.end(), ValueError,
               "--{} cannot be changed on --resume (the run's config.json has it); allowed with --resume: --{}", f,
               fmt::join(allowed.begin() + 1, allowed.end(), ", --"));
    const std::string resume = o.resume;
    o = stored_options(RunDir::config_path_in(resume));
    CLI::App again;  // the flags given now (checked above) replace the stored ones
    add_train_flags(&again, o);
    again.parse(argc - 1, argv + 1);  // without the program's name: "train" stands in for it
    o.resume = resume;
  }
  run.o = o;
  const std::string path = resuming ? o.resume : o.out;
  const RunDirMode mode = resuming ? RunDirMode::resume : o.force ? RunDirMode::force : RunDirMode::create;
  RunDir::check(path, mode);
  GV_CHECK(!resuming || fs::exists(RunDir::checkpoint_path_in(path)), IOError,
           "--resume {}: no checkpoint there yet; start over with --force", path);
  const int threads = set_threads(o.threads);
  build(run);
  if (!resuming) run.model->set_data_statistics(run.data.train.images);  // a checkpoint holds them
  if (resuming) {
    nn::load_checkpoint(RunDir::checkpoint_path_in(path), *run.model, run.opt.get(), run.state);
    run.loader->seek(run.state.epoch, std::min(run.loader->size(), run.state.batch_in_epoch * o.batch));
    run.elapsed_before = std::stod(run.state.extra.count("elapsed") ? run.state.extra["elapsed"] : "0");
  }
  run.dir = std::make_unique<RunDir>(path, mode);
  if (resuming) RunDir::truncate_after(run.dir->metrics_path(), "step", run.state.step);
  json cfg = to_json(o);
  cfg["data-shape"] = run.data.shape;
  cfg["parameters"] = run.model->parameter_count();
  cfg["threads-used"] = threads;
  run.dir->write_config(cfg);
  fmt::print("{}: {} ({} steps, {} latent per step, gate {}), {} {} training / {} test images {}, sigma {:.4f}, "
             "{} parameters, {} threads{}\n",
             run.dir->path().string(), o.model, run.model->steps(), run.model->infusion() ? 0 : run.model->config().latent,
             run.model->steps() > 1 || run.model->infusion() ? o.gate : "-", o.data, run.data.train.size(),
             run.data.test.size(), shape_str(run.data.shape), o.sigma, run.model->parameter_count(), threads,
             resuming ? fmt::format(", resuming at step {}", run.state.step) : "");
  std::fflush(stdout);
  for (int64_t epoch = run.loader->position().epoch; epoch < o.epochs; ++epoch) {
    if (run.loader->position().epoch < epoch) run.loader->seek(epoch, 0);
    train_epoch(run, epoch);
    run.loader->seek(epoch + 1, 0);
    save(run);
  }
  finish(run);
  return 0;
}

int compare_main(const std::vector<std::string>& runs, std::string labels_csv, const std::string& out) {
  std::vector<std::string> labels;
  for (size_t b = 0; !labels_csv.empty();) {
    size_t e = labels_csv.find(',', b);
    labels.push_back(labels_csv.substr(b, e == std::string::npos ? std::string::npos : e - b));
    if (e == std::string::npos) break;
    b = e + 1;
  }
  GV_CHECK(labels.empty() || labels.size() == runs.size(), ValueError, "--labels: {} labels for {} runs",
           labels.size(), runs.size());
  std::vector<json> reports;
  for (size_t i = 0; i < runs.size(); ++i) {
    const std::string f = (fs::path(runs[i]) / "steps.json").string();
    GV_CHECK(fs::exists(f), IOError, "{}: no steps.json (the run has not finished: run genvae-seqvae train to its end)",
             runs[i]);
    reports.push_back(read_json_file(f));
    if (labels.size() < runs.size() && labels.size() <= i) labels.push_back(reports.back().value("model", runs[i]));
  }
  if (fs::path(out).has_parent_path()) fs::create_directories(fs::path(out).parent_path());
  write_plots_png(out, step_plots(reports, labels), 2);
  std::string md = "| run | step | recon MSE/pixel | sample sharpness / data | reconstruction sharpness / data | "
                   "posterior variance (± se) | ESS |\n|---|---|---|---|---|---|---|\n";
  json all = json::object();
  for (size_t i = 0; i < reports.size(); ++i) {
    for (const json& row : reports[i]["steps"])
      md += fmt::format("| {} | {} | {:.5f} | {:.3f} | {:.3f} | {} | {} |\n", labels[i], row["step"].get<int64_t>(),
                        row["recon_mse_per_pixel"].get<double>(), row["sharpness_ratio"].get<double>(),
                        row.value("recon_sharpness_ratio", 0.0),
                        row.contains("posterior_variance")
                            ? fmt::format("{:.3f} ± {:.3f}", row["posterior_variance"].get<double>(),
                                          row["posterior_variance_se"].get<double>())
                            : "n/a (no density)",
                        row.contains("posterior_ess") ? fmt::format("{:.1f}", row["posterior_ess"].get<double>()) : "-");
    all[labels[i]] = reports[i];
  }
  md += "\n| run | training steps | training seconds | data sharpness | Prop. 5 (posterior variance non-increasing) |\n"
        "|---|---|---|---|---|\n";
  for (size_t i = 0; i < reports.size(); ++i) {
    const json& p5 = reports[i]["proposition5"];
    md += fmt::format("| {} | {} | {:.0f} | {:.4f} | {} |\n", labels[i], reports[i]["train_steps"].get<int64_t>(),
                      reports[i]["train_seconds"].get<double>(), reports[i]["data_sharpness"].get<double>(),
                      p5.is_null()                        ? "n/a (no density)"
                      : reports[i]["steps"].size() == 1 ? "n/a (one step)"
                                   : p5["non_increasing"].get<bool>() ? "holds"
                                   : p5["within_two_se"].get<bool>()  ? "violated, within 2 standard errors"
                                                                      : "violated");
  }
  const std::string mdf = fs::path(out).replace_extension(".md").string();
  FILE* f = std::fopen(mdf.c_str(), "w");
  GV_CHECK(f != nullptr, IOError, "cannot write {}", mdf);
  std::fputs(md.c_str(), f);
  std::fclose(f);
  write_json_file(fs::path(out).replace_extension(".json").string(), all);
  std::fputs(md.c_str(), stdout);
  fmt::print("wrote {}, {} and {}\n", out, mdf, fs::path(out).replace_extension(".json").string());
  return 0;
}

// Every flag of `genvae-seqvae train`, bound to o's fields. Also how a stored config.json is read
// back (stored_options), so that its values pass the same checks.
void add_train_flags(CLI::App* tr, SeqOptions& o) {
  const std::string gd = "data", gm = "model", gt = "training", gr = "run";
  tr->add_option("--data", o.data, "data set: " + data_names_help())
      ->check(CLI::Validator([](std::string& s) { return valid_data_name(s) ? "" : "unknown data set '" + s + "'; allowed: " + data_names_help(); }, "NAME"))
      ->capture_default_str()->group(gd);
  tr->add_option("--data-dir", o.data_dir, "where the data set is (default: its usual place)")->group(gd);
  tr->add_option("--cache-dir", o.cache_dir, "cifar10: cache the decoded images in this folder (faster later loads)")
      ->group(gd);
  tr->add_option("--image-size", o.image_size, "folder:PATH: images resized and cropped to this square size")
      ->check(CLI::IsMember({32, 64}))->capture_default_str()->group(gd);
  tr->add_flag("--grayscale", o.grayscale, "folder:PATH: one gray channel")->group(gd);
  tr->add_option("--limit", o.limit, "training images (-1: all)")->check(int_range(-1))->capture_default_str()->group(gd);
  tr->add_option("--test-limit", o.test_limit, "test images (-1: all)")->check(int_range(-1))->capture_default_str()->group(gd);
  tr->add_option("--model", o.model, "sequential (T steps), onestep (1 step, T x latent), infusion (the baseline)")
      ->check(CLI::IsMember({"sequential", "onestep", "infusion"}))->capture_default_str()->group(gm);
  tr->add_option("--steps", o.steps, "T, the steps of the chain")->check(int_range(1, 64))->capture_default_str()->group(gm);
  tr->add_option("--latent", o.latent, "latent dimensions per step")->check(int_range(1, 4096))->capture_default_str()->group(gm);
  tr->add_option("--channels1", o.channels1, "feature maps at half resolution")->check(int_range(1, 4096))->capture_default_str()->group(gm);
  tr->add_option("--channels2", o.channels2, "feature maps at quarter resolution")->check(int_range(1, 4096))->capture_default_str()->group(gm);
  tr->add_option("--gate", o.gate, "how x_t mixes the new image with x_(t-1): scalar (one learned number per step) or "
                 "map (the authors' per-pixel gate map)")->check(CLI::IsMember({"scalar", "map"}))->capture_default_str()->group(gm);
  tr->add_flag("--no-skips", o.no_skips, "no U-Net skip from the previous image's down path")->group(gm);
  tr->add_flag("--grad-through-prev", o.grad_through_prev,
               "let gradients flow back through x_(t-1) (default: detached, the authors' choice)")->group(gm);
  tr->add_option("--sigma", o.sigma, "the Gaussian's standard deviation (the L2 loss's scale; default 1/sqrt(32), the "
                 "authors' 16 x squared error)")->check(number_above(0, false))->capture_default_str()->group(gm);
  tr->add_option("--alpha0", o.alpha0, "infusion: alpha at step 0")->check(number_range(0, 1))->capture_default_str()->group(gm);
  tr->add_option("--alpha-step", o.alpha_step, "infusion: alpha grows by this per step")->check(number_range(0, 1))->capture_default_str()->group(gm);
  tr->add_option("--regularizer", o.regularizer, "R(q_t) of every step: kl, none, free-bits, mmd")
      ->check(CLI::IsMember({"kl", "none", "free-bits", "mmd"}))->capture_default_str()->group(gt);
  tr->add_option("--lambda", o.lambda, "the regularizer's weight")->check(number_above(0, true))->capture_default_str()->group(gt);
  tr->add_option("--reg-param", o.reg_param, "free-bits: lambda per dimension; mmd: the kernel width")
      ->check(number_above(0, true))->capture_default_str()->group(gt);
  tr->add_option("--kl-warmup", o.kl_warmup, "the authors' warm-up: lambda x (1 - exp(-step / S)), S = 10000 in their "
                 "code; 0: none")->check(number_above(0, true))->capture_default_str()->group(gt);
  tr->add_option("--lr", o.lr, "Adam's learning rate (the authors': 2e-4)")->check(number_above(0, false))->capture_default_str()->group(gt);
  tr->add_option("--epochs", o.epochs, "epochs")->check(int_range(1, 100000))->capture_default_str()->group(gt);
  tr->add_option("--batch", o.batch, "batch size")->check(int_range(1, 100000))->capture_default_str()->group(gt);
  tr->add_option("--threads", o.threads, "threads (0: every core)")->check(int_range(0, 4096))->capture_default_str()->group(gt);
  add_device_flag(*tr, o.device)->group(gt);
  tr->add_option("--seed", o.seed, "seed of the weights, the data order and the draws")->check(uint64_any())->capture_default_str()->group(gt);
  tr->add_option("--out", o.out, "the run folder")->capture_default_str()->group(gr);
  tr->add_flag("--force", o.force, "replace an existing run in --out")->group(gr);
  tr->add_option("--resume", o.resume, "continue the run in this folder from its checkpoint (with --epochs N to train "
                 "longer)")->group(gr);
  tr->add_option("--log-every", o.log_every, "steps between metrics.jsonl lines")->check(int_range(1))->capture_default_str()->group(gr);
  tr->add_option("--figure-samples", o.figure_samples, "rows of samples.png and reconstructions.png")
      ->check(int_range(1, 1000))->capture_default_str()->group(gr);
  tr->add_option("--eval-examples", o.eval_examples, "test images for the reconstruction error, and samples for the "
                 "sharpness")->check(int_range(1))->capture_default_str()->group(gr);
  tr->add_option("--posterior-examples", o.posterior_examples, "test images that make up q(x|z) for Proposition 5")
      ->check(int_range(1))->capture_default_str()->group(gr);
  tr->add_option("--posterior-points", o.posterior_points, "latent points z(0..t) it is averaged over")
      ->check(int_range(2, 100000))->capture_default_str()->group(gr);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"genvae-seqvae: the sequential VAE of section 3.2 (Fig. 4, Proposition 5) against a one-step VAE of "
               "the same code size and infusion training"};
  app.require_subcommand(1);
  SeqOptions o;
  CLI::App* tr = app.add_subcommand("train", "train one run and write its figures");
  add_train_flags(tr, o);

  std::vector<std::string> runs;
  std::string labels, out = "seqvae-compare.png";
  CLI::App* cmp = app.add_subcommand("compare", "the per-step figures of several runs side by side");
  cmp->add_option("runs", runs, "run folders (each with steps.json)")->required();
  cmp->add_option("--labels", labels, "comma-separated names for the runs (default: each run's model)");
  cmp->add_option("--out", out, "the PNG; the table goes beside it as .md, the numbers as .json")->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    if (*tr) {
      std::vector<std::string> given;
      for (const CLI::Option* op : tr->get_options())
        if (op->count() > 0 && !op->get_lnames().empty()) given.push_back(op->get_lnames()[0]);
      return train_main(o, given, argc, argv);
    }
    return compare_main(runs, labels, out);
  } catch (const NonFiniteError& e) {
    std::fprintf(stderr, "genvae-seqvae: %s\n", e.what());
    return 3;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "genvae-seqvae: %s\n", e.what());
    return 1;
  }
}
