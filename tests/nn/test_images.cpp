// test_images.cpp: the image codecs, resizing, grids and image folders (nn/data/images.h) and the
// CIFAR-10 loader (nn/data/cifar10.h). PNGs are also made here with libpng directly and JPEGs with
// TurboJPEG, so the decoders are checked against the libraries, not only against our encoder;
// every cut of a valid file must be an IOError (run under ASan to see that none reads out of
// bounds). CIFAR-10 archives are built here with libarchive; the real one is checked when found.
#include <archive.h>
#include <archive_entry.h>
#include <doctest/doctest.h>
#include <fcntl.h>
#include <png.h>
#include <sys/stat.h>
#include <turbojpeg.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csetjmp>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>

#include "nn/data/cifar10.h"
#include "nn/data/images.h"

namespace fs = std::filesystem;
using namespace gv::data;
using gv::IOError;
using gv::Tensor;

// This file's helpers and tests in a namespace of their own: the unity build (scripts/test.sh)
// compiles several test files as one, and their helpers must not meet.
namespace file_nn_test_images {

namespace {

// ---- helpers ------------------------------------------------------------------------------------
struct TempDir {  // a fresh folder under the system's temporary folder, removed at the end
  fs::path path;
  TempDir() {
    static int counter = 0;
    path = fs::temp_directory_path() / fmt::format("genvae_test_images_{}_{}", (long)getpid(), counter++);
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string file(const std::string& name) const { return (path / name).string(); }
};

void write_bytes(const std::string& path, const std::vector<uint8_t>& bytes) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(bytes.data()), (std::streamsize)bytes.size());
  REQUIRE(f.good());
}

// write_png into a folder made as needed.
void put_png(const std::string& path, const Image& img) { write_bytes(path, encode_png(img)); }

template <class E, class F>
std::string message_of(F&& f) {  // the message of the E that f throws; fails when none is thrown
  try {
    f();
  } catch (const E& e) {
    return e.what();
  }
  FAIL_CHECK("expected an exception, none was thrown");
  return "";
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// Deterministic pseudo-random bytes.
std::vector<uint8_t> noise(size_t n, uint32_t seed) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) {
    seed = seed * 1664525u + 1013904223u;
    v[i] = uint8_t(seed >> 24);
  }
  return v;
}

Image make_image(int64_t h, int64_t w, int64_t c, uint32_t seed) {
  Image img(h, w, c);
  img.pixels = noise(img.pixels.size(), seed);
  return img;
}

// A smooth RGB image (gradients), which JPEG keeps well.
Image smooth_image(int64_t h, int64_t w) {
  Image img(h, w, 3);
  for (int64_t y = 0; y < h; ++y)
    for (int64_t x = 0; x < w; ++x) {
      img.at(y, x, 0) = uint8_t(40 + 150 * x / w);
      img.at(y, x, 1) = uint8_t(200 - 120 * y / h);
      img.at(y, x, 2) = uint8_t(90 + 60 * (x + y) / (w + h));
    }
  return img;
}

// ---- PNGs written by libpng itself (independent of encode_png) -----------------------------------
struct PngSpec {
  uint32_t width, height;
  int color_type, bit_depth, interlace;
  const uint8_t* rows;  // packed rows as libpng takes them (16-bit big-endian)
  size_t row_bytes;
  const png_color* palette;
  int num_palette;
  const png_byte* trans;
  int num_trans;
  const png_color_16* trans_gray;
};

void append_png_bytes(png_structp png, png_bytep data, size_t n) {
  auto* out = static_cast<std::vector<uint8_t>*>(png_get_io_ptr(png));
  bool ok = true;
  try {
    out->insert(out->end(), data, data + n);
  } catch (...) {
    ok = false;
  }
  if (!ok) png_error(png, "out of memory");
}
void flush_nothing(png_structp) {}

// A C-style frame around setjmp: nothing with a destructor lives in it.
bool libpng_encode(const PngSpec* s, std::vector<uint8_t>* out) {
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png ? png_create_info_struct(png) : nullptr;
  if (!png || !info || setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    return false;
  }
  png_set_write_fn(png, out, append_png_bytes, flush_nothing);
  png_set_IHDR(png, info, s->width, s->height, s->bit_depth, s->color_type, s->interlace,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  if (s->palette) png_set_PLTE(png, info, s->palette, s->num_palette);
  if (s->trans || s->trans_gray) png_set_tRNS(png, info, s->trans, s->num_trans, s->trans_gray);
  png_write_info(png, info);
  const int passes = png_set_interlace_handling(png);
  for (int p = 0; p < passes; ++p)
    for (uint32_t y = 0; y < s->height; ++y) png_write_row(png, s->rows + y * s->row_bytes);
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
  return true;
}

std::vector<uint8_t> libpng_png(const PngSpec& spec) {
  std::vector<uint8_t> out;
  REQUIRE(libpng_encode(&spec, &out));
  return out;
}

PngSpec spec(uint32_t w, uint32_t h, int color, int depth, const std::vector<uint8_t>& rows) {
  return PngSpec{w, h, color, depth, PNG_INTERLACE_NONE, rows.data(), rows.size() / h, nullptr, 0, nullptr, 0, nullptr};
}

// ---- JPEGs made by TurboJPEG --------------------------------------------------------------------
std::vector<uint8_t> make_jpeg(const Image& img, int quality = 95) {
  tjhandle tj = tjInitCompress();
  REQUIRE(tj != nullptr);
  unsigned char* buf = nullptr;
  unsigned long size = 0;
  const bool gray = img.channels == 1;
  const int rc = tjCompress2(tj, img.pixels.data(), (int)img.width, 0, (int)img.height, gray ? TJPF_GRAY : TJPF_RGB,
                             &buf, &size, gray ? TJSAMP_GRAY : TJSAMP_444, quality, 0);
  std::vector<uint8_t> out;
  if (rc == 0) out.assign(buf, buf + size);
  tjFree(buf);
  tjDestroy(tj);
  REQUIRE(rc == 0);
  return out;
}

int max_abs_diff(const Image& a, const Image& b) {
  int worst = 0;
  for (size_t i = 0; i < a.pixels.size(); ++i) worst = std::max(worst, std::abs(int(a.pixels[i]) - int(b.pixels[i])));
  return worst;
}

Image image_of(int64_t h, int64_t w, int64_t c, std::vector<int> values) {
  Image img(h, w, c);
  REQUIRE(values.size() == img.pixels.size());
  for (size_t i = 0; i < values.size(); ++i) img.pixels[i] = uint8_t(values[i]);
  return img;
}

std::vector<int> pixels_of(const Image& img) { return std::vector<int>(img.pixels.begin(), img.pixels.end()); }

}  // namespace

