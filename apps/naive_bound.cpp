// naive_bound.cpp: genvae-naive-bound, section 2.2 of Zhao, Song and Ermon (2017) as an experiment.
// The naive lower bound, eq. (3), log p(x) >= E_{p(z)}[log p(x|z)] with z ~ p(z) drawn independently
// of x, is maximized by a decoder that ignores z (eq. 4): for every z the best member of the family
// P for the whole data distribution, which for a factorized Bernoulli is the per-pixel data mean m,
// with the closed-form value sum_j [m_j log m_j + (1 - m_j) log(1 - m_j)]. The program trains the
// same MLP VAE, from the same initial weights and on the same batches, two ways:
//   (a) on the naive bound (the decoder only: vae::naive_objective),
//   (b) on the ELBO, with z ~ q(z|x) (vae::objective with the KL),
// and measures the spread of g(z) = E[x|z] across z ~ p(z), its distance to m, and each decoder's
// naive bound against the closed-form optimum. Output folder (--out): samples.png (g(z) for the
// same 64 z under (a) and (b), and m), curves.png, metrics.jsonl, config.json, result.json.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <vector>

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "apps/common/datasets.h"
#include "apps/common/figures.h"
#include "apps/common/font.h"
#include "apps/common/plot.h"
#include "apps/common/run_dir.h"
#include "apps/common/train_config.h"
#include "apps/progress.h"
#include "engine/ops.h"
#include "nn/data/images.h"
#include "vae/estimators.h"
#include "nn/train_step.h"
#include "vae/objective.h"

using namespace gv;
using namespace gv::app;

