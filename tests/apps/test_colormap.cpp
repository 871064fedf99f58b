// test_colormap.cpp: the colour map of apps/common/colormap.h: its end points, lightness that rises
// steadily along it, clamping of out-of-range, infinite and NaN inputs, blend, and the colour bar
// (top and bottom colours, ticks and labels drawn, clipping at the image's edges).
#include <doctest/doctest.h>

#include <cmath>
#include <limits>

#include "apps/common/colormap.h"

using namespace gv;
using namespace gv::app;

// This file's helpers and tests in a namespace of their own: the unity build (scripts/test.sh)
// compiles several test files as one, and their helpers must not meet.
namespace file_apps_test_colormap {

namespace {

bool same(Rgb a, Rgb b) { return a.r == b.r && a.g == b.g && a.b == b.b; }
Rgb pixel(const data::Image& img, int64_t x, int64_t y) { return {img.at(y, x, 0), img.at(y, x, 1), img.at(y, x, 2)}; }

}  // namespace

TEST_CASE("colormap: end points are dark navy and orange, the middle is magenta") {
  CHECK(same(colormap(0), Rgb{20, 24, 80}));
  CHECK(same(colormap(1), Rgb{252, 170, 50}));
  CHECK(same(colormap(0.5), Rgb{160, 62, 158}));
  // low is blue (blue channel dominates), high is red/orange (red dominates), as in the paper's Figure 2
  CHECK(colormap(0.1).b > colormap(0.1).r);
  CHECK(colormap(0.9).r > colormap(0.9).b);
}

TEST_CASE("colormap: lightness L* rises along the map, from dark to light") {
  const double l0 = lightness(colormap(0)), l1 = lightness(colormap(1));
  CHECK(l0 < 15);
  CHECK(l1 > 70);
  CHECK(l1 < 80);  // white marks stay visible over the top colour
  // at least 0.5 L* per 1/32 of the range
  for (int i = 1; i <= 32; ++i) {
    CAPTURE(i);
    CHECK(lightness(colormap(i / 32.0)) > lightness(colormap((i - 1) / 32.0)) + 0.5);
  }
  // on a fine grid, never darker by more than the 8-bit rounding allows
  for (int i = 1; i <= 1000; ++i) {
    CAPTURE(i);
    CHECK(lightness(colormap(i / 1000.0)) > lightness(colormap((i - 1) / 1000.0)) - 0.2);
  }
  CHECK(lightness(Rgb{0, 0, 0}) == doctest::Approx(0).epsilon(1e-9));
  CHECK(lightness(Rgb{255, 255, 255}) == doctest::Approx(100).epsilon(1e-9));
}

TEST_CASE("colormap: out-of-range, infinite and NaN inputs") {
  const double inf = std::numeric_limits<double>::infinity(), nan = std::numeric_limits<double>::quiet_NaN();
  CHECK(same(colormap(-0.5), colormap(0)));
  CHECK(same(colormap(7), colormap(1)));
  CHECK(same(colormap(-inf), colormap(0)));
  CHECK(same(colormap(inf), colormap(1)));
  CHECK(same(colormap(nan), kNoValueColor));
  CHECK(same(colormap_value(nan, 0, 1), kNoValueColor));
  CHECK(same(colormap_value(5, 0, 10), colormap(0.5)));
  CHECK(same(colormap_value(20, 0, 10), colormap(1)));
  CHECK(same(colormap_value(3, 2, 2), colormap(0.5)));  // an empty range
  CHECK(same(colormap_value(3, nan, 2), colormap(0.5)));
  CHECK(same(blend(Rgb{0, 0, 0}, Rgb{255, 100, 10}, 0.5), Rgb{128, 50, 5}));
  CHECK(same(blend(Rgb{1, 2, 3}, Rgb{255, 100, 10}, nan), Rgb{1, 2, 3}));
  CHECK(same(blend(Rgb{1, 2, 3}, Rgb{255, 100, 10}, 3), Rgb{255, 100, 10}));
}

TEST_CASE("draw_colorbar: the map from lo at the bottom to hi at the top, with labelled ticks") {
  data::Image img(200, 100, 3);
  std::fill(img.pixels.begin(), img.pixels.end(), 255);
  draw_colorbar(img, 10, 30, 12, 150, 0, 40, "var");
  CHECK(same(pixel(img, 15, 30), colormap(1)));
  CHECK(same(pixel(img, 15, 179), colormap(0)));
  CHECK(same(pixel(img, 9, 100), Rgb{0, 0, 0}));  // frame
  // tick marks at 0, 10, ..., 40 right of the bar, and label text further right
  CHECK(same(pixel(img, 24, 179), Rgb{0, 0, 0}));
  CHECK(same(pixel(img, 24, 30), Rgb{0, 0, 0}));
  int64_t dark = 0;
  for (int64_t y = 0; y < 200; ++y)
    for (int64_t x = 29; x < 100; ++x) dark += img.at(y, x, 0) == 0 ? 1 : 0;
  CHECK(dark > 20);
  CHECK(colorbar_extent(12, 0, 40) > 12 + 7);
  // partly outside the image: clipped, no crash
  draw_colorbar(img, 90, -20, 30, 400, -1, 1, "clipped");
  CHECK_THROWS_AS(draw_colorbar(img, 0, 0, 10, 10, 1, 1, ""), ValueError);
  CHECK_THROWS_AS(draw_colorbar(img, 0, 0, 0, 10, 0, 1, ""), ValueError);
  CHECK_THROWS_AS(draw_colorbar(img, 0, 0, 10, 10, 0, std::numeric_limits<double>::quiet_NaN(), ""), ValueError);
}

}  // namespace file_apps_test_colormap