// ================================ PNG ============================================================
TEST_CASE("encode_png/decode_png: gray, gray+alpha, RGB and RGBA round-trip byte for byte") {
  TempDir dir;
  for (int64_t c = 1; c <= 4; ++c) {
    CAPTURE(c);
    const Image img = make_image(7, 13, c, 17u + (uint32_t)c);
    const std::vector<uint8_t> png = encode_png(img);
    CHECK(detect_image_format(png.data(), png.size()) == ImageFormat::png);
    const Image back = decode_png(png.data(), png.size());
    CHECK(back.height == 7);
    CHECK(back.width == 13);
    CHECK(back.channels == c);
    CHECK(back.pixels == img.pixels);
    const std::string path = dir.file(fmt::format("img{}.png", c));
    write_png(path, img);
    CHECK(read_image(path).pixels == img.pixels);
  }
}

TEST_CASE("decode_png: PNGs written by libpng: 16-bit, palette, transparency, 1-bit gray, interlaced") {
  SUBCASE("16-bit gray and RGB are scaled to round(v / 257)") {
    std::vector<uint16_t> v(6 * 4 * 3);
    for (size_t i = 0; i < v.size(); ++i) v[i] = uint16_t(i * 997 + (i % 3) * 30000 + 128);
    v[0] = 0, v[1] = 65535, v[2] = 257 * 100;
    std::vector<uint8_t> be;  // PNG stores 16-bit samples big-endian
    for (uint16_t s : v) be.push_back(uint8_t(s >> 8)), be.push_back(uint8_t(s));
    for (int color : {PNG_COLOR_TYPE_GRAY, PNG_COLOR_TYPE_RGB}) {
      const int c = color == PNG_COLOR_TYPE_GRAY ? 1 : 3;
      std::vector<uint8_t> rows(be.begin(), be.begin() + 6 * 4 * c * 2);
      const std::vector<uint8_t> png = libpng_png(spec(6, 4, color, 16, rows));
      const Image img = decode_png(png.data(), png.size());
      REQUIRE(img.channels == c);
      for (int i = 0; i < 6 * 4 * c; ++i) CHECK(int(img.pixels[i]) == std::lround(v[i] / 257.0));
    }
  }
  SUBCASE("a 2-bit palette becomes RGB; with tRNS, RGBA") {
    const png_color palette[4] = {{10, 20, 30}, {200, 100, 0}, {0, 0, 255}, {77, 88, 99}};
    const std::vector<uint8_t> rows = {0b00011011, 0b11000000, 0b10010010, 0b01000000};  // 5 px/row
    PngSpec s = spec(5, 2, PNG_COLOR_TYPE_PALETTE, 2, rows);
    s.palette = palette;
    s.num_palette = 4;
    const int idx[10] = {0, 1, 2, 3, 3, 2, 1, 0, 2, 1};
    const std::vector<uint8_t> png = libpng_png(s);
    const Image rgb = decode_png(png.data(), png.size());
    REQUIRE(rgb.channels == 3);
    for (int i = 0; i < 10; ++i) {
      CHECK(rgb.pixels[3 * i] == palette[idx[i]].red);
      CHECK(rgb.pixels[3 * i + 1] == palette[idx[i]].green);
      CHECK(rgb.pixels[3 * i + 2] == palette[idx[i]].blue);
    }
    const png_byte trans[2] = {0, 128};
    s.trans = trans;
    s.num_trans = 2;
    const std::vector<uint8_t> png_t = libpng_png(s);
    const Image rgba = decode_png(png_t.data(), png_t.size());
    REQUIRE(rgba.channels == 4);
    for (int i = 0; i < 10; ++i) {
      CHECK(rgba.pixels[4 * i] == palette[idx[i]].red);
      CHECK(rgba.pixels[4 * i + 3] == (idx[i] < 2 ? trans[idx[i]] : 255));
    }
  }
  SUBCASE("1-bit gray expands to 0 and 255; a tRNS gray value adds an alpha channel") {
    const std::vector<uint8_t> rows = {0b10110000, 0b01000000};  // 10 px in 1 row
    PngSpec s = spec(10, 1, PNG_COLOR_TYPE_GRAY, 1, rows);
    const std::vector<uint8_t> png = libpng_png(s);
    CHECK(pixels_of(decode_png(png.data(), png.size())) == std::vector<int>{255, 0, 255, 255, 0, 0, 0, 0, 0, 255});
    const std::vector<uint8_t> rows8 = {5, 9, 5};
    png_color_16 transparent{};
    transparent.gray = 9;
    PngSpec s8 = spec(3, 1, PNG_COLOR_TYPE_GRAY, 8, rows8);
    s8.trans_gray = &transparent;
    const std::vector<uint8_t> png8 = libpng_png(s8);
    CHECK(pixels_of(decode_png(png8.data(), png8.size())) == std::vector<int>{5, 255, 9, 0, 5, 255});
  }
  SUBCASE("Adam7-interlaced RGB decodes to the same pixels") {
    const Image img = make_image(9, 11, 3, 5);
    PngSpec s = spec(11, 9, PNG_COLOR_TYPE_RGB, 8, img.pixels);
    s.interlace = PNG_INTERLACE_ADAM7;
    const std::vector<uint8_t> png = libpng_png(s);
    CHECK(decode_png(png.data(), png.size()).pixels == img.pixels);
  }
}