namespace {

constexpr uint64_t kFigureSeed = 8675309;    // the 64 z of samples.png
constexpr uint64_t kSpreadSeed = 31415926;   // the z's of the spread measured during training
constexpr uint64_t kEvalSeed = 1234567;      // the z's of the final measurements

struct Options {
  std::string data_dir, out = "runs/naive-bound";
  int64_t limit = -1, test_limit = -1, epochs = 10, batch = 100, latent = 20, hidden = 200, hidden_layers = 2;
  int64_t log_every = 50, spread_samples = 1000, threads = 0;
  std::string device = "cpu";
  double lr = 1e-3;
  uint64_t seed = 1;
  bool force = false;
};

int parse_flags(int argc, char** argv, Options& o) {
  CLI::App app{
      "genvae-naive-bound: section 2.2 of Zhao, Song and Ermon (2017). Trains the same MLP decoder on\n"
      "dynamically binarized MNIST two ways, from the same initial weights on the same batches:\n"
      "  (a) the naive bound, eq. (3): maximize E_{p(z)}[log p(x|z)], z ~ N(0, I) drawn without x;\n"
      "  (b) the ELBO: maximize E_{q(z|x)}[log p(x|z)] - KL(q(z|x) || p(z)).\n"
      "and shows that (a) maps every z to the same image, the per-pixel data mean m (eq. 4), while (b)\n"
      "does not. The spread of g(z) is the mean over pixels of the variance of g(z) = E[x|z] across\n"
      "z ~ p(z); the naive bound's optimum is sum_j [m_j log m_j + (1 - m_j) log(1 - m_j)]."};
  app.footer(
      "\nOutput (--out): samples.png (g(z) for the same 64 z ~ p(z) under (a) and (b), beside m), curves.png,\n"
      "metrics.jsonl (every --log-every steps), config.json, result.json (the spreads, distances and bounds).");
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  app.add_option("--data-dir", o.data_dir, "MNIST's IDX files (default: $GENVAE_MNIST_DIR, else ../shared/data/mnist)");
  app.add_option("--limit", o.limit, "use only N training examples (-1: all)")->check(at_least(-1))->capture_default_str();
  app.add_option("--test-limit", o.test_limit, "test examples for the test ELBO of both (-1: all)")
      ->check(at_least(-1))->capture_default_str();
  app.add_option("--epochs", o.epochs, "passes over the training set")
      ->check(int_range(1, 100000))->capture_default_str();
  app.add_option("--batch", o.batch, "mini-batch size, at most the training set's size (an epoch's last short batch is dropped)")
      ->check(int_range(1, int64_t(1) << 20))->capture_default_str();
  app.add_option("--latent", o.latent, "latent dimensions Z")->check(int_range(1, 4096))->capture_default_str();
  app.add_option("--hidden", o.hidden, "units per hidden layer of the MLP encoder and decoder")
      ->check(int_range(1, 100000))->capture_default_str();
  app.add_option("--hidden-layers", o.hidden_layers, "hidden layers in the encoder and in the decoder")
      ->check(int_range(1, 16))->capture_default_str();
  app.add_option("--lr", o.lr, "Adam's learning rate (both variants)")->check(number_above(0, false))->capture_default_str();
  app.add_option("--seed", o.seed, "seed of the initial weights (the same for both), data order, binarization and z draws")
      ->check(uint64_any())->capture_default_str();
  app.add_option("--log-every", o.log_every, "measure and log both variants every N steps")
      ->check(at_least(1))->capture_default_str();
  app.add_option("--spread-samples", o.spread_samples, "z ~ p(z) draws for the final spread and distance")
      ->check(at_least(2))->capture_default_str();
  app.add_option("--threads", o.threads, "CPU threads for OpenMP and OpenBLAS (0: every core)")
      ->check(int_range(0, 1024))->capture_default_str();
  add_device_flag(app, o.device);
  app.add_option("--out", o.out, "the output folder")->capture_default_str();
  app.add_flag("--force", o.force, "delete an earlier run in --out and start over");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return -1;
}

// ---- measurements ---------------------------------------------------------------------------------

// What the data set says: m, the per-pixel mean of the training intensities (= the mean of the
// dynamically binarized pixels), and the closed-form optimum of the naive bound.
struct DataStats {
  Tensor mean;             // (1, C, H, W) float32: m
  double optimum = 0;      // sum_j [m_j log m_j + (1 - m_j) log(1 - m_j)], nats per example (0 log 0 = 0)
  double spread = 0;       // mean over pixels of the variance of the intensities across the images
  double distance = 0;     // mean over images of ||x - m||_2 (intensities): the scale of the distances
};

DataStats data_stats(const Tensor& images) {
  DataStats s;
  const Tensor x = images.to(DType::f32).contiguous();
  const int64_t n = x.size(0), d = x.numel() / n;
  const float* px = x.data<float>();
  std::vector<double> m(d, 0.0), sq(d, 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < d; ++j) m[j] += px[i * d + j], sq[j] += double(px[i * d + j]) * px[i * d + j];
  for (int64_t j = 0; j < d; ++j) {
    m[j] /= double(n);
    s.spread += (sq[j] / double(n) - m[j] * m[j]) / double(d);
    if (m[j] > 0) s.optimum += m[j] * std::log(m[j]);
    if (m[j] < 1) s.optimum += (1 - m[j]) * std::log1p(-m[j]);
  }
  for (int64_t i = 0; i < n; ++i) {
    double r = 0;
    for (int64_t j = 0; j < d; ++j) r += (px[i * d + j] - m[j]) * (px[i * d + j] - m[j]);
    s.distance += std::sqrt(r) / double(n);
  }
  Shape one = x.shape();
  one[0] = 1;
  s.mean = Tensor::from_vector(m, one).to(DType::f32);
  return s;
}

// g(z) for the given z: (N, C, H, W).
Tensor decoder_means(vae::VAE& m, const Tensor& z) {
  ag::NoGradGuard ng;
  return m.decoder().mean(z.to(m.device())).to(Device::cpu());  // figures and spreads are computed on the host
}

struct Spread {
  double spread = 0;    // mean over pixels of Var_z g(z)
  double distance = 0;  // mean over z of ||g(z) - m||_2
};

Spread measure_spread(vae::VAE& model, const Tensor& z, const Tensor& data_mean) {
  Tensor g = decoder_means(model, z).to(DType::f64);  // (N, C, H, W)
  const int64_t n = g.size(0);
  Spread s;
  s.spread = gv::mean(gv::mean(gv::square(g - gv::mean(g, {0}, true)), {0})).item();
  Tensor d = (g - data_mean.to(DType::f64)).reshape({n, -1});
  s.distance = gv::sum(gv::sqrt(gv::sum(gv::square(d), {1}))).item() / double(n);
  return s;
}

// The naive bound E_x E_{p(z)} log p(x|z) on the training images, one z per image: with x the
// intensities, Bernoulli's log p = x l - softplus(l) is linear in x, so this is the exact expectation
// over the dynamic binarization.
double naive_bound(vae::VAE& model, const Tensor& images, Generator& g) {
  ag::NoGradGuard ng;
  const int64_t n = images.size(0), b = 1000;
  double total = 0;
  for (int64_t s = 0; s < n; s += b) {
    Tensor x = images.slice(0, s, std::min(n, s + b));
    total += vae::naive_objective(model, x, g).bound.item() * double(x.size(0));
  }
  GV_CHECK(std::isfinite(total), NonFiniteError, "naive_bound: the bound E_x E_p(z) log p(x|z) is {} on {} images", total, n);
  return total / double(n);
}

// ---- training -------------------------------------------------------------------------------------

struct Variant {
  std::string key, label;
  std::unique_ptr<vae::VAE> model;
  std::unique_ptr<nn::Adam> opt;
  Generator z_rng;  // z ~ p(z) for (a), eps for (b)'s reparameterization: the same stream
  double loss_sum = 0, recon_sum = 0, kl_sum = 0;  // sums over the steps since the last log row
  int64_t window = 0;
  double last_loss = 0;
};

struct Experiment {
  Options o;
  std::unique_ptr<RunDir> dir;
  LoadedData data;
  Preprocessing prep = Preprocessing::for_likelihood("bernoulli");
  std::shared_ptr<vae::Likelihood> p = vae::bernoulli();
  std::shared_ptr<vae::Regularizer> kl = vae::kl();
  DataStats stats;
  Variant a, b;
  Device device;  // --device
  int64_t step = 0;
  std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
  double seconds() const { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); }
};

