// font.h: a tiny bitmap font for labelling plots without a font library. Each glyph is a 5x7
// cell (lowercase letters with descenders use an eighth row below the baseline), drawn by hand
// in font.cpp as rows of '#' and '.'. Characters without a glyph are drawn as '?'.
#pragma once
#include <cstdint>
#include <string>

#include "nn/data/images.h"

namespace gv::app {

inline constexpr int kGlyphWidth = 5;
inline constexpr int kGlyphHeight = 8;     // 7 rows above the baseline and 1 descender row
inline constexpr int kGlyphAdvance = 6;    // glyph width plus one column of spacing

struct Rgb {
  uint8_t r = 0, g = 0, b = 0;
};
inline constexpr Rgb kBlack{0, 0, 0};

// Whether the glyph's pixel at column x (0..4), row y (0..7) is set; y = 7 is the descender row.
bool glyph_pixel(char c, int x, int y);
// Whether the font has a glyph of its own for c (else it is drawn as '?').
bool has_glyph(char c);

// Width and height in pixels of `text` drawn at integer `scale` (one line, no trailing space).
int text_width(const std::string& text, int scale = 1);
inline int text_height(int scale = 1) { return kGlyphHeight * scale; }

// Sets one pixel of an RGB image, ignoring coordinates outside it.
void put_pixel(data::Image& img, int64_t x, int64_t y, Rgb color);
// Fills the w x h rectangle with top-left corner (x0, y0), clipped to the image.
void fill_rect(data::Image& img, int64_t x0, int64_t y0, int64_t w, int64_t h, Rgb color);
// Draws text with its top-left corner at (x, y), each font pixel a scale x scale square.
void draw_text(data::Image& img, int64_t x, int64_t y, const std::string& text, Rgb color, int scale = 1);

}  // namespace gv::app