TEST_CASE("decode_png: every cut of a valid PNG is an IOError naming the buffer; flipped bytes never crash") {
  const std::vector<uint8_t> png = encode_png(make_image(6, 5, 3, 3));
  for (size_t len = 0; len < png.size(); ++len) {
    CAPTURE(len);
    const std::string msg = message_of<IOError>([&] { decode_image(png.data(), len, "cut.png"); });
    CHECK(contains(msg, "cut.png"));
  }
  CHECK(contains(message_of<IOError>([&] { decode_png(png.data(), png.size() - 1, "x.png"); }), "truncated"));
  int errors = 0;
  for (size_t pos = 0; pos < png.size(); ++pos) {  // either an IOError or some image, never UB
    std::vector<uint8_t> bad = png;
    bad[pos] ^= 0x5A;
    try {
      decode_image(bad.data(), bad.size(), "flipped.png");
    } catch (const IOError&) {
      ++errors;
    }
  }
  CHECK(errors > (int)png.size() / 2);  // CRCs catch nearly all of them
}

// ================================ JPEG ===========================================================
TEST_CASE("decode_jpeg: a JPEG made by TurboJPEG decodes close to the original; gray stays 1 channel") {
  const Image img = smooth_image(24, 40);
  const std::vector<uint8_t> jpg = make_jpeg(img);
  CHECK(detect_image_format(jpg.data(), jpg.size()) == ImageFormat::jpeg);
  const Image back = decode_image(jpg.data(), jpg.size());
  REQUIRE(back.height == 24);
  REQUIRE(back.width == 40);
  REQUIRE(back.channels == 3);
  CHECK(max_abs_diff(img, back) <= 6);
  const Image gray = convert_channels(img, 1);
  const std::vector<uint8_t> gjpg = make_jpeg(gray);
  const Image gback = decode_jpeg(gjpg.data(), gjpg.size());
  CHECK(gback.channels == 1);
  CHECK(max_abs_diff(gray, gback) <= 6);
  ImageDecoder reused;  // one handle, many images
  for (int k = 0; k < 3; ++k) CHECK(reused.decode(jpg.data(), jpg.size(), "a.jpg").pixels == back.pixels);
}

TEST_CASE("decode_jpeg: every cut of a valid JPEG is an IOError naming the buffer; flipped bytes never crash") {
  const std::vector<uint8_t> jpg = make_jpeg(smooth_image(16, 16), 90);
  for (size_t len = 0; len < jpg.size(); ++len) {
    CAPTURE(len);
    const std::string msg = message_of<IOError>([&] { decode_image(jpg.data(), len, "cut.jpg"); });
    CHECK(contains(msg, "cut.jpg"));
  }
  for (size_t pos = 0; pos < jpg.size(); pos += 3) {
    std::vector<uint8_t> bad = jpg;
    bad[pos] ^= 0xA5;
    try {
      decode_image(bad.data(), bad.size(), "flipped.jpg");
    } catch (const IOError&) {
    }
  }
}

TEST_CASE("decode_image: unknown formats, empty buffers and missing files are IOErrors") {
  const std::vector<uint8_t> gif = {'G', 'I', 'F', '8', '9', 'a', 0, 0, 0, 0};
  const std::string msg = message_of<IOError>([&] { decode_image(gif.data(), gif.size(), "anim.gif"); });
  CHECK(contains(msg, "anim.gif"));
  CHECK(contains(msg, "unsupported image format"));
  CHECK(detect_image_format(gif.data(), 0) == ImageFormat::unknown);
  message_of<IOError>([&] { decode_image(gif.data(), 0, "empty"); });
  TempDir dir;
  CHECK(contains(message_of<IOError>([&] { read_image(dir.file("nope.png")); }), "nope.png"));
  CHECK(contains(message_of<IOError>([&] { read_image(dir.path.string()); }), "directory"));
}

// ================================ conversions and geometry =======================================
TEST_CASE("convert_channels: luma 0.299 R + 0.587 G + 0.114 B, gray repeated, alpha dropped") {
  const Image rgba = image_of(1, 2, 4, {255, 0, 0, 9, 10, 200, 30, 0});
  CHECK(pixels_of(convert_channels(rgba, 3)) == std::vector<int>{255, 0, 0, 10, 200, 30});
  // 255 * 0.299 = 76.245 -> 76;  10*.299 + 200*.587 + 30*.114 = 123.81 -> 124
  CHECK(pixels_of(convert_channels(rgba, 1)) == std::vector<int>{76, 124});
  CHECK(pixels_of(convert_channels(image_of(1, 2, 1, {7, 250}), 3)) == std::vector<int>{7, 7, 7, 250, 250, 250});
  CHECK(pixels_of(convert_channels(image_of(1, 1, 2, {40, 3}), 1)) == std::vector<int>{40});
  CHECK_THROWS_AS(convert_channels(rgba, 2), gv::ValueError);
}

