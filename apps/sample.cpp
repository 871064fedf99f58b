// sample.cpp: genvae-sample, drawing from a trained VAE (a genvae-train run directory or checkpoint).
// Two samplers (vae/samplers.h):
//   ancestral  z ~ p(z), x ~ p(x|z): the generative model itself (Proposition 3's model); poor when
//              q(z) is far from p(z), as for the unregularized VAE (R = 0)
//   markov     the chain of Proposition 2, eq. (6): z ~ q(z|x), x ~ p(x|z), started from noise or
//              from test images; it samples p_data whenever every posterior q(x|z) is in the
//              likelihood family, whether or not q(z) matches p(z)
// Writes PNG grids and a JSON summary with a convergence number per kept step of the chain: the
// nearest-neighbour distance to held-out test images, next to the same number for ancestral
// samples and for real test images (see --help).
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "apps/common/classifier.h"
#include "apps/common/datasets.h"
#include "apps/common/figures.h"
#include "apps/common/font.h"
#include "apps/common/run_dir.h"
#include "apps/common/train_config.h"
#include "apps/common/trained_run.h"
#include "apps/progress.h"
#include "engine/ops.h"
#include "engine/random.h"
#include "nn/data/images.h"
#include "vae/samplers.h"

using namespace gv;
using namespace gv::app;
namespace fs = std::filesystem;

