// colormap.cpp: see colormap.h.
#include "apps/common/colormap.h"

#include <algorithm>
#include <array>
#include <cmath>

#include "apps/common/plot.h"

namespace gv::app {

namespace {

// The control points, at t = 0, 0.25, 0.5, 0.75, 1 (L* about 12, 31, 43, 57, 76).
constexpr std::array<Rgb, 5> kStops = {{
    {20, 24, 80},    // dark navy
    {50, 58, 170},   // blue
    {160, 62, 158},  // magenta
    {232, 92, 68},   // red
    {252, 170, 50},  // orange
}};

uint8_t mix(uint8_t a, uint8_t b, double t) { return (uint8_t)std::lround(a + (b - a) * t); }

double srgb_to_linear(uint8_t c) {
  const double v = c / 255.0;
  return v <= 0.04045 ? v / 12.92 : std::pow((v + 0.055) / 1.055, 2.4);
}

}  // namespace

Rgb colormap(double t) {
  if (std::isnan(t)) return kNoValueColor;
  t = std::clamp(t, 0.0, 1.0);  // also +-inf
  const double pos = t * (double)(kStops.size() - 1);
  const size_t i = std::min((size_t)pos, kStops.size() - 2);
  return blend(kStops[i], kStops[i + 1], pos - (double)i);
}

Rgb colormap_value(double v, double lo, double hi) {
  if (std::isnan(v)) return kNoValueColor;
  if (!(hi > lo)) return colormap(0.5);
  return colormap((v - lo) / (hi - lo));
}

Rgb blend(Rgb a, Rgb b, double t) {
  if (std::isnan(t)) return a;
  t = std::clamp(t, 0.0, 1.0);
  return {mix(a.r, b.r, t), mix(a.g, b.g, t), mix(a.b, b.b, t)};
}

double lightness(Rgb c) {
  // relative luminance Y of linear sRGB, then L* = 116 f(Y) - 16
  const double y = 0.2126 * srgb_to_linear(c.r) + 0.7152 * srgb_to_linear(c.g) + 0.0722 * srgb_to_linear(c.b);
  const double f = y > 216.0 / 24389.0 ? std::cbrt(y) : (24389.0 / 27.0 * y + 16.0) / 116.0;
  return 116.0 * f - 16.0;
}

int64_t colorbar_extent(int64_t width, double lo, double hi) {
  const std::vector<double> ticks = nice_ticks(lo, hi, 6);
  const double step = ticks.size() > 1 ? ticks[1] - ticks[0] : hi - lo;
  int label_w = 0;
  for (double t : ticks) label_w = std::max(label_w, text_width(tick_label(t, step)));
  return width + 7 + label_w;  // ticks end at width + 4, labels start at width + 7
}

void draw_colorbar(data::Image& img, int64_t x, int64_t y, int64_t width, int64_t height, double lo, double hi,
                   const std::string& label) {
  GV_CHECK(std::isfinite(lo) && std::isfinite(hi) && lo < hi, ValueError,
           "draw_colorbar: need finite lo < hi, got [{}, {}]", lo, hi);
  GV_CHECK(width > 0 && height > 0, ValueError, "draw_colorbar: need a positive size, got {} x {}", width, height);
  // the bar: row r from the top shows t = 1 - r / (height - 1)
  for (int64_t r = 0; r < height; ++r) {
    const Rgb c = colormap(height == 1 ? 0.5 : 1.0 - (double)r / (double)(height - 1));
    for (int64_t col = 0; col < width; ++col) put_pixel(img, x + col, y + r, c);
  }
  for (int64_t col = -1; col <= width; ++col) {
    put_pixel(img, x + col, y - 1, kBlack);
    put_pixel(img, x + col, y + height, kBlack);
  }
  for (int64_t r = -1; r <= height; ++r) {
    put_pixel(img, x - 1, y + r, kBlack);
    put_pixel(img, x + width, y + r, kBlack);
  }
  // ticks: value v at row (hi - v) / (hi - lo) * (height - 1)
  const std::vector<double> ticks = nice_ticks(lo, hi, 6);
  const double step = ticks.size() > 1 ? ticks[1] - ticks[0] : hi - lo;
  for (double v : ticks) {
    const int64_t row = y + std::lround((hi - v) / (hi - lo) * (double)(height - 1));
    for (int64_t k = 1; k <= 4; ++k) put_pixel(img, x + width + k, row, kBlack);
    draw_text(img, x + width + 7, row - 3, tick_label(v, step), kBlack);
  }
  if (!label.empty()) draw_text(img, x, y - 6 - text_height(), label, kBlack);
}

}  // namespace gv::app