vae::ModelConfig model_config(const Options& o, const Shape& shape) {
  vae::ModelConfig c;
  c.arch = "mlp";
  c.data_shape = shape;
  c.latent = o.latent;
  c.hidden = o.hidden;
  c.hidden_layers = o.hidden_layers;
  return c;
}

void setup(Experiment& e, int argc, char** argv) {
  const Options& o = e.o;
  const RunDirMode mode = o.force ? RunDirMode::force : RunDirMode::create;
  RunDir::check(o.out, mode);  // before the data is read; the folder itself only once all is checked
  const int threads = set_threads(o.threads);
  e.device = checked_device(o.device);
  DataSpec spec;
  spec.name = "mnist";
  spec.dir = o.data_dir;
  spec.limit = o.limit;
  spec.test_limit = o.test_limit;
  e.data = load_data(spec);
  const int64_t n = e.data.train.size();
  GV_CHECK(n >= o.batch, ValueError, "--batch {} is larger than the {} training examples (--limit {})", o.batch, n,
           o.limit);
  e.dir = std::make_unique<RunDir>(o.out, mode);
  e.stats = data_stats(e.data.train.images);
  const vae::ModelConfig mc = model_config(o, e.data.shape);
  // the same initial weights: two models built from generators in the same state
  for (Variant* v : {&e.a, &e.b}) {
    Generator init = Generator::stream(o.seed, 0);
    v->model = std::make_unique<vae::VAE>(mc, e.p, init);
    v->model->to(e.device);
    v->opt = std::make_unique<nn::Adam>(v->model->named_parameters(), o.lr);
    v->z_rng = Generator::stream(o.seed, 1);
  }
  e.a.key = "naive", e.a.label = "(a) naive bound";
  e.b.key = "elbo", e.b.label = "(b) ELBO";
  json cfg = {{"data-dir", resolve_data_path(spec)}, {"limit", o.limit},      {"test-limit", o.test_limit},
              {"epochs", o.epochs},                  {"batch", o.batch},      {"latent", o.latent},
              {"hidden", o.hidden},                  {"hidden-layers", o.hidden_layers},
              {"lr", o.lr},                          {"seed", o.seed},        {"log-every", o.log_every},
              {"spread-samples", o.spread_samples},  {"threads-used", threads}, {"train-examples", n},
              {"test-examples", e.data.test.size()}, {"parameters", e.a.model->parameter_count()}};
  std::string cmd;
  for (int i = 0; i < argc; ++i) cmd += (i ? " " : "") + std::string(argv[i]);
  cfg["command"] = cmd;
  e.dir->write_config(cfg);
  fmt::print("{}: MNIST {} training examples, dynamically binarized; MLP VAE {}-{}x{}-{} ({} parameters each), "
             "Adam lr {}, {} threads\n",
             e.dir->path().string(), n, shape_numel(e.data.shape), o.hidden_layers, o.hidden, o.latent,
             e.a.model->parameter_count(), o.lr, threads);
  fmt::print("closed-form optimum of the naive bound, sum_j [m log m + (1-m) log(1-m)]: {:.3f} nats\n",
             e.stats.optimum);
  std::fflush(stdout);
}

