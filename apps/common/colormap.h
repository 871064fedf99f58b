// colormap.h: a sequential colour map for heat maps (genvae-fig2's posterior variance), and a
// vertical colour bar with tick labels. The map runs from dark navy (low) through blue, magenta
// and red to orange (high), after the paper's Figure 2 ("red corresponds to high variance, and
// blue low variance"). It is defined by five hand-chosen sRGB control points at t = 0, 1/4, 1/2,
// 3/4, 1, interpolated linearly in sRGB. The property it is built for: CIE lightness L* rises
// steadily with t (from about 12 to about 76, at least 0.5 L* per 1/32 of the range), so the
// order of values reads the same in grey print, and white marks drawn over it stay visible
// everywhere (the top is no lighter than L* ~ 76).
#pragma once
#include <cstdint>
#include <string>

#include "apps/common/font.h"
#include "nn/data/images.h"

namespace gv::app {

// The colour of "no value": NaN inputs (a neutral mid grey, outside the map's hues).
inline constexpr Rgb kNoValueColor{128, 128, 128};

// The map at t in [0, 1]; t below 0 (or -inf) gives the t = 0 colour, above 1 (or +inf) the t = 1
// colour, NaN gives kNoValueColor.
Rgb colormap(double t);
// The map at (v - lo) / (hi - lo); lo == hi gives the middle colour; NaN v gives kNoValueColor.
Rgb colormap_value(double v, double lo, double hi);
// (1 - t) a + t b per channel, rounded, t clamped to [0, 1] (NaN t: a).
Rgb blend(Rgb a, Rgb b, double t);
// CIE 1976 lightness L* (0 black .. 100 white) of an sRGB colour (D65 white).
double lightness(Rgb c);

// Draws a vertical colour bar into img: a width x height box with its top-left corner at (x, y),
// the map from lo at the bottom to hi at the top, a black frame, tick marks and labels at "nice"
// values (plot.h) on its right, and `label` above it. Pixels outside the image are skipped.
// ValueError unless lo < hi are finite and width, height > 0.
void draw_colorbar(data::Image& img, int64_t x, int64_t y, int64_t width, int64_t height, double lo, double hi,
                   const std::string& label);
// The width in pixels that draw_colorbar uses right of x (bar, ticks and labels; not the label above).
int64_t colorbar_extent(int64_t width, double lo, double hi);

}  // namespace gv::app
