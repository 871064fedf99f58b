// images.cpp: PNG and JPEG codecs, resizing and cropping, sample grids, image folders.
//
// libpng reports errors by calling an error handler that must not return. Ours longjmps back
// into png_read_c / png_write_c: small C-style functions whose frames hold no object with a
// destructor and whose state lives in a plain struct owned by the caller (so nothing they set
// after setjmp is lost by the jump). They clean up and return false; their C++ callers then throw
// IOError. No exception ever crosses libpng's C frames: the one callback that could throw (the
// growing output buffer of the encoder) catches it and turns it into png_error.
#include "nn/data/images.h"

#include <png.h>
#include <turbojpeg.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <csetjmp>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <map>
#include <memory>

namespace gv::data {
namespace fs = std::filesystem;

Image::Image(int64_t h, int64_t w, int64_t c) : height(h), width(w), channels(c) {
  GV_CHECK(h >= 0 && w >= 0 && c >= 1 && c <= 4, ValueError,
           "Image: needs height, width >= 0 and 1..4 channels, got {}x{}x{}", h, w, c);
  pixels.assign((size_t)(h * w * c), 0);
}

ImageFormat detect_image_format(const uint8_t* data, size_t size) {
  static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (size >= 8 && std::memcmp(data, png_sig, 8) == 0) return ImageFormat::png;
  if (size >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF) return ImageFormat::jpeg;
  return ImageFormat::unknown;
}

namespace {

// ---- PNG decoding: the setjmp frame ------------------------------------------------------------
// Everything png_read_c touches after setjmp is in here, outside its frame.
struct PngReadState {
  const uint8_t* data;
  size_t size, pos;
  std::jmp_buf jump;
  char message[256];
  png_structp png;
  png_infop info;
  png_bytep* rows;   // malloc'ed row pointers into pixels
  uint8_t* pixels;   // malloc'ed; handed to the caller on success
  uint32_t width, height;
  int channels;
};

[[noreturn]] void png_fail(PngReadState* st, const char* message) {
  std::snprintf(st->message, sizeof st->message, "%s", message);
  std::longjmp(st->jump, 1);
}

void png_on_error(png_structp png, png_const_charp message) {
  png_fail(static_cast<PngReadState*>(png_get_error_ptr(png)), message);
}
void png_on_warning(png_structp, png_const_charp) {}  // ancillary trouble: keep the pixels

// Hands libpng the next n bytes; running out of data means a truncated file.
void png_read_buffer(png_structp png, png_bytep out, size_t n) {
  auto* st = static_cast<PngReadState*>(png_get_io_ptr(png));
  if (n > st->size - st->pos) png_fail(st, "truncated file: the data ends early");
  std::memcpy(out, st->data + st->pos, n);
  st->pos += n;
}

// Expand low bit depths and palettes to 8-bit gray/RGB(A), scale 16-bit samples to 8 bits.
void png_set_8bit_transforms(png_structp png, png_infop info) {
  const int color = png_get_color_type(png, info), depth = png_get_bit_depth(png, info);
  if (color == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
  if (color == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
  if (png_get_valid(png, info, PNG_INFO_tRNS)) png_set_tRNS_to_alpha(png);
  if (depth == 16) png_set_scale_16(png);  // round(v * 255 / 65535)
  png_set_interlace_handling(png);
  png_read_update_info(png, info);
}

void png_read_cleanup(PngReadState* st) {
  if (st->png) png_destroy_read_struct(&st->png, st->info ? &st->info : nullptr, nullptr);
  std::free(st->rows);
  st->rows = nullptr;
}

// Decodes st->data into st->pixels. False (with st->message) on any error; frees what it made.
bool png_read_c(PngReadState* st) {
  st->png = png_create_read_struct(PNG_LIBPNG_VER_STRING, st, png_on_error, png_on_warning);
  if (st->png) st->info = png_create_info_struct(st->png);
  if (!st->png || !st->info) {
    std::snprintf(st->message, sizeof st->message, "out of memory");
    png_read_cleanup(st);
    return false;
  }
  if (setjmp(st->jump)) {
    png_read_cleanup(st);
    std::free(st->pixels);
    st->pixels = nullptr;
    return false;
  }
  png_set_read_fn(st->png, st, png_read_buffer);
  png_read_info(st->png, st->info);
  png_set_8bit_transforms(st->png, st->info);
  st->width = png_get_image_width(st->png, st->info);
  st->height = png_get_image_height(st->png, st->info);
  st->channels = png_get_channels(st->png, st->info);
  const size_t row_bytes = png_get_rowbytes(st->png, st->info);
  if ((int64_t)st->width * st->height > kMaxImagePixels) png_fail(st, "image too large (over 2^28 pixels)");
  if (row_bytes != (size_t)st->width * st->channels) png_fail(st, "unexpected row size after 8-bit conversion");
  st->pixels = static_cast<uint8_t*>(std::malloc(row_bytes * st->height + 1));
  st->rows = static_cast<png_bytep*>(std::malloc(sizeof(png_bytep) * st->height + 1));
  if (!st->pixels || !st->rows) png_fail(st, "out of memory");
  for (uint32_t y = 0; y < st->height; ++y) st->rows[y] = st->pixels + y * row_bytes;
  png_read_image(st->png, st->rows);
  png_read_end(st->png, nullptr);  // up to IEND: a file cut anywhere fails
  png_read_cleanup(st);
  return true;
}

// ---- PNG encoding: the setjmp frame ------------------------------------------------------------
struct PngWriteState {
  const uint8_t* pixels;
  uint32_t width, height;
  int channels;
  std::vector<uint8_t>* out;  // owned by the caller
  std::jmp_buf jump;
  char message[256];
  png_structp png;
  png_infop info;
  png_bytep* rows;
};

void png_write_on_error(png_structp png, png_const_charp message) {
  auto* st = static_cast<PngWriteState*>(png_get_error_ptr(png));
  std::snprintf(st->message, sizeof st->message, "%s", message);
  std::longjmp(st->jump, 1);
}

// Appends to the output vector; an allocation failure becomes a libpng error, not an exception.
void png_write_buffer(png_structp png, png_bytep data, size_t n) {
  auto* st = static_cast<PngWriteState*>(png_get_io_ptr(png));
  bool ok = true;
  try {
    st->out->insert(st->out->end(), data, data + n);
  } catch (...) {
    ok = false;
  }
  if (!ok) png_error(png, "out of memory");
}
void png_flush_nothing(png_structp) {}

void png_write_cleanup(PngWriteState* st) {
  if (st->png) png_destroy_write_struct(&st->png, st->info ? &st->info : nullptr);
  std::free(st->rows);
  st->rows = nullptr;
}

bool png_write_c(PngWriteState* st) {
  static const int color_types[5] = {0, PNG_COLOR_TYPE_GRAY, PNG_COLOR_TYPE_GRAY_ALPHA,
                                     PNG_COLOR_TYPE_RGB, PNG_COLOR_TYPE_RGB_ALPHA};
  st->png = png_create_write_struct(PNG_LIBPNG_VER_STRING, st, png_write_on_error, png_on_warning);
  if (st->png) st->info = png_create_info_struct(st->png);
  if (!st->png || !st->info) {
    std::snprintf(st->message, sizeof st->message, "out of memory");
    png_write_cleanup(st);
    return false;
  }
  if (setjmp(st->jump)) {
    png_write_cleanup(st);
    return false;
  }
  png_set_write_fn(st->png, st, png_write_buffer, png_flush_nothing);
  png_set_IHDR(st->png, st->info, st->width, st->height, 8, color_types[st->channels],
               PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  st->rows = static_cast<png_bytep*>(std::malloc(sizeof(png_bytep) * st->height + 1));
  if (!st->rows) png_error(st->png, "out of memory");
  const size_t row_bytes = (size_t)st->width * st->channels;
  for (uint32_t y = 0; y < st->height; ++y) st->rows[y] = const_cast<uint8_t*>(st->pixels) + y * row_bytes;
  png_set_rows(st->png, st->info, st->rows);
  png_write_png(st->png, st->info, PNG_TRANSFORM_IDENTITY, nullptr);
  png_write_cleanup(st);
  return true;
}

// ---- JPEG ---------------------------------------------------------------------------------------
tjhandle jpeg_handle(void*& slot) {
  if (!slot) slot = tjInitDecompress();
  GV_CHECK(slot != nullptr, IOError, "decode_jpeg: cannot create a TurboJPEG decompressor: {}",
           tjGetErrorStr2(nullptr));
  return static_cast<tjhandle>(slot);
}

}  // namespace

// ---- decoding -----------------------------------------------------------------------------------
Image decode_png(const uint8_t* data, size_t size, const std::string& name) {
  PngReadState st{};
  st.data = data;
  st.size = size;
  if (!png_read_c(&st))
    GV_THROW(IOError, "decode_png: {}: corrupt or truncated PNG ({} bytes): {} (libpng)", name, size,
             st.message);
  std::unique_ptr<uint8_t, decltype(&std::free)> owned(st.pixels, &std::free);
  GV_CHECK(st.width > 0 && st.height > 0 && st.channels >= 1 && st.channels <= 4, IOError,
           "decode_png: {}: unsupported PNG of {}x{} pixels with {} channels", name, st.width,
           st.height, st.channels);
  Image img;
  img.height = st.height;
  img.width = st.width;
  img.channels = st.channels;
  img.pixels.assign(st.pixels, st.pixels + (size_t)st.width * st.height * st.channels);
  return img;
}

ImageDecoder::~ImageDecoder() {
  if (jpeg_) tjDestroy(static_cast<tjhandle>(jpeg_));
}

Image ImageDecoder::decode_jpeg(const uint8_t* data, size_t size, const std::string& name) {
  tjhandle tj = jpeg_handle(jpeg_);
  int width = 0, height = 0, subsamp = 0, colorspace = 0;
  if (tjDecompressHeader3(tj, data, (unsigned long)size, &width, &height, &subsamp, &colorspace) != 0)
    GV_THROW(IOError, "decode_jpeg: {}: corrupt or truncated JPEG ({} bytes): {} (TurboJPEG)", name,
             size, tjGetErrorStr2(tj));
  GV_CHECK(width > 0 && height > 0 && (int64_t)width * height <= kMaxImagePixels, IOError,
           "decode_jpeg: {}: JPEG of {}x{} pixels: expected 1 to 2^28 pixels", name, width, height);
  const bool gray = colorspace == TJCS_GRAY;
  Image img(height, width, gray ? 1 : 3);
  // Warnings (a premature end of data, corrupt entropy data) stop decoding: they are errors here.
  if (tjDecompress2(tj, data, (unsigned long)size, img.pixels.data(), width, 0, height,
                    gray ? TJPF_GRAY : TJPF_RGB, TJFLAG_STOPONWARNING) != 0)
    GV_THROW(IOError, "decode_jpeg: {}: corrupt or truncated JPEG ({} bytes, {}x{}): {} (TurboJPEG)",
             name, size, width, height, tjGetErrorStr2(tj));
  return img;
}

Image ImageDecoder::decode(const uint8_t* data, size_t size, const std::string& name) {
  switch (detect_image_format(data, size)) {
    case ImageFormat::png: return decode_png(data, size, name);
    case ImageFormat::jpeg: return decode_jpeg(data, size, name);
    case ImageFormat::unknown: break;
  }
  GV_THROW(IOError,
           "decode_image: {}: unsupported image format ({} bytes): expected a PNG (89 50 4E 47 ...) "
           "or a JPEG (FF D8 FF)",
           name, size);
}

Image decode_jpeg(const uint8_t* data, size_t size, const std::string& name) {
  return ImageDecoder().decode_jpeg(data, size, name);
}

Image decode_image(const uint8_t* data, size_t size, const std::string& name) {
  return ImageDecoder().decode(data, size, name);
}

std::vector<uint8_t> read_file_bytes(const std::string& path) {
  std::error_code ec;
  GV_CHECK(!fs::is_directory(path, ec), IOError, "read_file_bytes: cannot read {}: it is a directory", path);
  std::unique_ptr<FILE, decltype(&std::fclose)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
  GV_CHECK(f != nullptr, IOError, "read_file_bytes: cannot open {}: {}", path, std::strerror(errno));
  std::vector<uint8_t> bytes;
  uint8_t chunk[1 << 16];
  size_t got;
  while ((got = std::fread(chunk, 1, sizeof chunk, f.get())) > 0) bytes.insert(bytes.end(), chunk, chunk + got);
  GV_CHECK(!std::ferror(f.get()), IOError, "read_file_bytes: cannot read {}: {}", path, std::strerror(errno));
  return bytes;
}

Image read_image(const std::string& path) {
  const std::vector<uint8_t> bytes = read_file_bytes(path);
  return decode_image(bytes.data(), bytes.size(), path);
}

// ---- encoding -----------------------------------------------------------------------------------
std::vector<uint8_t> encode_png(const Image& img, const std::string& name) {
  GV_CHECK(img.channels >= 1 && img.channels <= 4 && img.height > 0 && img.width > 0 &&
               img.height <= 0x7fffffff && img.width <= 0x7fffffff &&
               img.pixels.size() == (size_t)(img.height * img.width * img.channels),
           ValueError, "encode_png: {}: cannot encode an image of {}x{}x{} with {} bytes", name,
           img.height, img.width, img.channels, img.pixels.size());
  std::vector<uint8_t> out;
  PngWriteState st{};
  st.pixels = img.pixels.data();
  st.width = (uint32_t)img.width;
  st.height = (uint32_t)img.height;
  st.channels = (int)img.channels;
  st.out = &out;
  if (!png_write_c(&st)) GV_THROW(IOError, "encode_png: {}: {} (libpng)", name, st.message);
  return out;
}

void write_png(const std::string& path, const Image& img) {
  const std::vector<uint8_t> bytes = encode_png(img, path);
  std::unique_ptr<FILE, decltype(&std::fclose)> f(std::fopen(path.c_str(), "wb"), &std::fclose);
  GV_CHECK(f != nullptr, IOError, "write_png: cannot create {}: {}", path, std::strerror(errno));
  const bool ok = std::fwrite(bytes.data(), 1, bytes.size(), f.get()) == bytes.size();
  const bool closed = std::fclose(f.release()) == 0;
  GV_CHECK(ok && closed, IOError, "write_png: cannot write {}: {}", path, std::strerror(errno));
}

void write_png(const std::string& path, const Tensor& chw) { write_png(path, tensor_to_image(chw)); }

// ---- conversions --------------------------------------------------------------------------------
Image convert_channels(const Image& img, int64_t channels) {
  GV_CHECK(channels == 1 || channels == 3, ValueError,
           "convert_channels: can convert to 1 (gray) or 3 (RGB) channels, not {}", channels);
  const bool color = img.channels >= 3;
  if ((channels == 3 && img.channels == 3) || (channels == 1 && img.channels == 1)) return img;
  Image out(img.height, img.width, channels);
  const int64_t n = img.height * img.width, c = img.channels;
  const uint8_t* in = img.pixels.data();
  for (int64_t i = 0; i < n; ++i) {
    const uint8_t* p = in + i * c;
    if (channels == 3) {
      for (int k = 0; k < 3; ++k) out.pixels[3 * i + k] = p[color ? k : 0];
    } else {  // luma = 0.299 R + 0.587 G + 0.114 B, rounded to nearest
      out.pixels[i] = color ? (uint8_t)((p[0] * 299 + p[1] * 587 + p[2] * 114 + 500) / 1000) : p[0];
    }
  }
  return out;
}

Tensor image_to_tensor(const Image& img) {
  Tensor t = Tensor::empty({img.channels, img.height, img.width}, DType::f32);
  float* out = t.data<float>();
  const int64_t hw = img.height * img.width;
  for (int64_t i = 0; i < hw; ++i)
    for (int64_t c = 0; c < img.channels; ++c) out[c * hw + i] = img.pixels[i * img.channels + c] / 255.0f;
  return t;
}

Image tensor_to_image(const Tensor& chw) {
  GV_CHECK(chw.defined() && chw.dim() == 3 && chw.size(0) >= 1 && chw.size(0) <= 4 && is_floating(chw.dtype()),
           ValueError, "tensor_to_image: expected a float tensor (C,H,W) with C in 1..4, got {}",
           chw.defined() ? chw.str() : "an undefined tensor");
  const Tensor t = chw.to(Device::cpu()).to(DType::f64).contiguous();
  const double* in = t.data<double>();
  Image img(chw.size(1), chw.size(2), chw.size(0));
  const int64_t hw = img.height * img.width;
  for (int64_t c = 0; c < img.channels; ++c)
    for (int64_t i = 0; i < hw; ++i) {
      const double v = std::isnan(in[c * hw + i]) ? 0.0 : std::clamp(in[c * hw + i], 0.0, 1.0);
      img.pixels[i * img.channels + c] = (uint8_t)std::lround(v * 255.0);
    }
  return img;
}

// ---- resizing -----------------------------------------------------------------------------------
namespace {

// The input taps of one output index along an axis: out[i] = sum_k weight[k] * in[first + k].
struct Taps {
  int64_t first;
  std::vector<float> weight;
};

// Area averaging: output i covers [i s, (i+1) s) of the input (s = n_in / n_out); input pixel j
// weighs the length of its overlap with that interval, divided by s.
std::vector<Taps> area_taps(int64_t n_in, int64_t n_out) {
  std::vector<Taps> taps(n_out);
  const double s = (double)n_in / n_out;
  for (int64_t i = 0; i < n_out; ++i) {
    const double lo = i * s, hi = std::min((i + 1) * s, (double)n_in);
    const int64_t j0 = (int64_t)std::floor(lo), j1 = std::min((int64_t)std::ceil(hi), n_in);
    taps[i].first = j0;
    for (int64_t j = j0; j < j1; ++j)
      taps[i].weight.push_back((float)((std::min(hi, j + 1.0) - std::max(lo, (double)j)) / s));
  }
  return taps;
}

// Bilinear with half-pixel centres: x = (i + 0.5) s - 0.5, clamped to [0, n_in - 1].
std::vector<Taps> bilinear_taps(int64_t n_in, int64_t n_out) {
  std::vector<Taps> taps(n_out);
  const double s = (double)n_in / n_out;
  for (int64_t i = 0; i < n_out; ++i) {
    const double x = std::clamp((i + 0.5) * s - 0.5, 0.0, (double)(n_in - 1));
    const int64_t j = std::min((int64_t)x, n_in - 1);
    const double t = x - j;
    taps[i].first = j;
    taps[i].weight = j + 1 < n_in ? std::vector<float>{(float)(1 - t), (float)t} : std::vector<float>{1.0f};
  }
  return taps;
}

std::vector<Taps> make_taps(int64_t n_in, int64_t n_out, ResizeFilter filter) {
  return filter == ResizeFilter::area ? area_taps(n_in, n_out) : bilinear_taps(n_in, n_out);
}

}  // namespace

Image resize(const Image& img, int64_t height, int64_t width, ResizeFilter filter) {
  GV_CHECK(height > 0 && width > 0 && img.height > 0 && img.width > 0, ValueError,
           "resize: cannot resize {}x{} pixels to {}x{}", img.height, img.width, height, width);
  const int64_t c = img.channels;
  const std::vector<Taps> tx = make_taps(img.width, width, filter), ty = make_taps(img.height, height, filter);
  // rows first: tmp is (img.height, width, c)
  std::vector<float> tmp((size_t)(img.height * width * c), 0.0f);
  for (int64_t y = 0; y < img.height; ++y)
    for (int64_t x = 0; x < width; ++x)
      for (size_t k = 0; k < tx[x].weight.size(); ++k)
        for (int64_t ch = 0; ch < c; ++ch)
          tmp[(y * width + x) * c + ch] += tx[x].weight[k] * img.at(y, tx[x].first + (int64_t)k, ch);
  Image out(height, width, c);
  for (int64_t y = 0; y < height; ++y)
    for (int64_t i = 0; i < width * c; ++i) {
      float v = 0;
      for (size_t k = 0; k < ty[y].weight.size(); ++k) v += ty[y].weight[k] * tmp[(ty[y].first + (int64_t)k) * width * c + i];
      out.pixels[y * width * c + i] = (uint8_t)std::clamp(std::floor(v + 0.5f), 0.0f, 255.0f);
    }
  return out;
}

Image center_crop(const Image& img, int64_t height, int64_t width) {
  GV_CHECK(height > 0 && width > 0 && height <= img.height && width <= img.width, ValueError,
           "center_crop: cannot crop {}x{} out of an image of {}x{}", height, width, img.height, img.width);
  const int64_t top = (int64_t)std::nearbyint((img.height - height) / 2.0);  // halves to even
  const int64_t left = (int64_t)std::nearbyint((img.width - width) / 2.0);
  Image out(height, width, img.channels);
  const size_t row = (size_t)(width * img.channels);
  for (int64_t y = 0; y < height; ++y)
    std::memcpy(&out.pixels[y * row], &img.pixels[((top + y) * img.width + left) * img.channels], row);
  return out;
}

Image resize_and_crop(const Image& img, int64_t size, ResizeFilter filter) {
  GV_CHECK(size > 0 && img.height > 0 && img.width > 0, ValueError,
           "resize_and_crop: cannot make {}x{} pixels into {}x{}", img.height, img.width, size, size);
  int64_t h = size, w = size;  // shorter side -> size, longer -> floor(size * long / short)
  if (img.width <= img.height) h = size * img.height / img.width;
  else w = size * img.width / img.height;
  const Image scaled = (h == img.height && w == img.width) ? img : resize(img, h, w, filter);
  return center_crop(scaled, size, size);
}

// ---- grids --------------------------------------------------------------------------------------
Tensor make_grid(const Tensor& images, int64_t nrow, int64_t padding, double pad_value) {
  GV_CHECK(images.defined() && images.dim() == 4 && is_floating(images.dtype()) && images.size(0) > 0,
           ValueError, "make_grid: expected a float tensor (N,C,H,W) with N >= 1, got {}",
           images.defined() ? images.str() : "an undefined tensor");
  GV_CHECK(nrow >= 1 && padding >= 0, ValueError, "make_grid: needs nrow >= 1 and padding >= 0, got {} and {}",
           nrow, padding);
  const Tensor x = images.to(Device::cpu()).to(DType::f32).contiguous();
  const int64_t n = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
  const int64_t cols = std::min(nrow, n), rows = (n + cols - 1) / cols;
  const int64_t gh = rows * (h + padding) + padding, gw = cols * (w + padding) + padding;
  Tensor grid = Tensor::full({c, gh, gw}, pad_value, DType::f32);
  const float* in = x.data<float>();
  float* out = grid.data<float>();
  for (int64_t k = 0; k < n; ++k) {
    const int64_t top = (k / cols) * (h + padding) + padding, left = (k % cols) * (w + padding) + padding;
    for (int64_t ch = 0; ch < c; ++ch)
      for (int64_t y = 0; y < h; ++y)
        std::memcpy(out + (ch * gh + top + y) * gw + left, in + ((k * c + ch) * h + y) * w, sizeof(float) * w);
  }
  return grid;
}

// ---- image folders ------------------------------------------------------------------------------
void store_image(const Image& img, int64_t channels, int64_t size, float* slot, const std::string& name) {
  GV_CHECK(img.height == size && img.width == size, IOError,
           "{}: image of {}x{} pixels: expected {}x{}", name, img.height, img.width, size, size);
  const Image conv = img.channels == channels ? Image() : convert_channels(img, channels);
  const Image& src = img.channels == channels ? img : conv;
  const int64_t hw = size * size;
  for (int64_t i = 0; i < hw; ++i)
    for (int64_t c = 0; c < channels; ++c) slot[c * hw + i] = src.pixels[i * channels + c] * (1.0f / 255.0f);
}

namespace {

bool has_image_extension(const fs::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char ch) { return (char)std::tolower(ch); });
  return ext == ".png" || ext == ".jpg" || ext == ".jpeg";
}

// An image file and the top-level subfolder of `dir` it lies in ("" when directly in dir).
struct FolderEntry {
  std::string path, top;
  bool operator<(const FolderEntry& o) const { return path < o.path; }
};

// Every image file under dir, sorted by path. The walk is depth-first, so an entry's top-level
// folder is the last folder met at depth 0.
std::vector<FolderEntry> list_folder(const std::string& dir) {
  std::error_code ec;
  GV_CHECK(fs::is_directory(dir, ec), IOError, "load_image_folder: {} is not a folder (missing?)", dir);
  std::vector<FolderEntry> entries;
  std::string top;
  fs::recursive_directory_iterator it(dir, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    std::error_code skip;  // a broken link is skipped, not an error
    if (it.depth() == 0) top = it->is_directory(skip) ? it->path().filename().string() : "";
    if (it->is_regular_file(skip) && has_image_extension(it->path()))
      entries.push_back({it->path().string(), top});
  }
  GV_CHECK(!ec, IOError, "load_image_folder: cannot list {}: {}", dir, ec.message());
  std::sort(entries.begin(), entries.end());
  return entries;
}

// Labels = index of each entry's top-level folder among the sorted folder names; fills classes.
std::vector<int64_t> folder_labels(const std::string& dir, const std::vector<FolderEntry>& entries,
                                   std::vector<std::string>& classes) {
  std::map<std::string, int64_t> index;
  for (const FolderEntry& e : entries) index[e.top] = 0;
  GV_CHECK(!(index.count("") && index.size() > 1), IOError,
           "load_image_folder: {} holds images both directly and in subfolders: expected either "
           "class subfolders or images only",
           dir);
  for (auto& [name, k] : index) {
    k = (int64_t)classes.size();
    classes.push_back(name);
  }
  std::vector<int64_t> labels;
  for (const FolderEntry& e : entries) labels.push_back(index.at(e.top));
  return labels;
}

// Decodes files[i] into slot i of out (N,C,S,S); runs across OpenMP threads, each with its own
// decoder. An error stops the work; the one of the first failing file is rethrown.
void decode_folder(const std::vector<std::string>& files, const ImageFolderOptions& o, Tensor& out) {
  const int64_t n = (int64_t)files.size(), c = out.size(1), per = c * o.size * o.size;
  float* base = out.data<float>();
  std::exception_ptr error;
  int64_t error_at = n;
#pragma omp parallel
  {
    ImageDecoder decoder;
#pragma omp for schedule(dynamic, 16)
    for (int64_t i = 0; i < n; ++i) {
      try {
        const std::vector<uint8_t> bytes = read_file_bytes(files[i]);
        Image img = decoder.decode(bytes.data(), bytes.size(), files[i]);
        if (o.resize) img = resize_and_crop(img, o.size, o.filter);
        store_image(img, c, o.size, base + i * per, files[i]);
      } catch (...) {
#pragma omp critical(gv_decode_folder)
        if (i < error_at) {
          error_at = i;
          error = std::current_exception();
        }
      }
    }
  }
  if (error) std::rethrow_exception(error);
}

}  // namespace

std::vector<std::string> list_image_files(const std::string& dir) {
  std::vector<std::string> files;
  for (FolderEntry& e : list_folder(dir)) files.push_back(std::move(e.path));
  return files;
}

ImageFolder load_image_folder(const std::string& dir, const ImageFolderOptions& options) {
  GV_CHECK(options.size > 0 && options.limit >= -1, ValueError,
           "load_image_folder: needs size > 0 and limit >= -1, got size {} and limit {}", options.size,
           options.limit);
  const std::vector<FolderEntry> entries = list_folder(dir);
  GV_CHECK(!entries.empty(), IOError,
           "load_image_folder: {} holds no images: expected .png, .jpg or .jpeg files in it or in its subfolders",
           dir);
  ImageFolder folder;
  std::vector<int64_t> labels = folder_labels(dir, entries, folder.classes);
  for (const FolderEntry& e : entries) folder.files.push_back(e.path);
  if (options.limit >= 0 && options.limit < (int64_t)folder.files.size()) {
    folder.files.resize(options.limit);
    labels.resize(options.limit);
  }
  const int64_t n = (int64_t)folder.files.size(), c = options.grayscale ? 1 : 3;
  folder.images = Tensor::empty({n, c, options.size, options.size}, DType::f32);
  decode_folder(folder.files, options, folder.images);
  folder.labels = Tensor::from_vector(labels, {n});
  return folder;
}

}  // namespace gv::data