TEST_CASE("resize: area averaging and bilinear against hand-computed values") {
  // area, 4x4 -> 2x2: means of the 2x2 blocks
  const Image a = image_of(4, 4, 1, {0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110, 120, 130, 140, 150});
  CHECK(pixels_of(resize(a, 2, 2, ResizeFilter::area)) == std::vector<int>{25, 45, 105, 125});
  // area, 1x3 -> 1x2: (1*v0 + 0.5*v1) / 1.5 and (0.5*v1 + 1*v2) / 1.5
  const Image row = image_of(1, 3, 1, {30, 90, 150});
  CHECK(pixels_of(resize(row, 1, 2, ResizeFilter::area)) == std::vector<int>{50, 130});
  // area, 1x2 -> 1x4 upsamples by repetition; per channel
  CHECK(pixels_of(resize(image_of(1, 2, 2, {10, 1, 20, 2}), 1, 4, ResizeFilter::area)) ==
        std::vector<int>{10, 1, 10, 1, 20, 2, 20, 2});
  // bilinear, 1x2 -> 1x4: x = (i + 0.5) / 2 - 0.5 = -0.25, 0.25, 0.75, 1.25 -> clamped 0, .25, .75, 1
  CHECK(pixels_of(resize(image_of(1, 2, 1, {0, 100}), 1, 4, ResizeFilter::bilinear)) == std::vector<int>{0, 25, 75, 100});
  // bilinear, 1x4 -> 1x2: x = 0.5 and 2.5, midpoints
  CHECK(pixels_of(resize(image_of(1, 4, 1, {0, 20, 100, 140}), 1, 2, ResizeFilter::bilinear)) == std::vector<int>{10, 120});
  // bilinear in 2-D: 2x2 -> 4x4, the centre pixels (x = y = 0.25 and 0.75) blend all four corners
  const Image b = resize(image_of(2, 2, 1, {0, 80, 160, 240}), 4, 4, ResizeFilter::bilinear);
  CHECK(int(b.at(1, 1, 0)) == 60);   // 0.75*0.75*0 + .75*.25*80 + .25*.75*160 + .25*.25*240 = 60
  CHECK(int(b.at(0, 0, 0)) == 0);
  CHECK(int(b.at(3, 3, 0)) == 240);
  CHECK(pixels_of(resize(a, 4, 4)) == pixels_of(a));  // same size: unchanged
}

TEST_CASE("center_crop and resize_and_crop follow torchvision's CenterCrop and Resize(size)") {
  std::vector<int> v(25);
  for (int i = 0; i < 25; ++i) v[i] = i;
  const Image five = image_of(5, 5, 1, v);
  // (5 - 2) / 2 = 1.5 rounds half to even: 2
  CHECK(pixels_of(center_crop(five, 2, 2)) == std::vector<int>{12, 13, 17, 18});
  // (5 - 4) / 2 = 0.5 rounds to 0; (5 - 3) / 2 = 1
  CHECK(pixels_of(center_crop(five, 4, 3)) == std::vector<int>{1, 2, 3, 6, 7, 8, 11, 12, 13, 16, 17, 18});
  CHECK_THROWS_AS(center_crop(five, 6, 1), gv::ValueError);
  // 4x8 -> shorter side 2: 2x4 (area: 2x2 block means), then the centre 2x2 (left = 1)
  std::vector<int> w(32);
  for (int i = 0; i < 32; ++i) w[i] = 4 * i;
  const Image r = resize_and_crop(image_of(4, 8, 1, w), 2);
  // block (0,1): rows 0-1, cols 2-3: (8 + 12 + 40 + 44) / 4 = 26
  CHECK(pixels_of(r) == std::vector<int>{26, 34, 90, 98});
  // 3x5 -> 2x3 (floor(2 * 5 / 3) = 3), crop left = round(0.5) = 0
  const Image s = resize_and_crop(make_image(3, 5, 3, 9), 2);
  CHECK(s.height == 2);
  CHECK(s.width == 2);
  CHECK(s.pixels == center_crop(resize(make_image(3, 5, 3, 9), 2, 3), 2, 2).pixels);
}

TEST_CASE("image_to_tensor, tensor_to_image and write_png of a (C,H,W) float tensor") {
  const Image img = make_image(3, 4, 3, 11);
  const Tensor t = image_to_tensor(img);
  CHECK(t.shape() == gv::Shape{3, 3, 4});
  CHECK(t.data<float>()[1 * 12 + 2 * 4 + 3] == doctest::Approx(img.at(2, 3, 1) / 255.0));
  CHECK(tensor_to_image(t).pixels == img.pixels);
  const Tensor out_of_range = Tensor::from_list({-0.5, 0.5, 2.0, 1.0 / 255}, {1, 2, 2});
  CHECK(pixels_of(tensor_to_image(out_of_range)) == std::vector<int>{0, 128, 255, 1});
  TempDir dir;
  write_png(dir.file("t.png"), t);
  CHECK(read_image(dir.file("t.png")).pixels == img.pixels);
  CHECK_THROWS_AS(write_png(dir.file("bad.png"), Tensor::zeros({5, 2, 2})), gv::ValueError);
  CHECK(contains(message_of<IOError>([&] { write_png(dir.file("no/such/dir/x.png"), img); }), "x.png"));
}