void step_variant(Experiment& e, Variant& v, const Tensor& x, bool naive) {
  double recon = 0, reg = 0;
  auto loss = [&] {
    if (naive) {
      vae::NaiveTerms t = vae::naive_objective(*v.model, x, v.z_rng);
      recon = t.bound.item();
      return t.loss;
    }
    vae::ObjectiveTerms t = vae::objective(*v.model, x, *e.kl, 1.0, v.z_rng);
    recon = t.reconstruction.item();
    reg = t.regularizer.item();
    return t.loss;
  };
  double l = 0;
  try {
    l = nn::train_step(*v.opt, loss).loss;
  } catch (const NonFiniteError& err) {
    GV_THROW(NonFiniteError, "{}: {} at step {}", v.label, err.what(), e.step + 1);
  }
  v.loss_sum += l, v.recon_sum += recon, v.kl_sum += reg, ++v.window;
  v.last_loss = l;
}

void log_row(Experiment& e, const Tensor& z) {
  json row = {{"step", e.step}, {"time", e.seconds()}};
  for (Variant* v : {&e.a, &e.b}) {
    Spread s = measure_spread(*v->model, z, e.stats.mean);
    if (v->window > 0) {  // the means of the training steps since the last row (none at step 0)
      const double n = double(v->window);
      row[v->key + "_loss"] = v->loss_sum / n;
      if (v == &e.b) row["elbo_reconstruction"] = v->recon_sum / n, row["elbo_kl"] = v->kl_sum / n;
    }
    row[v->key + "_spread"] = s.spread;
    row[v->key + "_distance"] = s.distance;
    v->loss_sum = v->recon_sum = v->kl_sum = 0, v->window = 0;
  }
  e.dir->append_metrics(row);
}

void train(Experiment& e) {
  const Options& o = e.o;
  data::BatchLoader loader(e.data.train, o.batch, true, o.seed + 1, true);
  Generator data_rng = Generator::stream(o.seed, 2);
  Generator spread_rng(kSpreadSeed);
  const Tensor z_log = normal({256, o.latent}, spread_rng, 0, 1, e.a.model->dtype());
  log_row(e, z_log);  // step 0: the shared initial weights
  data::Batch batch;
  for (int64_t epoch = 0; epoch < o.epochs; ++epoch) {
    Progress progress(fmt::format("epoch {}/{}", epoch + 1, o.epochs), loader.batches_per_epoch());
    for (int64_t i = 1; loader.next(batch); ++i) {
      const Tensor x = e.prep.train_batch(batch.images, data_rng);  // one binarization, seen by both
      step_variant(e, e.a, x, true);
      step_variant(e, e.b, x, false);
      ++e.step;
      if (e.step % o.log_every == 0) log_row(e, z_log);
      progress.update(i, fmt::format("loss (a) {:.2f} (b) {:.2f}", e.a.last_loss, e.b.last_loss));
    }
  }
  if (e.a.window > 0) log_row(e, z_log);
}

// ---- figures --------------------------------------------------------------------------------------

data::Image upscale_rgb(const data::Image& gray, int64_t factor) {
  return upscale(data::convert_channels(gray, 3), factor);
}

void paste(data::Image& dst, const data::Image& src, int64_t x0, int64_t y0) {
  for (int64_t y = 0; y < src.height; ++y)
    for (int64_t x = 0; x < src.width; ++x)
      for (int64_t c = 0; c < 3; ++c)
        if (y0 + y < dst.height && x0 + x < dst.width) dst.at(y0 + y, x0 + x, c) = src.at(y, x, c);
}

