// datasets.h: the data sets the apps train and evaluate on, chosen by name, and the pixel
// preprocessing that matches each likelihood family:
//   mnist           IDX files: --data-dir, else $GENVAE_MNIST_DIR, else ../shared/data/mnist
//   fashion-mnist   IDX files: --data-dir, else $GENVAE_FASHION_MNIST_DIR, else Debian's
//                   dataset-fashion-mnist (/usr/share/datasets/fashion-mnist)
//   cifar10         JPEG archive or folder: --data-dir, else $GENVAE_CIFAR10, else
//                   ../shared/data/cifar10/cifar10-jpg.tar.gz
//   folder:PATH     every image under PATH, resized to --image-size; PATH/train and PATH/test
//                   when both exist, else a fixed 10% of the images held out as the test set
#pragma once
#include <cstdint>
#include <string>

#include "engine/random.h"
#include "nn/data/loader.h"

namespace gv::app {

struct DataSpec {
  std::string name = "mnist";  // see above
  std::string dir;             // overrides the default location ("" = default)
  int64_t image_size = 32;     // folder: each image becomes size x size
  bool grayscale = false;      // folder: one channel instead of RGB
  int64_t limit = -1;          // training examples (-1: all); a fixed random subset for cifar10/folder
  int64_t test_limit = -1;     // test examples (-1: all)
  std::string cache_dir;       // cifar10: where to cache the decoded images ("" = no cache)
  bool with_train = true;      // false: load only the test split (evaluation)
};

struct LoadedData {
  data::Dataset train, test;  // images float32 (N, C, H, W) in [0, 1]; train empty without with_train
  Shape shape;                // (C, H, W)
  std::string source;         // the file or folder they came from
  std::string train_source, test_source;  // each split's file or folder, for messages
};

// Whether `name` is one of the names above (for the command line's check).
bool valid_data_name(const std::string& name);
std::string data_names_help();
// Where spec's data is read from: the file or folder (not checked to exist).
std::string resolve_data_path(const DataSpec& spec);
// Loads both splits; IOError naming the path and the flag or variable to set when it is missing.
// Also refuses splits whose images differ in shape, naming both files and both shapes, and an
// empty test split.
LoadedData load_data(const DataSpec& spec);
// IOError naming `what` (a checkpoint or run), both shapes and the data's files when d's image
// shape is not `expected` (the shape the model was trained on).
void check_data_shape(const LoadedData& d, const Shape& expected, const std::string& what);

// The preprocessing that goes with each likelihood (documented in --help by preprocessing_help):
//   bernoulli         binary: a fresh binarization x ~ Bernoulli(pixel) for every training batch;
//                     the test set binarized once with a fixed seed (kTestBinarizeSeed)
//   gaussian          [0, 1] as is
//   gaussian-learned  dequantized, (255 x + u) / 256 with u ~ U[0, 1): fresh noise per training
//                     batch, fixed noise for the test set
//   categorical256    [0, 1] on the 8-bit grid k / 255
//   logistic-mixture  [-1, 1] (2 x - 1) on the 8-bit grid
enum class PixelTransform { binarize, identity, dequantize, quantize8, to_signed };

inline constexpr uint64_t kTestBinarizeSeed = 20170613;  // fixed: every run sees the same test set

class Preprocessing {
 public:
  explicit Preprocessing(PixelTransform kind) : kind_(kind) {}
  static Preprocessing for_likelihood(const std::string& likelihood);  // ValueError when unknown
  PixelTransform kind() const { return kind_; }
  std::string describe() const;

  Tensor train_batch(const Tensor& x, Generator& g) const;  // x in [0,1]; may draw from g
  Tensor eval_set(const Tensor& x) const;                   // deterministic (fixed seed)
  Tensor to_display(const Tensor& x) const;                 // back to [0, 1] for PNGs

 private:
  PixelTransform kind_;
};

std::string preprocessing_help();

}  // namespace gv::app