TEST_CASE("make_grid: torchvision's layout, padding and pad value") {
  // 5 images (1,2,3), image k filled with k+1; nrow 2 -> 3 rows of 2
  Tensor x = Tensor::empty({5, 1, 2, 3});
  for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = float(i / 6 + 1);
  const Tensor g = make_grid(x, 2, 1, 0.5);
  REQUIRE(g.shape() == gv::Shape{1, 3 * (2 + 1) + 1, 2 * (3 + 1) + 1});
  auto at = [&](int64_t y, int64_t xx) { return g.data<float>()[y * 9 + xx]; };
  CHECK(at(0, 0) == 0.5f);
  CHECK(at(1, 1) == 1.0f);   // image 0 starts at (1, 1)
  CHECK(at(2, 3) == 1.0f);
  CHECK(at(1, 4) == 0.5f);   // the padding column between images
  CHECK(at(1, 5) == 2.0f);   // image 1 at (1, 5)
  CHECK(at(4, 1) == 3.0f);   // image 2 at (4, 1)
  CHECK(at(7, 1) == 5.0f);   // image 4 at (7, 1)
  CHECK(at(7, 5) == 0.5f);   // no image 5: padding
  CHECK(make_grid(x, 8, 0).shape() == gv::Shape{1, 2, 15});
  CHECK_THROWS_AS(make_grid(Tensor::zeros({2, 3}), 2, 1), gv::ValueError);
}

// ================================ image folders ==================================================
TEST_CASE("load_image_folder: labels from sorted subfolders, sorted files, resize, grayscale") {
  TempDir dir;
  const Image red = image_of(2, 2, 3, {255, 0, 0, 255, 0, 0, 255, 0, 0, 255, 0, 0});
  put_png(dir.file("dog/b.png"), red);
  put_png(dir.file("dog/a.PNG"), image_of(4, 6, 1, std::vector<int>(24, 100)));
  write_bytes(dir.file("dog/deep/c.jpg"), make_jpeg(smooth_image(8, 8)));
  put_png(dir.file("cat/z.png"), red);
  write_bytes(dir.file("cat/notes.txt"), {'h', 'i'});
  fs::create_directories(dir.path / "empty_class");
  const ImageFolder f = load_image_folder(dir.path.string(), {.size = 2});
  CHECK(f.classes == std::vector<std::string>{"cat", "dog"});
  REQUIRE(f.files.size() == 4);
  CHECK(fs::path(f.files[0]).filename() == "z.png");
  CHECK(fs::path(f.files[1]).filename() == "a.PNG");
  CHECK(fs::path(f.files[2]).filename() == "b.png");
  CHECK(fs::path(f.files[3]).filename() == "c.jpg");
  CHECK(f.labels.to_vector<int64_t>() == std::vector<int64_t>{0, 1, 1, 1});
  REQUIRE(f.images.shape() == gv::Shape{4, 3, 2, 2});
  const std::vector<float> px = f.images.to_vector<float>();
  CHECK(px[0] == 1.0f);                              // red, channel 0
  CHECK(px[4] == 0.0f);                              // red, channel 1
  CHECK(px[12] == doctest::Approx(100 / 255.0));     // gray 4x6 resized: still 100
  CHECK(px[12 + 8] == doctest::Approx(100 / 255.0)); // repeated into channel 2
  const ImageFolder g = load_image_folder(dir.path.string(), {.size = 2, .grayscale = true, .limit = 2});
  CHECK(g.images.shape() == gv::Shape{2, 1, 2, 2});
  CHECK(g.images.to_vector<float>()[0] == doctest::Approx(76 / 255.0));
}

TEST_CASE("load_image_folder: images directly in the folder get label 0") {
  TempDir dir;
  put_png(dir.file("one.png"), make_image(3, 3, 3, 1));
  put_png(dir.file("two.png"), make_image(3, 3, 4, 2));
  const ImageFolder f = load_image_folder(dir.path.string(), {.size = 3, .resize = false});
  CHECK(f.classes == std::vector<std::string>{""});
  CHECK(f.labels.to_vector<int64_t>() == std::vector<int64_t>{0, 0});
  CHECK(f.images.shape() == gv::Shape{2, 3, 3, 3});
}

TEST_CASE("load_image_folder: missing, empty, mixed folders, wrong sizes and bad files are IOErrors") {
  TempDir dir;
  CHECK(contains(message_of<IOError>([&] { load_image_folder(dir.file("missing")); }), "missing"));
  fs::create_directories(dir.path / "empty" / "sub");
  write_bytes(dir.file("empty/readme.txt"), {'x'});
  CHECK(contains(message_of<IOError>([&] { load_image_folder(dir.file("empty")); }), "no images"));
  put_png(dir.file("mixed/a.png"), make_image(2, 2, 3, 1));
  put_png(dir.file("mixed/cls/b.png"), make_image(2, 2, 3, 1));
  CHECK(contains(message_of<IOError>([&] { load_image_folder(dir.file("mixed")); }), "both"));
  put_png(dir.file("sizes/c/ok.png"), make_image(4, 4, 3, 1));
  put_png(dir.file("sizes/c/wide.png"), make_image(4, 5, 3, 1));
  const std::string msg = message_of<IOError>([&] { load_image_folder(dir.file("sizes"), {.size = 4, .resize = false}); });
  CHECK(contains(msg, "wide.png"));
  CHECK(contains(msg, "expected 4x4"));
  std::vector<uint8_t> cut = encode_png(make_image(4, 4, 3, 1));
  cut.resize(cut.size() / 2);
  write_bytes(dir.file("bad/c/0.png"), encode_png(make_image(4, 4, 3, 1)));
  write_bytes(dir.file("bad/c/1.png"), cut);
  write_bytes(dir.file("bad/c/2.jpg"), {0xFF, 0xD8, 0xFF, 0xE0, 0x00});
  CHECK(contains(message_of<IOError>([&] { load_image_folder(dir.file("bad"), {.size = 4}); }), "1.png"));
}