// samples.png: title; the two 8x8 grids of g(z) for the same 64 z, each under its label and its
// measured spread and distance to m; at the right the data mean m and the naive bound of each
// decoder against the closed-form optimum.
std::string write_samples_figure(Experiment& e, const json& result) {
  Generator g(kFigureSeed);
  const Tensor z = normal({64, e.o.latent}, g, 0, 1, e.a.model->dtype());
  const int64_t factor = 2, margin = 16, gap = 28, line = text_height(2) + 8;
  auto grid = [&](vae::VAE& m) {
    return upscale_rgb(data::tensor_to_image(data::make_grid(decoder_means(m, z), 8, 2, 0.5)), factor);
  };
  const data::Image ga = grid(*e.a.model), gb = grid(*e.b.model);
  const data::Image gm = upscale_rgb(data::tensor_to_image(data::make_grid(e.stats.mean, 1, 2, 0.5)), 2 * factor);
  const json &ra = result["naive"], &rb = result["elbo"];
  auto num = [](const json& v) { return fmt::format("{:.2f}", v.get<double>()); };
  // the right column: m, then the naive bound E_x E_p(z) log p(x|z) of each decoder and its optimum
  const std::vector<std::string> bounds = {"naive bound", "E log p(x|z),", "z from p(z):",
                                           "optimum " + num(result["data"]["naive_bound_optimum"]),
                                           "(a)     " + num(ra["naive_bound"]), "(b)     " + num(rb["naive_bound"])};
  int64_t right = text_width("data mean m", 2);
  for (const auto& t : bounds) right = std::max<int64_t>(right, text_width(t, 2));
  const int64_t title_h = text_height(2), ly = margin + title_h + 16, top = ly + 2 * line + 8;
  const int64_t width = margin + ga.width + gap + gb.width + gap + right + margin;
  const int64_t height = top + ga.height + margin + text_height(1) + margin;
  data::Image img(height, width, 3);
  std::fill(img.pixels.begin(), img.pixels.end(), uint8_t(255));
  const Rgb black{0, 0, 0}, grey{80, 80, 80};
  draw_text(img, margin, margin, "g(z) = E[x|z] for the same 64 z drawn from p(z) = N(0, I)", black, 2);
  const int64_t xa = margin, xb = xa + ga.width + gap, xm = xb + gb.width + gap;
  auto label = [&](int64_t x, const std::string& name, const json& r) {
    draw_text(img, x, ly, name, black, 2);
    draw_text(img, x, ly + line,
              fmt::format("spread {:.1e}, dist. to m {:.2f}", r["spread"].get<double>(),
                          r["distance_to_data_mean"].get<double>()),
              grey, 2);
  };
  label(xa, "(a) naive bound, eq. (3)", ra);
  label(xb, "(b) ELBO, with q(z|x)", rb);
  draw_text(img, xm, ly, "data mean m", black, 2);
  paste(img, ga, xa, top);
  paste(img, gb, xb, top);
  paste(img, gm, xm, top);
  int64_t y = top + gm.height + 24;
  for (size_t i = 0; i < bounds.size(); ++i, y += line) draw_text(img, xm, y, bounds[i], i < 3 ? grey : black, 2);
  draw_text(img, margin, top + ga.height + margin,
            fmt::format("Both from the same initial weights, trained on the same {} batches.  spread: mean over pixels of "
                        "Var_z g(z), {} z.  dist.: mean ||g(z) - m||_2 (data images: {:.2f}).  Bounds in nats.",
                        e.step, e.o.spread_samples, e.stats.distance),
            grey, 1);
  const std::string path = e.dir->file("samples.png");
  data::write_png(path, img);
  return path;
}

std::string write_curves(Experiment& e) {
  std::vector<json> rows = read_jsonl(e.dir->metrics_path());
  auto col = [&](const std::string& key) {
    std::vector<double> v;
    for (const json& r : rows) v.push_back(r.contains(key) ? r[key].get<double>() : std::nan(""));
    return v;
  };
  std::vector<double> steps = col("step");
  auto series = [&](const std::string& name, const std::string& key) { return Series{name, steps, col(key)}; };
  std::vector<Plot> plots(4);
  Series opt{"optimum sum_j H(m_j)", {steps.size() > 1 ? steps[1] : 0, steps.back()},
             {-e.stats.optimum, -e.stats.optimum}};
  plots[0] = {"(a) naive bound: training loss", "step", "-E_p(z) log p(x|z), nats",
              {series("(a) loss", "naive_loss"), opt}};
  plots[1] = {"(b) ELBO: training loss", "step", "-ELBO, nats",
              {series("(b) -ELBO", "elbo_loss"), series("(b) KL", "elbo_kl")}};
  plots[2] = {"spread of g(z) across z from p(z)", "step", "mean over pixels of Var_z g(z)",
              {series("(a) naive", "naive_spread"), series("(b) ELBO", "elbo_spread")}};
  plots[3] = {"distance of g(z) to the data mean", "step", "mean ||g(z) - m||_2",
              {series("(a) naive", "naive_distance"), series("(b) ELBO", "elbo_distance")}};
  const std::string path = e.dir->curves_path();
  write_plots_png(path, plots, 2);
  return path;
}

