// figures.cpp: sample grids, reconstruction pairs and training curves as PNGs (figures.h).
#include "apps/common/figures.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "apps/common/plot.h"
#include "engine/ops.h"
#include "nn/data/images.h"
#include "vae/samplers.h"

namespace gv::app {
namespace {

constexpr uint64_t kFigureSeed = 8675309;  // the fixed z of every sample grid

// The values of `key` in each row; NaN where a row lacks it (or holds no number).
std::vector<double> column(const std::vector<json>& rows, const std::string& key) {
  std::vector<double> out;
  out.reserve(rows.size());
  for (const json& r : rows)
    out.push_back(r.contains(key) && r[key].is_number() ? r[key].get<double>()
                                                        : std::numeric_limits<double>::quiet_NaN());
  return out;
}

Series series(const std::string& name, const std::vector<json>& rows, const std::string& x, const std::string& y,
              bool markers = false) {
  return Series{name, column(rows, x), column(rows, y), markers};
}

}  // namespace

data::Image upscale(const data::Image& img, int64_t factor) {
  data::Image out(img.height * factor, img.width * factor, img.channels);
  for (int64_t y = 0; y < out.height; ++y)
    for (int64_t x = 0; x < out.width; ++x)
      for (int64_t c = 0; c < img.channels; ++c) out.at(y, x, c) = img.at(y / factor, x / factor, c);
  return out;
}

// Small images (MNIST's 28x28) are drawn at 2x or more, so that a grid is comfortable to look at.
void write_image_grid(const std::string& path, const Tensor& images, int64_t nrow) {
  const int64_t factor = std::max<int64_t>(1, 64 / std::max<int64_t>(1, images.size(-1)));
  data::write_png(path, upscale(data::tensor_to_image(data::make_grid(images.contiguous(), nrow, 2, 0.5)), factor));
}

std::vector<std::string> write_samples(vae::Model& model, const Preprocessing& prep,
                                       const RunDir& dir, const std::string& tag, int64_t n) {
  ag::NoGradGuard no_grad;
  Generator g(kFigureSeed);
  vae::Samples s = vae::sample_ancestral(model, n, g);
  std::vector<std::string> files;
  if (s.mean.defined()) {  // a PixelCNN decoder has no closed-form mean: its draws only
    files.push_back(dir.samples_png(tag, "mean"));
    write_image_grid(files.back(), prep.to_display(s.mean));
  }
  if (model.decoder().likelihood().name() == "bernoulli") {
    files.push_back(dir.samples_png(tag, "draw"));
    write_image_grid(files.back(), prep.to_display(s.x));
  }
  return files;
}

std::string write_reconstructions(vae::Model& model, const Preprocessing& prep,
                                  const RunDir& dir, const std::string& tag, const Tensor& x, int64_t count) {
  ag::NoGradGuard no_grad;
  const int64_t n = std::min<int64_t>(count, x.size(0)), cols = std::min<int64_t>(8, n);
  Tensor in = x.slice(0, 0, n).contiguous();
  auto [mu, logvar] = model.encode(ag::Var(in.to(model.device())));
  Generator g(kFigureSeed);
  vae::Decoder& d = model.decoder();
  Tensor rec = (d.has_mean() ? d.mean(mu.data()) : d.sample(mu.data(), g)).to(Device::cpu());  // (n, C, H, W)
  std::vector<Tensor> rows;                      // a row of inputs, then the row of their reconstructions
  for (int64_t s = 0; s < n; s += cols) {
    int64_t e = std::min(n, s + cols);
    rows.push_back(prep.to_display(in.slice(0, s, e)));
    rows.push_back(prep.to_display(rec.slice(0, s, e)));
  }
  std::string path = dir.recon_png(tag);
  write_image_grid(path, concat(rows, 0), cols);
  return path;
}

std::string write_training_curves(const RunDir& dir) {
  std::vector<json> train = read_jsonl(dir.metrics_path()), test = read_jsonl(dir.test_path()),
                    info = read_jsonl(dir.information_path());
  std::vector<Plot> plots(6);
  plots[0] = {"training loss", "step", "-(E log p(x|z) - lambda R), nats", {series("loss", train, "step", "loss")}};
  plots[1] = {"reconstruction", "step", "E_q log p(x|z), nats",
              {series("train", train, "step", "reconstruction"),
               series("test", test, "step", "test_reconstruction", true)}};
  plots[2] = {"regularizer", "step", "R(q), nats",
              {series("R(q)", train, "step", "regularizer"), series("test KL", test, "step", "test_kl", true)}};
  plots[3] = {"test ELBO per epoch", "step", "nats per example", {series("test ELBO", test, "step", "test_elbo", true)}};
  plots[4] = {"mutual information I_q(x;z) (test images)", "step", "nats",
              {series("I_q(x;z)", info, "step", "mi", true), series("ceiling log M", info, "step", "mi_ceiling")}};
  plots[5] = {"reconstruction NLL per pixel (test images)", "step", "nats per pixel",
              {series("NLL / pixel", info, "step", "nll_per_pixel", true)}};
  write_plots_png(dir.curves_path(), plots, 2);
  return dir.curves_path();
}

}  // namespace gv::app