// ================================ CIFAR-10 =======================================================
namespace {

using Files = std::vector<std::pair<std::string, std::vector<uint8_t>>>;

void write_tar_gz(const std::string& path, const Files& files) {
  archive* a = archive_write_new();
  REQUIRE(a != nullptr);
  archive_write_add_filter_gzip(a);
  archive_write_set_format_pax_restricted(a);
  REQUIRE(archive_write_open_filename(a, path.c_str()) == ARCHIVE_OK);
  for (const auto& [name, bytes] : files) {
    archive_entry* e = archive_entry_new();
    archive_entry_set_pathname(e, name.c_str());
    archive_entry_set_size(e, (la_int64_t)bytes.size());
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    REQUIRE(archive_write_header(a, e) == ARCHIVE_OK);
    REQUIRE(archive_write_data(a, bytes.data(), bytes.size()) == (la_ssize_t)bytes.size());
    archive_entry_free(e);
  }
  REQUIRE(archive_write_close(a) == ARCHIVE_OK);
  archive_write_free(a);
}

// A flat 32x32 colour (JPEG keeps it to within a level or two) that encodes (class, k).
std::vector<uint8_t> cifar_jpeg(int cls, int k) {
  Image img(32, 32, 3);
  for (int64_t i = 0; i < 32 * 32; ++i) {
    img.pixels[3 * i] = uint8_t(20 * cls + 10);
    img.pixels[3 * i + 1] = uint8_t(40 * k + 20);
    img.pixels[3 * i + 2] = 128;
  }
  return make_jpeg(img, 95);
}

// Class and k back from image i of a loaded split.
std::pair<int, int> decode_marks(const Tensor& images, int64_t i) {
  const float* p = images.data<float>() + i * 3 * 32 * 32;
  return {(int)std::lround((p[0] * 255 - 10) / 20), (int)std::lround((p[1024] * 255 - 20) / 40)};
}

// A small CIFAR-like archive, entries deliberately out of order.
Files synthetic_cifar() {
  Files f;
  f.push_back({"README.md", {'h', 'i'}});
  f.push_back({"train/truck/0001.jpg", cifar_jpeg(9, 1)});
  f.push_back({"train/airplane/0002.jpg", cifar_jpeg(0, 2)});
  f.push_back({"test/cat/0000.jpg", cifar_jpeg(3, 0)});
  f.push_back({"train/cat/0000.jpg", cifar_jpeg(3, 0)});
  f.push_back({"train/airplane/0000.jpg", cifar_jpeg(0, 0)});
  f.push_back({"train/cat/notes.txt", {'x'}});
  f.push_back({"test/truck/0003.jpg", cifar_jpeg(9, 3)});
  return f;
}

// Captures what is written to stderr (file descriptor 2) between construction and finish().
struct StderrCapture {
  std::string path;
  int saved = -1;
  explicit StderrCapture(std::string p) : path(std::move(p)) {
    std::fflush(stderr);
    saved = dup(2);
    const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, 2);
    close(fd);
  }
  ~StderrCapture() { restore(); }
  void restore() {
    if (saved < 0) return;
    std::fflush(stderr);
    dup2(saved, 2);
    close(saved);
    saved = -1;
  }
  std::string finish() {
    restore();
    std::ifstream f(path);
    return std::string(std::istreambuf_iterator<char>(f), {});
  }
};

ino_t inode_of(const std::string& path) {
  struct stat st {};
  REQUIRE(stat(path.c_str(), &st) == 0);
  return st.st_ino;
}

}  // namespace

TEST_CASE("load_cifar10: a synthetic tar.gz, entries sorted by path, labels from class names") {
  TempDir dir;
  const std::string tgz = dir.file("c.tar.gz");
  write_tar_gz(tgz, synthetic_cifar());
  const Cifar10Split train = load_cifar10(tgz, true);
  REQUIRE(train.images.shape() == gv::Shape{4, 3, 32, 32});
  // sorted: airplane/0000, airplane/0002, cat/0000, truck/0001
  CHECK(train.labels.to_vector<int64_t>() == std::vector<int64_t>{0, 0, 3, 9});
  CHECK(decode_marks(train.images, 0) == std::pair<int, int>{0, 0});
  CHECK(decode_marks(train.images, 1) == std::pair<int, int>{0, 2});
  CHECK(decode_marks(train.images, 2) == std::pair<int, int>{3, 0});
  CHECK(decode_marks(train.images, 3) == std::pair<int, int>{9, 1});
  const Cifar10Split test = load_cifar10(tgz, false);
  CHECK(test.labels.to_vector<int64_t>() == std::vector<int64_t>{3, 9});
  const Cifar10Split two = load_cifar10(tgz, true, 2);
  CHECK(two.labels.to_vector<int64_t>() == std::vector<int64_t>{0, 0});
  CHECK(two.images.to_vector<float>() == train.images.slice(0, 0, 2).contiguous().to_vector<float>());
  CHECK(cifar10_classes().size() == 10);

  // the same files unpacked into a folder give the same tensors
  for (const auto& [name, bytes] : synthetic_cifar()) write_bytes(dir.file("unpacked/" + name), bytes);
  const Cifar10Split folder = load_cifar10(dir.file("unpacked"), true);
  CHECK(folder.labels.to_vector<int64_t>() == train.labels.to_vector<int64_t>());
  CHECK(folder.images.to_vector<float>() == train.images.to_vector<float>());
}