// ---- results --------------------------------------------------------------------------------------

json measure(Experiment& e) {
  Generator zg(kEvalSeed);
  const Tensor z = normal({e.o.spread_samples, e.o.latent}, zg, 0, 1, e.a.model->dtype());
  json r = json::object();
  r["steps"] = e.step;
  r["train_examples"] = e.data.train.size();
  r["data"] = {{"naive_bound_optimum", e.stats.optimum},
               {"spread", e.stats.spread},
               {"distance_to_data_mean", e.stats.distance}};
  for (Variant* v : {&e.a, &e.b}) {
    Spread s = measure_spread(*v->model, z, e.stats.mean);
    Generator g(kEvalSeed + 1);
    const double bound = naive_bound(*v->model, e.data.train.images, g);
    json j = {{"spread", s.spread},
              {"distance_to_data_mean", s.distance},
              {"naive_bound", bound},
              {"gap_to_optimum", e.stats.optimum - bound}};
    Generator t(kEvalSeed + 2);
    vae::ElboEstimate el = vae::test_elbo(*v->model, e.prep.eval_set(e.data.test.images), 500, t);
    j["test_elbo"] = el.elbo;
    j["test_reconstruction"] = el.reconstruction;
    j["test_kl"] = el.kl;
    r[v->key] = j;
  }
  r["spread_ratio_elbo_over_naive"] = r["elbo"]["spread"].get<double>() / r["naive"]["spread"].get<double>();
  r["seconds"] = e.seconds();
  return r;
}

void print_table(const json& r) {
  const json &a = r["naive"], &b = r["elbo"], &d = r["data"];
  auto row = [](const std::string& name, const std::string& va, const std::string& vb, const std::string& note = "") {
    fmt::print("  {:<36} {:>12} {:>12}  {}\n", name, va, vb, note);
  };
  auto num = [](const json& v) { return fmt::format("{:.4g}", v.get<double>()); };
  fmt::print("after {} steps ({:.1f}s) on {} training examples:\n", r["steps"].get<int64_t>(), r["seconds"].get<double>(),
             r["train_examples"].get<int64_t>());
  row("", "(a) naive", "(b) ELBO");
  row("spread of g(z): mean_j Var_z g_j(z)", num(a["spread"]), num(b["spread"]),
      fmt::format("data: {:.4g}", d["spread"].get<double>()));
  row("mean ||g(z) - m||_2", num(a["distance_to_data_mean"]), num(b["distance_to_data_mean"]),
      fmt::format("data: {:.4g}", d["distance_to_data_mean"].get<double>()));
  row("naive bound E_x E_p(z) log p(x|z)", num(a["naive_bound"]), num(b["naive_bound"]),
      fmt::format("optimum sum_j [m log m + (1-m) log(1-m)]: {:.4f}", d["naive_bound_optimum"].get<double>()));
  row("  gap to the optimum", num(a["gap_to_optimum"]), num(b["gap_to_optimum"]));
  row("test ELBO (nats)", num(a["test_elbo"]), num(b["test_elbo"]), "(a)'s encoder is never trained");
  row("  of which KL", num(a["test_kl"]), num(b["test_kl"]));
  fmt::print("spread (b) / (a): {:.3g}\n", r["spread_ratio_elbo_over_naive"].get<double>());
}

const char* line_break() { return isatty(STDERR_FILENO) ? "\n" : ""; }

}  // namespace

int main(int argc, char** argv) {
  Experiment e;
  if (int rc = parse_flags(argc, argv, e.o); rc >= 0) return rc;
  try {
    setup(e, argc, argv);
    train(e);
    json result = measure(e);
    write_json_file(e.dir->file("result.json"), result);
    const std::string samples = write_samples_figure(e, result), curves = write_curves(e);
    print_table(result);
    fmt::print("wrote {}, {}, {}\n", samples, curves, e.dir->file("result.json"));
  } catch (const std::exception& ex) {
    std::fprintf(stderr, "%sgenvae-naive-bound: %s\n", line_break(), ex.what());
    return 1;
  }
  return 0;
}
