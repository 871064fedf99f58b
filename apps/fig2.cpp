// fig2.cpp: genvae-fig2, the paper's Figure 2 (Zhao, Song and Ermon 2017, section 3.1) for a
// trained VAE with a 2-D latent code: over a G x G grid of z it plots the posterior variance
// sum_d Var_q(x|z)[x_d] of q(x|z) ∝ q(z|x) p_data(x) (p_data: the training images) as a colour map,
// with the decoded digit g(z) drawn over each cell, and measures what the figure shows:
//   - blur: how the posterior variance at z goes with how blurred g(z) is (Pearson and Spearman
//     correlations over the well-supported cells), with two measures of g = clamp(mean, 0, 1):
//       blur(g)      = 1 - sum_d g_d^2 / sum_d g_d   (1 - the ink-weighted mean intensity: 0 for a
//                      black-and-white digit, larger when the ink is spread out in grey)
//       sharpness(g) = sum_d |grad g|_d^2 / sum_d g_d (squared finite differences per unit of ink)
//     and, as a confounder to read them against, the ink sum_d g_d;
//   - Proposition 4: the optimal g(z) is the posterior mean m(z) = E_q(x|z)[x]; reported as
//     ||g(z) - m(z)||^2 against ||g(z) - data mean||^2, and the model's expected reconstruction
//     error at z, E_q(x|z)||g(z) - x||^2 = variance(z) + ||g(z) - m(z)||^2, against the variance
//     (the optimum's error). Distances use the decoder's mean as it is (not clamped), in the space
//     the model sees the data in.
// A cell is well supported when the effective sample size of its weights, 1 / sum_i w_i(z)^2, is
// at least --min-ess: elsewhere q(z) is negligible, a handful of images decide the estimate, and
// the cell is greyed in the figure and left out of the summaries. Writes fig2.png and fig2.json
// (per-cell values and the summary) and prints the summary as a table.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <numeric>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "apps/common/colormap.h"
#include "apps/common/plot.h"
#include "apps/common/run_dir.h"
#include "apps/common/train_config.h"
#include "apps/common/trained_run.h"
#include "apps/progress.h"
#include "engine/ops.h"
#include "vae/data_posterior.h"

using namespace gv;
using namespace gv::app;
namespace fs = std::filesystem;