TEST_CASE("load_cifar10: archive members with an absolute path or '..' are never taken as data, and counted") {
  TempDir dir;
  Files f = synthetic_cifar();
  const size_t good = f.size();
  // each would be a valid train/<class>/ image by its last three parts
  f.push_back({"../train/cat/0005.jpg", cifar_jpeg(3, 5)});
  f.push_back({"/train/cat/0006.jpg", cifar_jpeg(3, 6)});
  f.push_back({"x/../train/cat/0007.jpg", cifar_jpeg(3, 7)});
  f.push_back({"train/cat/../cat/0008.jpg", cifar_jpeg(3, 8)});
  write_tar_gz(dir.file("hostile.tar.gz"), f);
  const Cifar10Split train = load_cifar10(dir.file("hostile.tar.gz"), true);
  CHECK(train.unsafe_skipped == 4);
  CHECK(train.labels.to_vector<int64_t>() == std::vector<int64_t>{0, 0, 3, 9});  // only the four good ones
  CHECK(train.unsafe_skipped == int64_t(f.size() - good));  // every member added above, none of the good ones
  CHECK(load_cifar10(dir.file("hostile.tar.gz"), false).unsafe_skipped == 4);  // every split says so
  CHECK(unsafe_member_path("../a"));
  CHECK(unsafe_member_path("/etc/passwd"));
  CHECK(unsafe_member_path("a/.."));
  CHECK(unsafe_member_path("a\\..\\b"));
  CHECK(unsafe_member_path(""));
  CHECK_FALSE(unsafe_member_path("train/cat/a..b.jpg"));
  CHECK_FALSE(unsafe_member_path("./train/cat/1.jpg"));
}

TEST_CASE("load_cifar10: bad entries, unknown classes, corrupt archives and missing paths are IOErrors") {
  TempDir dir;
  SUBCASE("a truncated JPEG entry is named") {
    Files f = synthetic_cifar();
    std::vector<uint8_t> cut = cifar_jpeg(5, 1);
    cut.resize(cut.size() - 40);
    f.push_back({"train/dog/0007.jpg", cut});
    write_tar_gz(dir.file("bad.tar.gz"), f);
    const std::string msg = message_of<IOError>([&] { load_cifar10(dir.file("bad.tar.gz"), true); });
    CHECK(contains(msg, "bad.tar.gz:train/dog/0007.jpg"));
    CHECK_NOTHROW(load_cifar10(dir.file("bad.tar.gz"), false));  // the test split is fine
  }
  SUBCASE("an image that is not 32x32 RGB is named") {
    Files f = synthetic_cifar();
    f.push_back({"train/ship/0100.jpg", make_jpeg(smooth_image(16, 32))});
    write_tar_gz(dir.file("size.tar.gz"), f);
    const std::string msg = message_of<IOError>([&] { load_cifar10(dir.file("size.tar.gz"), true); });
    CHECK(contains(msg, "train/ship/0100.jpg"));
    CHECK(contains(msg, "expected 32x32 RGB"));
  }
  SUBCASE("an unknown class folder is named") {
    Files f = synthetic_cifar();
    f.push_back({"train/unicorn/0000.jpg", cifar_jpeg(1, 1)});
    write_tar_gz(dir.file("cls.tar.gz"), f);
    const std::string msg = message_of<IOError>([&] { load_cifar10(dir.file("cls.tar.gz"), true); });
    CHECK(contains(msg, "unicorn"));
    CHECK(contains(msg, "airplane, automobile"));
  }
  SUBCASE("a cut archive, a non-archive, a missing path, an archive without the split") {
    write_tar_gz(dir.file("ok.tar.gz"), synthetic_cifar());
    std::vector<uint8_t> bytes = read_file_bytes(dir.file("ok.tar.gz"));
    bytes.resize(bytes.size() / 2);
    write_bytes(dir.file("cut.tar.gz"), bytes);
    CHECK(contains(message_of<IOError>([&] { load_cifar10(dir.file("cut.tar.gz"), true); }), "cut.tar.gz"));
    write_bytes(dir.file("junk.tar.gz"), noise(5000, 3));
    CHECK(contains(message_of<IOError>([&] { load_cifar10(dir.file("junk.tar.gz"), true); }), "junk.tar.gz"));
    CHECK(contains(message_of<IOError>([&] { load_cifar10(dir.file("nowhere.tar.gz"), true); }), "not found"));
    write_tar_gz(dir.file("none.tar.gz"), {{"README.md", {'x'}}});
    CHECK(contains(message_of<IOError>([&] { load_cifar10(dir.file("none.tar.gz"), true); }), "no train"));
    CHECK_THROWS_AS(load_cifar10(dir.file("ok.tar.gz"), true, -2), gv::ValueError);
  }
}

