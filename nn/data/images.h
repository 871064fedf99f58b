// images.h: image files and image folders. Decodes PNG (libpng) and JPEG (TurboJPEG) from memory
// or from files, recognised by their magic bytes, into 8-bit images in HWC order; resizes them
// (area averaging or bilinear) and centre-crops them; writes PNG files (for sample grids, with
// make_grid); and loads a folder of images, labelled by subfolder, into one float tensor.
//
// Every problem with a file or a buffer (missing, truncated, corrupt, an unsupported format, the
// wrong size where a fixed one is required, an empty folder) throws gv::IOError naming the file
// (or the name the caller gave the buffer) and what was expected; bad arguments throw ValueError.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace gv::data {

// An 8-bit image: height x width pixels of `channels` bytes each (1 gray, 2 gray+alpha, 3 RGB,
// 4 RGBA), rows top to bottom, stored row-major in HWC order.
struct Image {
  int64_t height = 0, width = 0, channels = 0;
  std::vector<uint8_t> pixels;  // height * width * channels bytes

  Image() = default;
  Image(int64_t h, int64_t w, int64_t c);  // zero-filled
  uint8_t& at(int64_t y, int64_t x, int64_t c) { return pixels[(size_t)((y * width + x) * channels + c)]; }
  uint8_t at(int64_t y, int64_t x, int64_t c) const {
    return pixels[(size_t)((y * width + x) * channels + c)];
  }
};

// Decoders refuse images with more pixels than this (2^28), before allocating them.
inline constexpr int64_t kMaxImagePixels = int64_t(1) << 28;

enum class ImageFormat { unknown, png, jpeg };
// The format announced by the first bytes: PNG's 8-byte signature or JPEG's FF D8 FF.
ImageFormat detect_image_format(const uint8_t* data, size_t size);

// Decoding from memory; `name` is what error messages call the buffer (a file or archive entry).
// PNG: 1-, 2- and 4-bit gray are expanded to 8 bits, 16-bit samples are scaled to 8 bits
// (round(v / 257)), a palette becomes RGB (RGBA when it has transparency), and the channels are
// otherwise kept as stored (gray, gray+alpha, RGB, RGBA). JPEG: gray stays 1 channel, colour
// becomes RGB. Any libpng or TurboJPEG error or warning (a truncated file included) is an IOError.
Image decode_png(const uint8_t* data, size_t size, const std::string& name = "<memory>");
Image decode_jpeg(const uint8_t* data, size_t size, const std::string& name = "<memory>");
Image decode_image(const uint8_t* data, size_t size, const std::string& name = "<memory>");

// The same decoding with a TurboJPEG handle kept between calls: one per thread in a loop over
// many files (decode_image and decode_jpeg make a fresh one each time). Not thread-safe.
class ImageDecoder {
 public:
  ImageDecoder() = default;
  ~ImageDecoder();
  ImageDecoder(const ImageDecoder&) = delete;
  ImageDecoder& operator=(const ImageDecoder&) = delete;
  Image decode(const uint8_t* data, size_t size, const std::string& name);
  Image decode_jpeg(const uint8_t* data, size_t size, const std::string& name);

 private:
  void* jpeg_ = nullptr;  // tjhandle, made on first use
};

std::vector<uint8_t> read_file_bytes(const std::string& path);  // the whole file
Image read_image(const std::string& path);                      // read_file_bytes + decode_image

// PNG encoding of an 8-bit image (1 to 4 channels); write_png writes it to `path`.
std::vector<uint8_t> encode_png(const Image& img, const std::string& name = "<memory>");
void write_png(const std::string& path, const Image& img);
// chw: a float tensor (C,H,W) with C in 1..4 and values in [0,1] (clamped, then round(v * 255)).
void write_png(const std::string& path, const Tensor& chw);

// ---- conversions --------------------------------------------------------------------------------
// To 1 channel (gray; colour as luma 0.299 R + 0.587 G + 0.114 B, rounded) or 3 (RGB; gray
// repeated). Alpha is dropped, as PIL's convert("RGB") and convert("L") do.
Image convert_channels(const Image& img, int64_t channels);
Tensor image_to_tensor(const Image& img);  // float32 (C,H,W), bytes / 255
Image tensor_to_image(const Tensor& chw);   // float (C,H,W) in [0,1] -> round(clamp(v) * 255)

// ---- geometry -----------------------------------------------------------------------------------
enum class ResizeFilter {
  area,      // each output pixel averages the input area it covers (fractional edges weighted)
  bilinear,  // half-pixel centres (align_corners = false), edges clamped; no antialiasing
};
Image resize(const Image& img, int64_t height, int64_t width, ResizeFilter filter = ResizeFilter::area);
// The height x width window at the centre: top = round((H - height) / 2), halves to even, as
// torchvision's CenterCrop. Needs height <= H and width <= W.
Image center_crop(const Image& img, int64_t height, int64_t width);
// torchvision's Resize(size) then CenterCrop(size): the shorter side becomes `size`, the longer
// floor(size * long / short), then the centre size x size square is kept.
Image resize_and_crop(const Image& img, int64_t size, ResizeFilter filter = ResizeFilter::area);

// Sample grids: images (N,C,H,W) laid out in rows of `nrow`, `padding` pixels of pad_value
// around and between them, as torchvision's make_grid (without its 1 -> 3 channel step).
// Returns float32 (C, rows * (H + padding) + padding, min(nrow, N) * (W + padding) + padding).
Tensor make_grid(const Tensor& images, int64_t nrow = 8, int64_t padding = 2, double pad_value = 0.0);

// ---- image folders ------------------------------------------------------------------------------
struct ImageFolderOptions {
  int64_t size = 32;        // every image becomes size x size
  bool grayscale = false;   // 1 channel instead of 3
  bool resize = true;       // resize_and_crop to `size`; false: images must already be size x size
  ResizeFilter filter = ResizeFilter::area;
  int64_t limit = -1;       // the first `limit` files in sorted order; -1: all of them
};

struct ImageFolder {
  Tensor images;                     // float32 (N, C, size, size) in [0,1]
  Tensor labels;                     // int64 (N): index into `classes`
  std::vector<std::string> classes;  // sorted top-level subfolder names, or {""} without any
  std::vector<std::string> files;    // the N files, in order
};

// Every .png, .jpg and .jpeg file (any case) under `dir`, recursively, sorted by path. The label
// of a file is the index of its top-level subfolder among the sorted subfolders that hold images;
// when the images lie directly in `dir` (and no subfolder holds any) every label is 0. Files are
// decoded in parallel (OpenMP). A missing folder, a folder without images, a folder that mixes
// images at its top level with class subfolders, and any bad image are IOErrors.
std::vector<std::string> list_image_files(const std::string& dir);
ImageFolder load_image_folder(const std::string& dir, const ImageFolderOptions& options = {});

// Writes an already (C,size,size)-shaped image into slot i of a (N,C,size,size) float32 tensor:
// checks the size (IOError naming `name` when it differs) and converts the channels. For loaders.
void store_image(const Image& img, int64_t channels, int64_t size, float* slot, const std::string& name);

}  // namespace gv::data