namespace {

struct Fig2Options {
  std::string run, out, data_dir;
  int64_t grid = 20, examples = -1, batch = 500, zoom = 1, threads = 0;
  std::string device = "cpu";
  double range = 0, min_ess = 10, quantile = 0.005;
};

int parse_flags(int argc, char** argv, Fig2Options& o) {
  CLI::App app{"genvae-fig2: the paper's Figure 2 for a trained VAE with a 2-D latent code: the posterior variance "
               "sum_d Var_q(x|z)[x_d] over a grid of z, with the decoded g(z) drawn over it, and how the two relate "
               "(correlations with blur, Proposition 4's distances)"};
  app.add_option("run", o.run, "genvae-train run directory (or its checkpoint file); the model must have --latent 2")
      ->required();
  app.add_option("--grid", o.grid, "grid points per latent axis (G x G cells)")
      ->check(int_range(2, 100))->capture_default_str();
  app.add_option("--range", o.range,
                 "plot z1 and z2 over [-R, R]; 0: automatic, per axis from the --quantile and 1 - --quantile "
                 "quantiles of the encoder means of the data, widened by 5% on each side")
      ->check(number_above(0, true))->capture_default_str();
  app.add_option("--quantile", o.quantile, "automatic range: the lower quantile of the encoder means")
      ->check(number_range(0.0, 0.25))->capture_default_str();
  app.add_option("--examples", o.examples, "training images that make up p_data (-1: as many as the run trained on)")
      ->check(at_least(-1))->capture_default_str();
  app.add_option("--min-ess", o.min_ess,
                 "cells whose effective sample size 1/sum_i w_i^2 is below this are greyed and left out of the summary")
      ->check(number_above(1, true))->capture_default_str();
  app.add_option("--zoom", o.zoom, "pixels per image pixel in the figure")
      ->check(int_range(1, 8))->capture_default_str();
  app.add_option("--out", o.out, "the PNG to write; the JSON goes beside it with .json (default: RUN/fig2.png)");
  app.add_option("--data-dir", o.data_dir, "the data set's location, when it moved since training");
  app.add_option("--batch", o.batch, "images per encoder batch")
      ->check(int_range(1, int64_t(1) << 20))->capture_default_str();
  app.add_option("--threads", o.threads, "CPU threads (0: every core)")
      ->check(int_range(0, 1024))->capture_default_str();
  add_device_flag(app, o.device);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (o.examples == 0) {
    std::fprintf(stderr, "genvae-fig2: --examples must be -1 (as trained) or at least 1, got 0\n");
    return 1;
  }
  return -1;
}

// ---- statistics ---------------------------------------------------------------------------------

double pearson(const std::vector<double>& a, const std::vector<double>& b) {
  const size_t n = a.size();
  if (n < 3) return NAN;
  const double ma = std::accumulate(a.begin(), a.end(), 0.0) / (double)n;
  const double mb = std::accumulate(b.begin(), b.end(), 0.0) / (double)n;
  double sab = 0, saa = 0, sbb = 0;
  for (size_t i = 0; i < n; ++i) {
    sab += (a[i] - ma) * (b[i] - mb);
    saa += (a[i] - ma) * (a[i] - ma);
    sbb += (b[i] - mb) * (b[i] - mb);
  }
  return saa > 0 && sbb > 0 ? sab / std::sqrt(saa * sbb) : NAN;
}

// Ranks 1..n, ties given their average rank.
std::vector<double> ranks(const std::vector<double>& v) {
  std::vector<size_t> idx(v.size());
  std::iota(idx.begin(), idx.end(), 0);
  std::sort(idx.begin(), idx.end(), [&](size_t x, size_t y) { return v[x] < v[y]; });
  std::vector<double> r(v.size());
  for (size_t i = 0; i < idx.size();) {
    size_t j = i;
    while (j + 1 < idx.size() && v[idx[j + 1]] == v[idx[i]]) ++j;
    for (size_t t = i; t <= j; ++t) r[idx[t]] = 0.5 * (double)(i + j) + 1;
    i = j + 1;
  }
  return r;
}

double spearman(const std::vector<double>& a, const std::vector<double>& b) { return pearson(ranks(a), ranks(b)); }

// The partial correlation of a and b given c: r_ab.c = (r_ab - r_ac r_bc) / sqrt((1 - r_ac^2)(1 - r_bc^2)),
// the correlation left once both are linearly adjusted for c.
double partial_pearson(const std::vector<double>& a, const std::vector<double>& b, const std::vector<double>& c) {
  const double ab = pearson(a, b), ac = pearson(a, c), bc = pearson(b, c);
  const double den = std::sqrt((1 - ac * ac) * (1 - bc * bc));
  return den > 0 ? (ab - ac * bc) / den : NAN;
}

double quantile(std::vector<double> v, double q) {
  std::sort(v.begin(), v.end());
  const double pos = q * (double)(v.size() - 1);
  const size_t i = (size_t)pos;
  return i + 1 < v.size() ? v[i] + (v[i + 1] - v[i]) * (pos - (double)i) : v.back();
}

// ---- the grid ----------------------------------------------------------------------------------

struct Range {
  double lo, hi;
};

// Per axis: [-R, R], or the quantiles of the encoder means widened by 5% of the span on each side.
std::vector<Range> latent_ranges(const Fig2Options& o, const Tensor& mu) {
  if (o.range > 0) return {{-o.range, o.range}, {-o.range, o.range}};
  const std::vector<double> m = mu.to_vector<double>();  // (N, 2)
  std::vector<Range> r;
  for (int j = 0; j < 2; ++j) {
    std::vector<double> col;
    for (size_t i = j; i < m.size(); i += 2) col.push_back(m[i]);
    double lo = quantile(col, o.quantile), hi = quantile(col, 1 - o.quantile);
    if (!(hi > lo)) lo -= 1, hi += 1;
    const double pad = 0.05 * (hi - lo);
    r.push_back({lo - pad, hi + pad});
  }
  return r;
}

// Cell (row, col) of the figure: col along z1 (left to right), row along z2 (top is high z2).
// Its centre: z1 = lo + (col + 1/2) (hi - lo) / G, z2 = hi - (row + 1/2) (hi - lo) / G.
Tensor grid_points(const std::vector<Range>& r, int64_t g) {
  std::vector<double> z;
  for (int64_t row = 0; row < g; ++row)
    for (int64_t col = 0; col < g; ++col) {
      z.push_back(r[0].lo + ((double)col + 0.5) * (r[0].hi - r[0].lo) / (double)g);
      z.push_back(r[1].hi - ((double)row + 0.5) * (r[1].hi - r[1].lo) / (double)g);
    }
  return Tensor::from_vector(z, {g * g, 2});
}

// g(z): the likelihood's mean of the decoder's output at each z, (K, C, H, W) float64.
Tensor decode_mean(TrainedRun& l, const Tensor& z, int64_t batch) {
  ag::NoGradGuard no_grad;
  const auto params = l.model->parameters();
  const DType dt = params.front().dtype();
  std::vector<Tensor> parts;
  for (int64_t s = 0; s < z.size(0); s += batch) {
    const Tensor zb = z.slice(0, s, std::min(z.size(0), s + batch)).to(dt).to(l.model->device()).contiguous();
    parts.push_back(l.model->decoder().mean(zb).to(DType::f64).to(Device::cpu()));
  }
  return concat(parts, 0);
}

// ---- per-cell measures -------------------------------------------------------------------------

struct Cell {
  double z1, z2, variance, ess, log_qz, blur, sharpness, ink, dist_mean, dist_data_mean, expected_error;
  bool used;
};

// blur, sharpness and ink of one image g (h x w, values clamped to [0, 1]).
void image_measures(const double* raw, int64_t h, int64_t w, Cell& c) {
  std::vector<double> g((size_t)(h * w));
  for (int64_t i = 0; i < h * w; ++i) g[(size_t)i] = std::clamp(raw[i], 0.0, 1.0);
  double ink = 0, sq = 0, grad = 0;
  for (int64_t y = 0; y < h; ++y)
    for (int64_t x = 0; x < w; ++x) {
      const double v = g[(size_t)(y * w + x)];
      ink += v;
      sq += v * v;
      if (x + 1 < w) grad += std::pow(g[(size_t)(y * w + x + 1)] - v, 2);
      if (y + 1 < h) grad += std::pow(g[(size_t)((y + 1) * w + x)] - v, 2);
    }
  c.ink = ink;
  c.blur = ink > 1e-9 ? 1 - sq / ink : 0;  // a blank image counts as not blurred
  c.sharpness = ink > 1e-9 ? grad / ink : 0;
}

double sq_dist(const double* a, const double* b, int64_t d) {
  double s = 0;
  for (int64_t i = 0; i < d; ++i) s += (a[i] - b[i]) * (a[i] - b[i]);
  return s;
}

// ---- the figure --------------------------------------------------------------------------------

constexpr Rgb kWhite{255, 255, 255}, kBlack{0, 0, 0};

// The G x G map: each cell its variance colour (grey when not well supported) with g(z) drawn as
// white ink over it; axes z1, z2 with ticks; a colour bar; a title.
data::Image render(const std::vector<Cell>& cells, const Tensor& g_display, int64_t grid, const std::vector<Range>& r,
                   const Shape& shape, int64_t zoom, Range scale, const std::string& title, const std::string& note) {
  const int64_t h = shape[1], w = shape[2], cw = w * zoom, ch = h * zoom;
  const int64_t map_w = grid * cw, map_h = grid * ch;
  const int64_t left = 60, top = 56, bar_w = 16;
  const int64_t right = 30 + colorbar_extent(bar_w, scale.lo, scale.hi) + 20;
  const int64_t width = std::max<int64_t>(left + map_w + right, text_width(title, 2) + 20);
  data::Image img(top + map_h + 60, width, 3);
  std::fill(img.pixels.begin(), img.pixels.end(), 255);
  draw_text(img, std::max<int64_t>(10, (width - text_width(title, 2)) / 2), 10, title, kBlack, 2);
  const std::vector<double> gpix = g_display.to_vector<double>();  // (K, 1, H, W)
  for (int64_t k = 0; k < grid * grid; ++k) {
    const Cell& c = cells[(size_t)k];
    const int64_t x0 = left + (k % grid) * cw, y0 = top + (k / grid) * ch;
    const Rgb bg = c.used ? colormap_value(c.variance, scale.lo, scale.hi) : kNoValueColor;
    for (int64_t y = 0; y < ch; ++y)
      for (int64_t x = 0; x < cw; ++x) {
        const double ink = std::clamp(gpix[(size_t)(k * h * w + (y / zoom) * w + x / zoom)], 0.0, 1.0);
        put_pixel(img, x0 + x, y0 + y, blend(bg, kWhite, ink));
      }
    if (!c.used)  // a small dark cross in the corner marks a poorly supported cell
      for (int64_t t = 0; t < 5; ++t) {
        put_pixel(img, x0 + 2 + t, y0 + 2 + t, kBlack);
        put_pixel(img, x0 + 6 - t, y0 + 2 + t, kBlack);
      }
  }
  // frame and axes: z1 below (left to right), z2 on the left (bottom to top)
  for (int64_t x = left - 1; x <= left + map_w; ++x) put_pixel(img, x, top - 1, kBlack), put_pixel(img, x, top + map_h, kBlack);
  for (int64_t y = top - 1; y <= top + map_h; ++y) put_pixel(img, left - 1, y, kBlack), put_pixel(img, left + map_w, y, kBlack);
  const std::vector<double> t1 = nice_ticks(r[0].lo, r[0].hi, 6), t2 = nice_ticks(r[1].lo, r[1].hi, 6);
  const double s1 = t1.size() > 1 ? t1[1] - t1[0] : 1, s2 = t2.size() > 1 ? t2[1] - t2[0] : 1;
  for (double t : t1) {
    const int64_t x = left + std::lround((t - r[0].lo) / (r[0].hi - r[0].lo) * (double)map_w);
    for (int64_t k = 1; k <= 4; ++k) put_pixel(img, x, top + map_h + k, kBlack);
    const std::string lab = tick_label(t, s1);
    draw_text(img, x - text_width(lab) / 2, top + map_h + 7, lab, kBlack);
  }
  for (double t : t2) {
    const int64_t y = top + std::lround((r[1].hi - t) / (r[1].hi - r[1].lo) * (double)map_h);
    for (int64_t k = 1; k <= 4; ++k) put_pixel(img, left - 1 - k, y, kBlack);
    const std::string lab = tick_label(t, s2);
    draw_text(img, left - 7 - text_width(lab), y - 3, lab, kBlack);
  }
  const std::string z1 = fmt::format("z1  [{:.2f}, {:.2f}]", r[0].lo, r[0].hi);
  draw_text(img, left + (map_w - text_width(z1, 2)) / 2, top + map_h + 20, z1, kBlack, 2);
  draw_text(img, 8, top - 22, "z2", kBlack, 2);
  draw_text(img, 8 + text_width("z2", 2) + 8, top - 18, fmt::format("[{:.2f}, {:.2f}]", r[1].lo, r[1].hi), kBlack);
  draw_text(img, 10, top + map_h + 44, note, kBlack);
  const int64_t bx = left + map_w + 30;
  draw_colorbar(img, bx, top + 14, bar_w, map_h - 14, scale.lo, scale.hi, "sum Var q(x|z)");
  fill_rect(img, bx, top + map_h + 24, bar_w, 10, kNoValueColor);
  draw_text(img, bx + bar_w + 6, top + map_h + 25, "ESS low", kBlack);
  return img;
}

// ---- the run -----------------------------------------------------------------------------------

double mean_of(const std::vector<double>& v) {
  return v.empty() ? NAN : std::accumulate(v.begin(), v.end(), 0.0) / (double)v.size();
}

json num(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }

json analyse(const Fig2Options& o, TrainedRun& l, std::string& png_path) {
  GV_CHECK(l.cfg.latent == 2, ValueError,
           "the run {} has a {}-dimensional latent code; Figure 2 needs --latent 2 (train one with genvae-train "
           "--latent 2)", o.run, l.cfg.latent);
  GV_CHECK(l.shape[0] == 1, ValueError, "genvae-fig2 draws single-channel images; the run's data is {}",
           shape_str(l.shape));
  const Tensor x = Preprocessing::for_likelihood(l.cfg.likelihood).eval_set(l.train_x);  // (N, 1, H, W)
  const int64_t n = x.size(0), d = x.numel() / n, k = o.grid * o.grid;

  Progress enc_progress("encoding p_data", n);
  const vae::EncodedData enc = vae::encode_data(*l.model, x, o.batch, [&](int64_t done, int64_t) { enc_progress.update(done); });
  const std::vector<Range> r = latent_ranges(o, enc.mu);
  const Tensor z = grid_points(r, o.grid);
  vae::DataPosteriorOptions po;
  Progress post_progress(fmt::format("q(x|z) at {} points", k), n);
  po.progress = [&](int64_t done, int64_t) { post_progress.update(done); };
  const vae::DataPosterior post = vae::data_posterior(enc, x, z, po);
  const Tensor g = decode_mean(l, z, o.batch);  // (K, 1, H, W) f64, the decoder's mean as is
  const Tensor g_display = Preprocessing::for_likelihood(l.cfg.likelihood).to_display(g);

  // the data mean, and per-cell measures
  std::vector<double> xm((size_t)d, 0.0);  // the data mean (D), summed in double block by block
  for (int64_t s0 = 0; s0 < n; s0 += 4096) {
    const Tensor part = sum(x.slice(0, s0, std::min(n, s0 + 4096)).to(DType::f64), {0}).contiguous();
    const double* pp = part.data<double>();
    for (int64_t t = 0; t < d; ++t) xm[(size_t)t] += pp[t] / (double)n;
  }
  const Tensor gc = g.contiguous(), mc = post.mean.contiguous();
  const Tensor gd = g_display.contiguous();
  const std::vector<double> zv = z.to_vector<double>();
  std::vector<Cell> cells((size_t)k);
  for (int64_t i = 0; i < k; ++i) {
    Cell& c = cells[(size_t)i];
    const double* gi = gc.data<double>() + i * d;
    const double* mi = mc.data<double>() + i * d;
    c.z1 = zv[(size_t)(2 * i)];
    c.z2 = zv[(size_t)(2 * i + 1)];
    c.variance = post.variance[(size_t)i];
    c.ess = post.ess[(size_t)i];
    c.log_qz = post.log_qz[(size_t)i];
    image_measures(gd.data<double>() + i * d, l.shape[1], l.shape[2], c);
    c.dist_mean = sq_dist(gi, mi, d);
    c.dist_data_mean = sq_dist(gi, xm.data(), d);
    c.expected_error = c.variance + c.dist_mean;  // E_q(x|z)||g - x||^2
    c.used = c.ess >= o.min_ess && std::isfinite(c.variance);
  }

  // summaries over the well-supported cells; q(z)-weighted means use w_k ∝ q(z_k) over them
  std::vector<double> var, blur, sharp, ink, dm, ddm, err, qw;
  double max_lq = -INFINITY;
  for (const Cell& c : cells)
    if (c.used) max_lq = std::max(max_lq, c.log_qz);
  for (const Cell& c : cells) {
    if (!c.used) continue;
    var.push_back(c.variance);
    blur.push_back(c.blur);
    sharp.push_back(c.sharpness);
    ink.push_back(c.ink);
    dm.push_back(c.dist_mean);
    ddm.push_back(c.dist_data_mean);
    err.push_back(c.expected_error);
    qw.push_back(std::exp(c.log_qz - max_lq));
  }
  const double qsum = std::accumulate(qw.begin(), qw.end(), 0.0);
  auto qmean = [&](const std::vector<double>& v) {
    double s = 0;
    for (size_t i = 0; i < v.size(); ++i) s += qw[i] * v[i];
    return qsum > 0 ? s / qsum : NAN;
  };
  Range scale{0, 1};
  const std::vector<double>& scale_src = var.size() >= 2 ? var : post.variance;
  scale.lo = *std::min_element(scale_src.begin(), scale_src.end());
  scale.hi = *std::max_element(scale_src.begin(), scale_src.end());
  if (!(scale.hi > scale.lo)) scale.hi = scale.lo + 1;

  json s = json::object();
  s["cells_used"] = (int64_t)var.size();
  s["cells"] = k;
  s["min_ess"] = o.min_ess;
  s["pearson_variance_blur"] = num(pearson(var, blur));
  s["spearman_variance_blur"] = num(spearman(var, blur));
  s["pearson_variance_sharpness"] = num(pearson(var, sharp));
  s["spearman_variance_sharpness"] = num(spearman(var, sharp));
  s["partial_pearson_variance_blur_given_ink"] = num(partial_pearson(var, blur, ink));
  s["partial_pearson_variance_sharpness_given_ink"] = num(partial_pearson(var, sharp, ink));
  s["pearson_variance_ink"] = num(pearson(var, ink));
  s["spearman_variance_ink"] = num(spearman(var, ink));
  s["mean_variance"] = num(mean_of(var));
  s["mean_dist_g_posterior_mean"] = num(mean_of(dm));
  s["mean_dist_g_data_mean"] = num(mean_of(ddm));
  s["ratio_dist_posterior_mean_to_data_mean"] = num(mean_of(dm) / mean_of(ddm));
  s["mean_expected_error"] = num(mean_of(err));
  s["ratio_variance_to_expected_error"] = num(mean_of(var) / mean_of(err));
  s["qz_weighted"] = {{"variance", num(qmean(var))},
                      {"dist_g_posterior_mean", num(qmean(dm))},
                      {"dist_g_data_mean", num(qmean(ddm))},
                      {"expected_error", num(qmean(err))}};

  json jc = json::array();
  for (const Cell& c : cells)
    jc.push_back({{"z", {c.z1, c.z2}},
                  {"variance", num(c.variance)},
                  {"ess", num(c.ess)},
                  {"log_qz", num(c.log_qz)},
                  {"blur", num(c.blur)},
                  {"sharpness", num(c.sharpness)},
                  {"ink", num(c.ink)},
                  {"dist_g_posterior_mean", num(c.dist_mean)},
                  {"dist_g_data_mean", num(c.dist_data_mean)},
                  {"expected_error", num(c.expected_error)},
                  {"used", c.used}});

  const std::string title = "EncoderPosterior variance sum_i Var q(x|z)[x_i] with g(z) drawn over it";
  const std::string note = fmt::format(
      "p_data: {} training images. Grey: ESS < {:g}. corr(variance, blur of g): Pearson {:.2f}, Spearman {:.2f} "
      "over {} cells", n, o.min_ess, pearson(var, blur), spearman(var, blur), var.size());
  data::write_png(png_path, render(cells, g_display, o.grid, r, l.shape, o.zoom, scale, title, note));

  json j = json::object();
  j["checkpoint"] = l.checkpoint;
  j["step"] = l.state.step;
  j["likelihood"] = l.cfg.likelihood;
  j["regularizer"] = l.cfg.regularizer;
  j["data_examples"] = n;
  j["grid"] = o.grid;
  j["range"] = {{r[0].lo, r[0].hi}, {r[1].lo, r[1].hi}};
  j["range_rule"] = o.range > 0 ? fmt::format("[-{0}, {0}] (--range)", o.range)
                                 : fmt::format("quantiles {} and {} of the encoder means, widened by 5%", o.quantile,
                                               1 - o.quantile);
  j["colour_scale"] = {scale.lo, scale.hi};
  j["png"] = png_path;
  j["summary"] = s;
  j["cells"] = jc;
  return j;
}

void print_summary(const json& j) {
  const json& s = j["summary"];
  auto f = [](const json& v, const char* spec = "{:.3f}") {
    return v.is_null() ? std::string("n/a") : fmt::format(fmt::runtime(spec), v.get<double>());
  };
  auto row = [](const std::string& name, const std::string& value) { fmt::print("  {:<44} {}\n", name, value); };
  fmt::print("{} (step {}), {} images as p_data, {} x {} grid, z1 [{:.2f}, {:.2f}], z2 [{:.2f}, {:.2f}]\n",
             j["checkpoint"].get<std::string>(), j["step"].get<int64_t>(), j["data_examples"].get<int64_t>(),
             j["grid"].get<int64_t>(), j["grid"].get<int64_t>(), j["range"][0][0].get<double>(),
             j["range"][0][1].get<double>(), j["range"][1][0].get<double>(), j["range"][1][1].get<double>());
  row(fmt::format("cells used (ESS >= {:g})", s["min_ess"].get<double>()),
      fmt::format("{} / {}", s["cells_used"].get<int64_t>(), s["cells"].get<int64_t>()));
  row("", "Pearson   Spearman");
  row("corr(variance, blur of g(z))", f(s["pearson_variance_blur"], "{:7.3f}") + "   " + f(s["spearman_variance_blur"], "{:7.3f}"));
  row("corr(variance, edge sharpness of g(z))",
      f(s["pearson_variance_sharpness"], "{:7.3f}") + "   " + f(s["spearman_variance_sharpness"], "{:7.3f}"));
  row("  partial r given ink: blur | sharpness",
      f(s["partial_pearson_variance_blur_given_ink"], "{:7.3f}") + "   " +
          f(s["partial_pearson_variance_sharpness_given_ink"], "{:7.3f}"));
  row("corr(variance, ink of g(z))", f(s["pearson_variance_ink"], "{:7.3f}") + "   " + f(s["spearman_variance_ink"], "{:7.3f}"));
  row("", "cell mean   q(z)-weighted");
  const json& q = s["qz_weighted"];
  row("posterior variance sum_d Var q(x|z)[x_d]", f(s["mean_variance"], "{:9.3f}") + "   " + f(q["variance"], "{:9.3f}"));
  row("||g(z) - E_q(x|z)[x]||^2", f(s["mean_dist_g_posterior_mean"], "{:9.3f}") + "   " + f(q["dist_g_posterior_mean"], "{:9.3f}"));
  row("||g(z) - data mean||^2", f(s["mean_dist_g_data_mean"], "{:9.3f}") + "   " + f(q["dist_g_data_mean"], "{:9.3f}"));
  row("E_q(x|z)||g(z) - x||^2 (= variance + dist)", f(s["mean_expected_error"], "{:9.3f}") + "   " + f(q["expected_error"], "{:9.3f}"));
  row("ratio ||g - m||^2 / ||g - data mean||^2", f(s["ratio_dist_posterior_mean_to_data_mean"]));
  row("ratio variance / expected error (1: optimal)", f(s["ratio_variance_to_expected_error"]));
}

}  // namespace

