// plot.cpp: rendering of line plots (plot.h): axes ranges from the finite points, nice ticks,
// grid, frame, lines drawn with Bresenham's algorithm clipped to the plotting area, a legend.
#include "apps/common/plot.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>

#include <fmt/format.h>

#include "engine/error.h"

namespace gv::app {
namespace {

constexpr Rgb kGrid{225, 225, 225}, kWhite{255, 255, 255}, kText{40, 40, 40};
// Line colours, cycled through by series index.
constexpr Rgb kPalette[] = {{31, 119, 180}, {255, 127, 14}, {44, 160, 44},   {214, 39, 40},
                            {148, 103, 189}, {140, 86, 75}, {227, 119, 194}, {127, 127, 127}};

struct Range {
  double lo = std::numeric_limits<double>::infinity(), hi = -std::numeric_limits<double>::infinity();
  void add(double v) { lo = std::min(lo, v), hi = std::max(hi, v); }
  bool empty() const { return !(lo <= hi); }
  // Widens a zero-width range, then pads it by 5% on each side.
  void pad() {
    if (empty()) lo = 0, hi = 1;
    if (lo == hi) {
      double d = std::max(1e-12, std::abs(lo) * 0.1);
      if (lo == 0) d = 1;
      lo -= d, hi += d;
    }
    double m = 0.05 * (hi - lo);
    lo -= m, hi += m;
  }
};

bool finite_point(const Series& s, size_t i) { return std::isfinite(s.x[i]) && std::isfinite(s.y[i]); }

// The plotting area inside the image and the data window it shows.
struct Frame {
  int left, top, width, height;
  Range xr, yr;
  double px(double x) const { return left + (x - xr.lo) / (xr.hi - xr.lo) * (width - 1); }
  double py(double y) const { return top + (1 - (y - yr.lo) / (yr.hi - yr.lo)) * (height - 1); }
  bool inside(int64_t x, int64_t y) const { return x >= left && y >= top && x < left + width && y < top + height; }
};

// A line two pixels thick from (x0, y0) to (x1, y1), only where it lies inside the frame.
void draw_line(data::Image& img, const Frame& f, int64_t x0, int64_t y0, int64_t x1, int64_t y1, Rgb c) {
  int64_t dx = std::abs(x1 - x0), dy = -std::abs(y1 - y0);
  int64_t sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1, err = dx + dy;
  for (;;) {
    for (int64_t oy = 0; oy < 2; ++oy)
      for (int64_t ox = 0; ox < 2; ++ox)
        if (f.inside(x0 + ox, y0 + oy)) put_pixel(img, x0 + ox, y0 + oy, c);
    if (x0 == x1 && y0 == y1) break;
    int64_t e2 = 2 * err;
    if (e2 >= dy) err += dy, x0 += sx;
    if (e2 <= dx) err += dx, y0 += sy;
  }
}

Frame make_frame(const Plot& plot, int left_margin) {
  Frame f;
  for (const Series& s : plot.series) {
    GV_CHECK(s.x.size() == s.y.size(), ValueError, "plot '{}': series '{}' has {} x values and {} y values", plot.title,
             s.name, s.x.size(), s.y.size());
    for (size_t i = 0; i < s.x.size(); ++i)
      if (finite_point(s, i)) f.xr.add(s.x[i]), f.yr.add(s.y[i]);
  }
  f.xr.pad(), f.yr.pad();
  int top = 10 + text_height(2) + 8 + (plot.ylabel.empty() ? 0 : text_height() + 6);
  int bottom = 6 + text_height() + 8 + (plot.xlabel.empty() ? 0 : text_height() + 6);
  f.left = left_margin, f.top = top;
  f.width = std::max(10, plot.width - left_margin - 16);
  f.height = std::max(10, plot.height - top - bottom);
  return f;
}

void draw_y_axis(data::Image& img, const Frame& f, const std::vector<double>& ticks, double step) {
  for (double t : ticks) {
    auto y = (int64_t)std::lround(f.py(t));
    for (int64_t x = f.left; x < f.left + f.width; ++x) put_pixel(img, x, y, kGrid);
    for (int64_t x = f.left - 4; x < f.left; ++x) put_pixel(img, x, y, kBlack);
    std::string label = tick_label(t, step);
    draw_text(img, f.left - 7 - text_width(label), y - 3, label, kText);
  }
}

void draw_x_axis(data::Image& img, const Frame& f, const std::vector<double>& ticks, double step) {
  int64_t bottom = f.top + f.height;
  for (double t : ticks) {
    auto x = (int64_t)std::lround(f.px(t));
    for (int64_t y = f.top; y < bottom; ++y) put_pixel(img, x, y, kGrid);
    for (int64_t y = bottom; y < bottom + 4; ++y) put_pixel(img, x, y, kBlack);
    std::string label = tick_label(t, step);
    draw_text(img, x - text_width(label) / 2, bottom + 6, label, kText);
  }
}

void draw_box(data::Image& img, int64_t x0, int64_t y0, int64_t w, int64_t h, Rgb c) {
  for (int64_t x = x0; x < x0 + w; ++x) put_pixel(img, x, y0, c), put_pixel(img, x, y0 + h - 1, c);
  for (int64_t y = y0; y < y0 + h; ++y) put_pixel(img, x0, y, c), put_pixel(img, x0 + w - 1, y, c);
}

void draw_series(data::Image& img, const Frame& f, const Series& s, Rgb c) {
  bool have_prev = false;
  int64_t px = 0, py = 0;
  for (size_t i = 0; i < s.x.size(); ++i) {
    if (!finite_point(s, i)) {
      have_prev = false;  // a break in the line
      continue;
    }
    auto x = (int64_t)std::lround(f.px(s.x[i])), y = (int64_t)std::lround(f.py(s.y[i]));
    if (have_prev) draw_line(img, f, px, py, x, y, c);
    else draw_line(img, f, x, y, x, y, c);
    if (s.markers)
      for (int64_t oy = -2; oy <= 3; ++oy)
        for (int64_t ox = -2; ox <= 3; ++ox)
          if (f.inside(x + ox, y + oy)) put_pixel(img, x + ox, y + oy, c);
    px = x, py = y, have_prev = true;
  }
}

// How much of the drawn lines falls inside the box (x0, y0, w, h): each segment is sampled at 16 points.
int64_t points_inside(const Frame& f, const std::vector<Series>& series, int64_t x0, int64_t y0, int64_t w, int64_t h) {
  auto in_box = [&](double x, double y) { return x >= x0 - 3 && x < x0 + w + 3 && y >= y0 - 3 && y < y0 + h + 3; };
  int64_t n = 0;
  for (const Series& s : series)
    for (size_t i = 0; i < s.x.size(); ++i) {
      if (!finite_point(s, i)) continue;
      double x = f.px(s.x[i]), y = f.py(s.y[i]);
      n += 16 * in_box(x, y);
      if (i == 0 || !finite_point(s, i - 1)) continue;
      double xp = f.px(s.x[i - 1]), yp = f.py(s.y[i - 1]);
      for (int k = 1; k < 16; ++k) n += in_box(xp + (x - xp) * k / 16.0, yp + (y - yp) * k / 16.0);
    }
  return n;
}

// The legend box goes in the corner of the plotting area that hides the fewest points.
void draw_legend(data::Image& img, const Frame& f, const std::vector<Series>& series) {
  if (series.empty()) return;
  int w = 0;
  for (const Series& s : series) w = std::max(w, text_width(s.name));
  const int row = text_height() + 4, bw = w + 34, bh = int(series.size()) * row + 6;
  const int64_t right = f.left + f.width - bw - 6, bottom = f.top + f.height - bh - 6;
  const int64_t corners[4][2] = {{right, f.top + 6}, {f.left + 6, f.top + 6}, {right, bottom}, {f.left + 6, bottom}};
  int64_t x0 = corners[0][0], y0 = corners[0][1], best = -1;
  for (const auto& c : corners) {
    int64_t n = points_inside(f, series, c[0], c[1], bw, bh);
    if (best < 0 || n < best) best = n, x0 = c[0], y0 = c[1];
  }
  fill_rect(img, x0, y0, bw, bh, kWhite);
  draw_box(img, x0, y0, bw, bh, kGrid);
  for (size_t i = 0; i < series.size(); ++i) {
    int64_t y = y0 + 4 + int64_t(i) * row;
    fill_rect(img, x0 + 6, y + 3, 18, 2, kPalette[i % std::size(kPalette)]);
    draw_text(img, x0 + 28, y, series[i].name, kText);
  }
}

}  // namespace

std::vector<double> nice_ticks(double lo, double hi, int target) {
  GV_CHECK(std::isfinite(lo) && std::isfinite(hi) && lo < hi && target > 0, ValueError,
           "nice_ticks: need finite lo < hi and target > 0, got [{}, {}] and {}", lo, hi, target);
  double raw = (hi - lo) / target, mag = std::pow(10.0, std::floor(std::log10(raw))), norm = raw / mag;
  double step = (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * mag;
  std::vector<double> ticks;
  for (double k = std::ceil(lo / step); k * step <= hi + step * 1e-9; k += 1) {
    double t = k * step;
    ticks.push_back(std::abs(t) < step * 1e-9 ? 0.0 : t);
  }
  return ticks;
}

std::string tick_label(double value, double step) {
  if (std::abs(value) < std::abs(step) * 1e-6) value = 0;
  int decimals = std::max(0, -(int)std::floor(std::log10(std::abs(step)) + 1e-9));
  if (std::abs(value) >= 1e6 || decimals > 4) return fmt::format("{:.3g}", value);
  return fmt::format("{:.{}f}", value, decimals);
}

data::Image render_plot(const Plot& plot) {
  GV_CHECK(plot.width >= 80 && plot.height >= 60, ValueError, "plot '{}': size {}x{} is too small (at least 80x60)",
           plot.title, plot.width, plot.height);
  data::Image img(plot.height, plot.width, 3);
  std::fill(img.pixels.begin(), img.pixels.end(), uint8_t(255));
  Frame f = make_frame(plot, 0);
  std::vector<double> yt = nice_ticks(f.yr.lo, f.yr.hi), xt = nice_ticks(f.xr.lo, f.xr.hi, 6);
  double ystep = yt.size() > 1 ? yt[1] - yt[0] : 1, xstep = xt.size() > 1 ? xt[1] - xt[0] : 1;
  int label_w = 0;
  for (double t : yt) label_w = std::max(label_w, text_width(tick_label(t, ystep)));
  f = make_frame(plot, label_w + 12);
  draw_text(img, std::max(4, (plot.width - text_width(plot.title, 2)) / 2), 10, plot.title, kBlack, 2);
  if (!plot.ylabel.empty()) draw_text(img, 4, f.top - text_height() - 6, plot.ylabel, kText);
  if (!plot.xlabel.empty())
    draw_text(img, f.left + (f.width - text_width(plot.xlabel)) / 2, plot.height - text_height() - 6, plot.xlabel,
              kText);
  draw_y_axis(img, f, yt, ystep);
  draw_x_axis(img, f, xt, xstep);
  draw_box(img, f.left - 1, f.top - 1, f.width + 2, f.height + 2, kBlack);
  for (size_t i = 0; i < plot.series.size(); ++i)
    draw_series(img, f, plot.series[i], kPalette[i % std::size(kPalette)]);
  draw_legend(img, f, plot.series);
  return img;
}

data::Image render_plots(const std::vector<Plot>& plots, int columns) {
  GV_CHECK(!plots.empty() && columns > 0, ValueError, "render_plots: need at least one plot and one column");
  int cols = std::min<int>(columns, (int)plots.size()), rows = ((int)plots.size() + cols - 1) / cols;
  int cw = 0, ch = 0;
  for (const Plot& p : plots) cw = std::max(cw, p.width), ch = std::max(ch, p.height);
  data::Image out(int64_t(rows) * ch, int64_t(cols) * cw, 3);
  std::fill(out.pixels.begin(), out.pixels.end(), uint8_t(255));
  for (size_t i = 0; i < plots.size(); ++i) {
    data::Image one = render_plot(plots[i]);
    int64_t ox = int64_t(i % cols) * cw, oy = int64_t(i / cols) * ch;
    for (int64_t y = 0; y < one.height; ++y)
      std::copy_n(&one.pixels[size_t(y * one.width * 3)], one.width * 3, &out.at(oy + y, ox, 0));
  }
  return out;
}

void write_plots_png(const std::string& path, const std::vector<Plot>& plots, int columns) {
  data::write_png(path, render_plots(plots, columns));
}

}  // namespace gv::app