namespace {

struct SampleOptions {
  std::string run;  // run directory or checkpoint file
  std::string out;  // the main PNG ("" = DIR/samples-<mode>.png beside the checkpoint)
  std::string data_dir;
  std::string mode = "both", start = "noise";
  std::string classifier;  // a genvae-classifier folder or file: score the samples
  int64_t n = 32, steps = 100, keep = 10, nn_examples = 1000, threads = 0, show = 32;
  std::string device = "cpu";
  bool mean_chain = false;
  uint64_t seed = 1;
};

const char* kDescription =
    "genvae-sample: draw from a trained VAE (a genvae-train run directory or checkpoint).\n"
    "  ancestral: N samples z ~ p(z); the decoder means g(z) as a grid (Bernoulli: also the draws\n"
    "             x ~ p(x|z)).\n"
    "  markov:    N chains z ~ q(z|x), x ~ p(x|z) (Proposition 2, eq. 6), started from noise\n"
    "             (uniform [0,1] pixels preprocessed as a training batch: for Bernoulli each pixel a\n"
    "             fair coin) or from the first N test images; the figure has one row per chain\n"
    "             (the first --show) and one column per kept step (column 0: the start), showing\n"
    "             the decoder means g(z) of each step (a PixelCNN's draws), and a second grid holds\n"
    "             the final states.\n"
    "Files (--out P.png, default DIR/samples-<mode>.png): ancestral mode: P = means, P-draw.png\n"
    "(Bernoulli draws, not with --mean-chain); markov: P = the chains, P-final.png; both: P = the\n"
    "chains, P-final.png, P-ancestral.png, P-ancestral-draw.png; always P.json, the summary.\n"
    "Convergence (in the JSON): the nearest-neighbour distance, the mean over images x of\n"
    "min_r |x - r|^2 / (|x|^2 + |r|^2) (0: equal, 1: no overlap; binary: 1 - Dice) to the test\n"
    "images r after the first N (--nn-examples of them), pixels in [0,1] as the model sees them\n"
    "(Bernoulli: binary), for the chains' states at each kept step (draws x ~ p(x|z); means with\n"
    "--mean-chain), for the ancestral samples (the same), and for the first N test images: the\n"
    "level of real data. A blurry mean pays through its speckled draws. It does not see diversity\n"
    "(chains stuck in one mode score well): look at the figure too.";

int parse_flags(int argc, char** argv, SampleOptions& o) {
  CLI::App app{kDescription};
  app.add_option("run", o.run, "run directory (its checkpoint.safetensors is used) or a checkpoint file")->required();
  app.add_option("--mode", o.mode, "ancestral, markov or both")
      ->check(CLI::IsMember({"ancestral", "markov", "both"}))->capture_default_str();
  app.add_option("--n", o.n, "samples (ancestral) and chains (markov)")
      ->check(int_range(1, 4096))->capture_default_str();
  app.add_option("--steps", o.steps, "transitions T of each chain")
      ->check(int_range(1, int64_t(1) << 30))->capture_default_str();
  app.add_option("--keep", o.keep, "kept states K, evenly spaced, the last step among them (K <= T)")
      ->check(int_range(1, 1000))->capture_default_str();
  app.add_option("--start", o.start, "where the chains start: noise (random pixels) or test (the first N test images)")
      ->check(CLI::IsMember({"noise", "test"}))->capture_default_str();
  app.add_flag("--mean-chain", o.mean_chain,
               "use the means E[x|z] instead of draws x ~ p(x|z): as the chains' next state and as the ancestral samples");
  app.add_option("--nn-examples", o.nn_examples, "test images the convergence distance compares against")
      ->check(at_least(1))->capture_default_str();
  app.add_option("--show", o.show, "samples and chains drawn in the PNGs (the first N of --n; every figure uses all --n)")
      ->check(int_range(1, 4096))->capture_default_str();
  app.add_option("--classifier", o.classifier,
                 "a genvae-classifier folder (or its classifier.safetensors): score the ancestral draws, the chains' "
                 "final states and the first --n test images by the classifier's mean top-class confidence and the "
                 "entropy of its predicted-label histogram (MNIST-sized images)");
  app.add_option("--out", o.out, "the main PNG; the other files are named after it (default: samples-<mode>.png beside the checkpoint)");
  app.add_option("--data-dir", o.data_dir, "the data set's location, when it moved since training");
  app.add_option("--seed", o.seed, "seed of z, of the pixel draws and of the noise start")->check(uint64_any())->capture_default_str();
  app.add_option("--threads", o.threads, "CPU threads (0: every core)")->check(int_range(0, 1024))->capture_default_str();
  add_device_flag(app, o.device);
  try {
    app.parse(argc, argv);
    if (o.mode != "ancestral" && o.keep > o.steps)
      throw CLI::ValidationError("--keep", fmt::format("must be <= --steps ({}), got {}", o.steps, o.keep));
    if (!o.out.empty() && fs::path(o.out).extension() != ".png")
      throw CLI::ValidationError("--out", fmt::format("must name a .png file, got {}", o.out));
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return -1;
}

// The nearest-neighbour distance of images a (N, ...) to references b (M, ...), pixels in [0,1]: the
// mean over a's images x of min over b's images r of |x - r|^2 / (|x|^2 + |r|^2), in [0, 1] (0: x = r;
// 1: no overlap; for binary images one minus the Dice overlap). Scaling by the norms keeps a faint
// or sparse image from looking close to everything, as it does under the plain squared distance.
double nn_distance(const Tensor& a_img, const Tensor& b_img) {
  const int64_t p = a_img.numel() / a_img.size(0);
  Tensor a = a_img.to(DType::f32).reshape({a_img.size(0), p}), b = b_img.to(DType::f32).reshape({b_img.size(0), p});
  Tensor aa = sum(a * a, {1}, true), bb = sum(b * b, {1}, false);  // (N, 1), (M)
  Tensor norms = clamp(aa + bb, 1e-12, 1e30);
  Tensor d = clamp(norms - 2.0 * matmul(a, b.transpose(0, 1)), 0, 1e30) / norms;  // (N, M)
  return mean(neg(max(neg(d), {1}))).item();
}

// P-<suffix>.png beside P.png
std::string sibling(const std::string& main_png, const std::string& suffix) {
  fs::path p(main_png);
  return (p.parent_path() / (p.stem().string() + suffix)).string();
}

// The chain figure: images (N * K, C, H, W) in [0,1], one row per chain and one column per kept
// state, column k labelled labels[k] (its step) in a top margin.
void write_chain_grid(const std::string& path, const Tensor& images, int64_t ncol, const std::vector<std::string>& labels) {
  const int64_t pad = 2, w = images.size(3);
  const int64_t factor = std::max<int64_t>(1, 64 / std::max<int64_t>(1, images.size(-1)));  // as write_image_grid
  data::Image grid = data::convert_channels(data::tensor_to_image(data::make_grid(images.contiguous(), ncol, pad, 0.5)), 3);
  const int scale = w * factor >= 32 ? 2 : 1;
  const int64_t margin = text_height(scale) + 4 * scale + 4;
  data::Image out(margin + grid.height * factor, grid.width * factor, 3);
  std::fill(out.pixels.begin(), out.pixels.end(), uint8_t(255));
  for (int64_t y = 0; y < grid.height * factor; ++y)
    for (int64_t x = 0; x < out.width; ++x)
      for (int64_t c = 0; c < 3; ++c) out.at(margin + y, x, c) = grid.at(y / factor, x / factor, c);
  for (size_t k = 0; k < labels.size(); ++k) {
    const int64_t cx = (pad + int64_t(k) * (w + pad) + w / 2) * factor;  // centre of column k
    draw_text(out, int(cx - text_width(labels[k], scale) / 2), int(margin - 2 * scale - 2 - text_height(scale)), labels[k],
              Rgb{0, 0, 0}, scale);
  }
  data::write_png(path, out);
}

Tensor first(const Tensor& x, int64_t n) { return x.slice(0, 0, std::min(n, x.size(0))).contiguous(); }

// The chains, run in pieces (each a call of sample_markov_chain keeping its last state; the same
// draws as one call, as they share g) so that progress can be shown. Returns the kept states.
std::vector<vae::Samples> run_chains(TrainedRun& l, const Tensor& x0, const SampleOptions& o, Generator& g) {
  const std::vector<int64_t> kept = vae::markov_chain_kept_steps(o.steps, o.keep);
  const int64_t piece = std::max<int64_t>(1, o.steps / 100);
  Progress progress("markov chain steps", o.steps);
  std::vector<vae::Samples> out;
  Tensor x = x0;
  int64_t t = 0;
  for (int64_t k : kept) {
    while (t < k) {
      int64_t len = std::min(piece, k - t);
      vae::Samples s = std::move(vae::sample_markov_chain(*l.model, x, len, 1, g, o.mean_chain).back());
      x = s.x;
      t += len;
      progress.update(t);
      if (t == k) out.push_back(std::move(s));
    }
  }
  return out;
}

json sample(TrainedRun& l, const SampleOptions& o, DigitClassifier* classifier, const std::string& main_png,
            std::vector<std::string>& files) {
  const Preprocessing prep = Preprocessing::for_likelihood(l.cfg.likelihood);
  const bool bernoulli = l.model->decoder().likelihood().name() == "bernoulli";
  const bool anc = o.mode != "markov", chain = o.mode != "ancestral";
  const Tensor& test = l.test_x;  // as the model sees it; the first N start chains, the rest are references
  GV_CHECK(test.size(0) > o.n, IOError, "the test set has {} images; --n {} needs more than {} (the first --n "
           "start the chains and measure real data, the rest are the references)", test.size(0), o.n, o.n);
  Tensor real = prep.to_display(first(test, o.n)), refs = prep.to_display(test.slice(0, o.n, test.size(0)).contiguous());
  json j = json::object(), seconds = json::object();
  j["checkpoint"] = l.checkpoint;
  j["step"] = l.state.step;
  j["epochs_completed"] = l.state.epoch;
  j["data"] = l.cfg.data;
  j["likelihood"] = l.cfg.likelihood;
  j["regularizer"] = l.cfg.regularizer;
  j["lambda"] = l.cfg.lambda;
  j["mode"] = o.mode;
  j["n"] = o.n;
  j["seed"] = o.seed;
  j["nn_examples"] = refs.size(0);
  j["nn_distance_test"] = nn_distance(real, refs);
  json quality = json::object();
  if (classifier) quality["test"] = to_json(score_samples(*classifier, real));
  Generator g(o.seed);
  if (anc) {
    auto t0 = std::chrono::steady_clock::now();
    vae::Samples s = vae::sample_ancestral(*l.model, o.n, g, o.mean_chain);
    std::string mean_png = o.mode == "ancestral" ? main_png : sibling(main_png, "-ancestral.png");
    // a decoder without a closed-form mean (PixelCNN): the main grid shows its draws
    write_image_grid(mean_png, first(prep.to_display(s.mean.defined() ? s.mean : s.x), o.show));
    files.push_back(mean_png);
    if (bernoulli && !o.mean_chain && s.mean.defined()) {
      files.push_back(sibling(mean_png, "-draw.png"));
      write_image_grid(files.back(), first(prep.to_display(s.x), o.show));
    }
    j["nn_distance_ancestral"] = nn_distance(prep.to_display(s.x), refs);
    if (classifier) quality["ancestral"] = to_json(score_samples(*classifier, prep.to_display(s.x)));
    seconds["ancestral"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  if (chain) {
    auto t0 = std::chrono::steady_clock::now();
    Tensor x0;
    if (o.start == "test") x0 = first(l.test_x, o.n);
    else x0 = prep.train_batch(uniform({o.n, l.shape[0], l.shape[1], l.shape[2]}, g), g);
    std::vector<vae::Samples> kept = run_chains(l, x0, o, g);
    std::vector<int64_t> steps = vae::markov_chain_kept_steps(o.steps, o.keep);
    const int64_t shown = std::min(o.n, o.show);
    std::vector<Tensor> cols{first(prep.to_display(x0), shown).to(DType::f32)};  // (shown, C, H, W) per state
    std::vector<std::string> labels{"0"};
    std::vector<double> dist;
    for (size_t i = 0; i < kept.size(); ++i) {
      Tensor m = prep.to_display(kept[i].mean.defined() ? kept[i].mean : kept[i].x);
      cols.push_back(first(m, shown).to(DType::f32));
      labels.push_back(std::to_string(steps[i]));
      dist.push_back(nn_distance(prep.to_display(kept[i].x), refs));
    }
    // rows are chains, columns the kept states: stack to (shown, K + 1, C, H, W), then flatten
    std::vector<Tensor> per_state;
    for (const Tensor& c : cols) per_state.push_back(c.unsqueeze(1));
    const Tensor grid = concat(per_state, 1);
    write_chain_grid(main_png, grid.reshape({shown * int64_t(cols.size()), grid.size(2), grid.size(3), grid.size(4)}),
                     int64_t(cols.size()), labels);
    files.push_back(main_png);
    files.push_back(sibling(main_png, "-final.png"));
    write_image_grid(files.back(), cols.back());
    if (classifier) quality["chain_final"] = to_json(score_samples(*classifier, prep.to_display(kept.back().x)));
    j["steps"] = o.steps;
    j["keep"] = o.keep;
    j["start"] = o.start;
    j["mean_chain"] = o.mean_chain;
    j["kept_steps"] = steps;
    j["nn_distance_start"] = nn_distance(prep.to_display(x0), refs);
    j["nn_distance_chain"] = dist;
    seconds["markov"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  j["nn_distance_note"] =
      "mean over images x of min over the reference test images r of |x - r|^2 / (|x|^2 + |r|^2) (0: equal, "
      "1: no overlap), pixels in [0,1] as the model sees them (Bernoulli: binary): x the samples x ~ p(x|z) (the means with "
      "--mean-chain), the chains' states, and for nn_distance_test real test images";
  if (classifier) {
    quality["note"] =
        "mean_confidence: the mean over images of the classifier's top-class probability (how digit-like each "
        "image is to it); label_entropy: the entropy in nats of the histogram of its predicted labels (how evenly "
        "the ten classes are covered; at most log 10). Neither sees diversity within a class, copies of training "
        "images or the likelihood. Images: the draws x ~ p(x|z) (means with --mean-chain), binary for Bernoulli";
    j["quality"] = quality;
  }
  j["seconds"] = seconds;
  return j;
}

void print_summary(const json& j) {
  fmt::print("{} (step {}, {}, {})\n", j["checkpoint"].get<std::string>(), j["step"].get<int64_t>(),
             j["likelihood"].get<std::string>(), j["regularizer"].get<std::string>());
  fmt::print("nearest-test-image distance |x - r|^2 / (|x|^2 + |r|^2) ({} references; 0 = equal, 1 = disjoint):\n",
             j["nn_examples"].get<int64_t>());
  fmt::print("  real test images     {:.4f}\n", j["nn_distance_test"].get<double>());
  if (j.contains("nn_distance_ancestral"))
    fmt::print("  ancestral samples    {:.4f}\n", j["nn_distance_ancestral"].get<double>());
  if (j.contains("nn_distance_chain")) {
    fmt::print("  chain start {:<8} {:.4f}\n", "(" + j["start"].get<std::string>() + ")", j["nn_distance_start"].get<double>());
    const auto& steps = j["kept_steps"];
    const auto& dist = j["nn_distance_chain"];
    for (size_t i = 0; i < steps.size(); ++i)
      fmt::print("  chain step {:<9} {:.4f}\n", steps[i].get<int64_t>(), dist[i].get<double>());
  }
  if (j.contains("quality")) {
    fmt::print("classifier: mean top-class confidence, predicted-label entropy (nats, at most {:.3f}):\n", std::log(10.0));
    for (const char* k : {"test", "ancestral", "chain_final"})
      if (j["quality"].contains(k))
        fmt::print("  {:<12} {:.4f}  {:.4f}  ({} images)\n", k, j["quality"][k]["mean_confidence"].get<double>(),
                   j["quality"][k]["label_entropy"].get<double>(), j["quality"][k]["n"].get<int64_t>());
  }
}

}  // namespace

int main(int argc, char** argv) {
  SampleOptions o;
  if (int rc = parse_flags(argc, argv, o); rc >= 0) return rc;
  try {
    set_threads(o.threads);
    LoadOptions lo;
    lo.device = checked_device(o.device);
    lo.data_dir = o.data_dir;
    lo.test_limit = o.n + o.nn_examples;
    std::unique_ptr<DigitClassifier> classifier;
    if (!o.classifier.empty()) classifier = load_classifier(o.classifier);  // a bad path fails before any work
    TrainedRun l = load_trained_run(o.run, lo);
    check_outputs_finite(l);
    GV_CHECK(!classifier || l.shape == (Shape{1, 28, 28}), ShapeError,
             "--classifier scores MNIST-sized images (1, 28, 28); this run's images are {}", shape_str(l.shape));
    std::string main_png = o.out.empty()
                               ? (fs::path(l.checkpoint).parent_path() / fmt::format("samples-{}.png", o.mode)).string()
                               : o.out;
    if (fs::path(main_png).has_parent_path()) fs::create_directories(fs::path(main_png).parent_path());
    std::vector<std::string> files;
    json report = sample(l, o, classifier.get(), main_png, files);
    std::string json_path = sibling(main_png, ".json");
    files.push_back(json_path);
    report["files"] = files;
    write_json_file(json_path, report);
    print_summary(report);
    for (const auto& f : files) fmt::print("wrote {}\n", f);
  } catch (const NonFiniteError& e) {
    std::fprintf(stderr, "%s: %s\n", "genvae-sample", e.what());
    return 3;  // as genvae-train and genvae-eval: a non-finite weight or result
  } catch (const std::exception& e) {
    std::fprintf(stderr, "genvae-sample: %s\n", e.what());
    return 1;
  }
  return 0;
}