int main(int argc, char** argv) {
  Fig2Options o;
  if (int rc = parse_flags(argc, argv, o); rc >= 0) return rc;
  try {
    set_threads(o.threads);
    LoadOptions lo;
    lo.device = checked_device(o.device);
    lo.data_dir = o.data_dir;
    lo.test_limit = 1;  // the test split is not used
    lo.with_train = true;
    lo.train_limit = o.examples;
    TrainedRun l = load_trained_run(o.run, lo);
    check_outputs_finite(l);
    std::string png = o.out.empty() ? (fs::path(l.checkpoint).parent_path() / "fig2.png").string() : o.out;
    if (fs::path(png).has_parent_path()) fs::create_directories(fs::path(png).parent_path());
    json report = analyse(o, l, png);
    const std::string js = fs::path(png).replace_extension(".json").string();
    write_json_file(js, report);
    print_summary(report);
    fmt::print("wrote {} and {}\n", png, js);
  } catch (const NonFiniteError& e) {
    std::fprintf(stderr, "%s: %s\n", "genvae-fig2", e.what());
    return 3;  // as genvae-train and genvae-eval: a non-finite weight or result
  } catch (const std::exception& e) {
    std::fprintf(stderr, "genvae-fig2: %s\n", e.what());
    return 1;
  }
  return 0;
}
