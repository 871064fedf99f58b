// plot.h: line plots as PNG images, drawn into an RGB buffer with the built-in bitmap font
// (font.h) and written with data::write_png; no plotting library. A plot has a title, axis
// labels, one or more named series on shared linear axes, ticks at "nice" values (1, 2 or 5
// times a power of ten) with numeric labels, and a legend. Points whose x or y is NaN or
// infinite are skipped (the line breaks there). Several plots can be tiled into one image.
#pragma once
#include <string>
#include <vector>

#include "apps/common/font.h"
#include "nn/data/images.h"

namespace gv::app {

struct Series {
  std::string name;
  std::vector<double> x, y;  // same length
  bool markers = false;      // also draw a small square at each point (for sparse series)
};

struct Plot {
  std::string title, xlabel, ylabel;
  std::vector<Series> series;
  int width = 560, height = 360;  // pixels
};

// Tick positions for an axis covering [lo, hi]: multiples of a step of 1, 2 or 5 times a power
// of ten, about `target` of them, all within [lo, hi]. lo < hi, both finite.
std::vector<double> nice_ticks(double lo, double hi, int target = 5);
// A short label for a tick value given the spacing of the ticks ("0.25", "1500", "1e-05").
std::string tick_label(double value, double step);

// Draws one plot into a fresh width x height RGB image (white background).
data::Image render_plot(const Plot& plot);
// Tiles plots into a grid of `columns` columns, row by row; each cell is the size of its plot
// (the largest in its row and column).
data::Image render_plots(const std::vector<Plot>& plots, int columns);
// render_plots, written as a PNG file.
void write_plots_png(const std::string& path, const std::vector<Plot>& plots, int columns = 2);

}  // namespace gv::app