TEST_CASE("load_cifar10: the cache is written, read back, and rebuilt with a warning when corrupt") {
  TempDir dir;
  const std::string tgz = dir.file("c.tar.gz"), cache = dir.file("cache");
  write_tar_gz(tgz, synthetic_cifar());
  const Cifar10Split fresh = load_cifar10(tgz, true);
  const Cifar10Split first = load_cifar10(tgz, true, -1, cache);
  const std::string file = (fs::path(cache) / "cifar10-train.gvcache").string();
  REQUIRE(fs::exists(file));
  CHECK(fs::file_size(file) == 64 + 4 * (1 + 3 * 32 * 32));
  CHECK(first.images.to_vector<float>() == fresh.images.to_vector<float>());

  StderrCapture quiet(dir.file("stderr0.txt"));
  const ino_t inode = inode_of(file);
  const Cifar10Split hit = load_cifar10(tgz, true, -1, cache);
  CHECK(quiet.finish().empty());
  CHECK(inode_of(file) == inode);  // read, not rewritten
  CHECK(hit.images.to_vector<float>() == fresh.images.to_vector<float>());
  CHECK(hit.labels.to_vector<int64_t>() == fresh.labels.to_vector<int64_t>());

  // a flipped pixel byte: the checksum fails, the cache is rebuilt with a warning
  std::vector<uint8_t> bytes = read_file_bytes(file);
  bytes[64 + 4 + 100] ^= 0xFF;
  write_bytes(file, bytes);
  StderrCapture warned(dir.file("stderr1.txt"));
  const Cifar10Split rebuilt = load_cifar10(tgz, true, -1, cache);
  const std::string warning = warned.finish();
  CHECK(contains(warning, "warning"));
  CHECK(contains(warning, "checksum"));
  CHECK(rebuilt.images.to_vector<float>() == fresh.images.to_vector<float>());
  CHECK(read_file_bytes(file) != bytes);

  // a cut cache and a garbage one are rebuilt too
  bytes = read_file_bytes(file);
  bytes.resize(bytes.size() - 10);
  write_bytes(file, bytes);
  StderrCapture cut(dir.file("stderr2.txt"));
  CHECK(load_cifar10(tgz, true, -1, cache).labels.to_vector<int64_t>() == fresh.labels.to_vector<int64_t>());
  CHECK(contains(cut.finish(), "bytes"));
  write_bytes(file, noise(100, 1));
  StderrCapture garbage(dir.file("stderr3.txt"));
  CHECK(load_cifar10(tgz, true, -1, cache).labels.to_vector<int64_t>() == fresh.labels.to_vector<int64_t>());
  CHECK(contains(garbage.finish(), "magic"));

  // each (split, limit) has its own file; no temporary files are left behind
  load_cifar10(tgz, false, -1, cache);
  load_cifar10(tgz, true, 2, cache);
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(cache)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  CHECK(names == std::vector<std::string>{"cifar10-test.gvcache", "cifar10-train-2.gvcache", "cifar10-train.gvcache"});
}

TEST_CASE("default_cifar10_path: GENVAE_CIFAR10 wins") {
  const char* old = std::getenv("GENVAE_CIFAR10");
  const std::string saved = old ? old : "";
  setenv("GENVAE_CIFAR10", "/somewhere/cifar.tar.gz", 1);
  CHECK(default_cifar10_path() == "/somewhere/cifar.tar.gz");
  if (old) {
    setenv("GENVAE_CIFAR10", saved.c_str(), 1);
  } else {
    unsetenv("GENVAE_CIFAR10");
    CHECK(contains(default_cifar10_path(), "cifar10-jpg.tar.gz"));
  }
}

namespace {

std::optional<std::string> real_cifar10() {
  const std::string path = default_cifar10_path();
  if (fs::exists(path)) return path;
  MESSAGE("CIFAR-10 not found at '" << path << "': skipping the checks on the real data");
  WARN_MESSAGE(false, "CIFAR-10 missing: real-data checks skipped");
  return std::nullopt;
}

void check_real_split(const Cifar10Split& s, int64_t n) {
  REQUIRE(s.images.shape() == gv::Shape{n, 3, 32, 32});
  std::vector<int64_t> counts(10, 0);
  for (int64_t l : s.labels.to_vector<int64_t>()) counts.at((size_t)l)++;
  for (int64_t c : counts) CHECK(c == n / 10);
  const float* p = s.images.data<float>();
  const double known[3] = {0.4914, 0.4822, 0.4465};  // CIFAR-10 training means
  for (int c = 0; c < 3; ++c) {
    double sum = 0;
    for (int64_t i = 0; i < n; ++i)
      for (int64_t k = 0; k < 1024; ++k) sum += p[(i * 3 + c) * 1024 + k];
    const double mean = sum / (n * 1024.0);
    MESSAGE("CIFAR-10 " << std::string(n == 50000 ? "train" : "test") << " channel " << c << " mean " << mean);
    CHECK(std::abs(mean - known[c]) < 0.01);
  }
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

TEST_CASE("CIFAR-10 (real): 50000 train and 10000 test images, 5000/1000 per class, known means; timings") {
  const std::optional<std::string> path = real_cifar10();
  if (!path) return;
  TempDir dir;
  auto t0 = std::chrono::steady_clock::now();
  const Cifar10Split train = load_cifar10(*path, true);
  MESSAGE("CIFAR-10 train (50000 JPEGs from the tar.gz) loaded in " << seconds_since(t0) << " s");
  check_real_split(train, 50000);
  check_real_split(load_cifar10(*path, false), 10000);

  t0 = std::chrono::steady_clock::now();
  load_cifar10(*path, true, -1, dir.file("cache"));
  MESSAGE("CIFAR-10 train, first load with a cache_dir (decode + write the cache): " << seconds_since(t0) << " s");
  t0 = std::chrono::steady_clock::now();
  const Cifar10Split cached = load_cifar10(*path, true, -1, dir.file("cache"));
  MESSAGE("CIFAR-10 train from the cache: " << seconds_since(t0) << " s");
  CHECK(cached.labels.to_vector<int64_t>() == train.labels.to_vector<int64_t>());
  CHECK(std::memcmp(cached.images.data<float>(), train.images.data<float>(), sizeof(float) * train.images.numel()) == 0);
}

}  // namespace file_nn_test_images
