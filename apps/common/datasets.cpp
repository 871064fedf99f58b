// datasets.cpp: loading data sets by name and the per-likelihood pixel preprocessing (datasets.h).
#include "apps/common/datasets.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>

#include <fmt/format.h>

#include "engine/error.h"
#include "engine/ops.h"
#include "nn/data/cifar10.h"
#include "nn/data/idx.h"
#include "nn/data/images.h"

namespace gv::app {
namespace fs = std::filesystem;

namespace {

constexpr const char* kFolderPrefix = "folder:";
constexpr uint64_t kSubsetSeed = 7;  // the fixed random subsets and holdouts of cifar10 and folders

bool is_folder_name(const std::string& name) { return name.rfind(kFolderPrefix, 0) == 0; }

// (C, H, W) of images (N, C, H, W)
Shape item_shape(const Tensor& images) { return Shape(images.shape().begin() + 1, images.shape().end()); }

std::string env_or(const char* var, const std::string& fallback) {
  const char* v = std::getenv(var);
  return v && *v ? std::string(v) : fallback;
}

// The `limit` items of a fixed random subset, in data set order (all when limit < 0 or >= N).
data::Dataset random_subset(const data::Dataset& ds, int64_t limit) {
  if (limit < 0 || limit >= ds.size()) return ds;
  return data::split_holdout(ds, limit, kSubsetSeed).second;
}

LoadedData load_idx_pair(const std::string& dir, const DataSpec& spec) {
  auto test = data::load_mnist(dir, false, spec.test_limit);
  LoadedData d;
  d.test = {test.images, test.labels}, d.test_source = test.images_path;
  if (spec.with_train) {
    auto train = data::load_mnist(dir, true, spec.limit);
    d.train = {train.images, train.labels}, d.train_source = train.images_path;
  }
  d.shape = item_shape(test.images), d.source = dir;
  return d;
}

LoadedData load_cifar(const std::string& path, const DataSpec& spec) {
  auto test = data::load_cifar10(path, false, -1, spec.cache_dir);
  data::Dataset tr, te{test.images, test.labels};
  if (spec.with_train) {
    auto train = data::load_cifar10(path, true, -1, spec.cache_dir);
    tr = random_subset({train.images, train.labels}, spec.limit);
  }
  return LoadedData{tr, random_subset(te, spec.test_limit), {3, 32, 32}, path, path + ":train/", path + ":test/"};
}

LoadedData load_folder(const std::string& dir, const DataSpec& spec) {
  data::ImageFolderOptions opt;
  opt.size = spec.image_size;
  opt.grayscale = spec.grayscale;
  auto as_dataset = [&](const std::string& d) {
    auto f = data::load_image_folder(d, opt);
    return data::Dataset{f.images, f.labels};
  };
  data::Dataset train, test;
  std::string train_source = dir, test_source = dir + " (held out)";
  if (fs::is_directory(fs::path(dir) / "train") && fs::is_directory(fs::path(dir) / "test")) {
    train_source = (fs::path(dir) / "train").string(), test_source = (fs::path(dir) / "test").string();
    train = as_dataset(train_source);
    test = as_dataset(test_source);
  } else {
    data::Dataset all = as_dataset(dir);
    GV_CHECK(all.size() >= 2, IOError, "folder:{}: {} image(s); need at least 2 to hold out a test set", dir,
             all.size());
    auto [tr, te] = data::split_holdout(all, std::max<int64_t>(1, all.size() / 10), kSubsetSeed);
    train = tr, test = te;
  }
  Shape shape = item_shape(train.images);
  return LoadedData{random_subset(train, spec.limit), random_subset(test, spec.test_limit), shape, dir, train_source,
                    test_source};
}

}  // namespace

bool valid_data_name(const std::string& name) {
  if (is_folder_name(name)) return name.size() > std::string(kFolderPrefix).size();
  return name == "mnist" || name == "fashion-mnist" || name == "cifar10";
}

std::string data_names_help() { return "mnist, fashion-mnist, cifar10, folder:PATH"; }

std::string resolve_data_path(const DataSpec& spec) {
  if (is_folder_name(spec.name)) return spec.name.substr(std::string(kFolderPrefix).size());
  if (!spec.dir.empty()) return spec.dir;
  if (spec.name == "mnist") return data::default_mnist_dir();
  if (spec.name == "fashion-mnist") return env_or("GENVAE_FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist");
  if (spec.name == "cifar10") return data::default_cifar10_path();
  GV_THROW(ValueError, "--data {}: unknown data set (one of {})", spec.name, data_names_help());
}

LoadedData load_data(const DataSpec& spec) {
  GV_CHECK(valid_data_name(spec.name), ValueError, "--data {}: unknown data set (one of {})", spec.name,
           data_names_help());
  std::string path = resolve_data_path(spec);
  const char* hint = spec.name == "mnist"           ? "--data-dir or GENVAE_MNIST_DIR"
                     : spec.name == "fashion-mnist" ? "--data-dir or GENVAE_FASHION_MNIST_DIR (Debian: "
                                                      "apt-get install dataset-fashion-mnist)"
                     : spec.name == "cifar10"       ? "--data-dir or GENVAE_CIFAR10"
                                                    : "the PATH of folder:PATH";
  LoadedData d;
  try {
    if (is_folder_name(spec.name)) d = load_folder(path, spec);
    else if (spec.name == "cifar10") d = load_cifar(path, spec);
    else d = load_idx_pair(path, spec);
  } catch (const IOError& e) {
    throw IOError(fmt::format("{}\n  (data set {} read from {}; set {})", e.what(), spec.name, path, hint));
  }
  if (d.train.size() > 0 && d.test.size() > 0) {
    const Shape a = item_shape(d.train.images), b = item_shape(d.test.images);
    GV_CHECK(a == b, IOError,
             "the training and test splits disagree: {} holds images of shape {} but {} holds {} (data set {})",
             d.train_source, shape_str(a), d.test_source, shape_str(b), spec.name);
  }
  GV_CHECK(d.test.size() > 0, IOError, "{}: the test split holds no images (--test-limit {})", d.test_source,
           spec.test_limit);
  return d;
}

void check_data_shape(const LoadedData& d, const Shape& expected, const std::string& what) {
  GV_CHECK(d.shape == expected, IOError,
           "the data does not fit {}: it was trained on images of shape {}, but {} holds {}{}", what,
           shape_str(expected), d.test_source, shape_str(d.shape),
           d.train_source.empty() ? std::string() : " (and " + d.train_source + ")");
}

// ---- preprocessing --------------------------------------------------------------------------

Preprocessing Preprocessing::for_likelihood(const std::string& likelihood) {
  if (likelihood == "bernoulli") return Preprocessing(PixelTransform::binarize);
  if (likelihood == "gaussian") return Preprocessing(PixelTransform::identity);
  if (likelihood == "gaussian-learned") return Preprocessing(PixelTransform::dequantize);
  if (likelihood == "categorical256") return Preprocessing(PixelTransform::quantize8);
  if (likelihood == "logistic-mixture" || likelihood == "logistic-mixture-rgb")
    return Preprocessing(PixelTransform::to_signed);
  GV_THROW(ValueError, "no preprocessing for likelihood '{}'", likelihood);
}

std::string Preprocessing::describe() const {
  switch (kind_) {
    case PixelTransform::binarize: return "dynamic binarization (test set binarized with a fixed seed)";
    case PixelTransform::identity: return "[0,1] as is";
    case PixelTransform::dequantize: return "uniform dequantization (255x+u)/256 (test set: fixed noise)";
    case PixelTransform::quantize8: return "[0,1] on the 8-bit grid k/255";
    case PixelTransform::to_signed: return "[-1,1] (2x-1) on the 8-bit grid";
  }
  return "?";
}

namespace {
// round(255 x) / 255 for every element: x on the 8-bit grid.
Tensor quantize8(const Tensor& x) {
  Tensor y = x.to(DType::f32).clone();
  float* p = y.data<float>();
  for (int64_t i = 0; i < y.numel(); ++i) p[i] = std::nearbyint(std::clamp(p[i], 0.0f, 1.0f) * 255.0f) / 255.0f;
  return y;
}
}  // namespace

Tensor Preprocessing::train_batch(const Tensor& x, Generator& g) const {
  switch (kind_) {
    case PixelTransform::binarize: return data::binarize_dynamic(x, g);
    case PixelTransform::identity: return x;
    case PixelTransform::dequantize: return data::dequantize_uniform(x, g);
    case PixelTransform::quantize8: return quantize8(x);
    case PixelTransform::to_signed: return data::to_signed(quantize8(x));
  }
  return x;
}

Tensor Preprocessing::eval_set(const Tensor& x) const {
  Generator g(kTestBinarizeSeed);
  return train_batch(x, g);
}

Tensor Preprocessing::to_display(const Tensor& x) const {
  if (kind_ == PixelTransform::to_signed) return add(mul(x, 0.5), 0.5);
  return x;
}

std::string preprocessing_help() {
  return "Pixels are preprocessed to match the likelihood:\n"
         "  bernoulli         dynamic binarization: a fresh Bernoulli(pixel) draw every training batch;\n"
         "                    the test set is binarized once with a fixed seed\n"
         "  gaussian          [0,1] as is\n"
         "  gaussian-learned  dequantized, (255x + u)/256 with u ~ U[0,1): fresh noise every batch,\n"
         "                    fixed noise for the test set\n"
         "  categorical256    [0,1] 8-bit values k/255\n"
         "  logistic-mixture  [-1,1] (2x - 1) 8-bit values\n";
}

}  // namespace gv::app
