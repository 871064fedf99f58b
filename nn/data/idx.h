// idx.h: the IDX file format (the format of MNIST and Fashion-MNIST) and the MNIST loader built
// on it. read_idx reads a plain or gzip-compressed IDX file of unsigned bytes (the only type the
// MNIST family uses); load_mnist turns a split's image and label files into tensors;
// default_mnist_dir says where the data is looked for.
//
// Every problem with a file (missing, wrong magic, unsupported type, truncated, trailing bytes,
// absurd dims, corrupt gzip stream) throws gv::IOError naming the file; bad arguments throw
// gv::ValueError. Nothing is read past what the header promises, and sizes are capped at
// kMaxIdxElements, so a hostile header cannot make the reader allocate without bound.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace gv::data {

// Largest number of elements read_idx accepts (2^31: 2 GiB of bytes).
inline constexpr int64_t kMaxIdxElements = int64_t(1) << 31;

// An IDX array: its dims as stored (big-endian in the file) and its bytes in row-major order.
struct IdxArray {
  std::vector<int64_t> dims;
  std::vector<uint8_t> bytes;  // shape_numel(dims) of them
};

// Reads an IDX file of unsigned bytes (type code 0x08). A file that starts with the gzip magic
// bytes 1f 8b is decompressed on the fly, whatever its name. With expected_rank >= 0 the magic
// number must be exactly 0x00000800 + expected_rank (0x00000801 for labels, 0x00000803 for
// images); with -1 any number of dims is accepted.
IdxArray read_idx(const std::string& path, int expected_rank = -1);

// One split of MNIST (or of a data set in the same files, such as Fashion-MNIST).
struct MnistSplit {
  Tensor images;  // float32 (N, 1, rows, cols), pixel bytes scaled to [0, 1]
  Tensor labels;  // int64 (N), the label bytes as they are (0..9 for MNIST)
  std::string images_path, labels_path;  // the files they came from
};

// Loads {train,t10k}-images-idx3-ubyte and {train,t10k}-labels-idx1-ubyte from dir, each either
// plain or with a .gz suffix. Checks that the two files hold the same number of items. With
// limit >= 0 only the first min(limit, N) items are returned; -1 returns them all. Every label in
// the file must be below num_classes (IOError naming the file, the index and the value).
MnistSplit load_mnist(const std::string& dir, bool train, int64_t limit = -1, int64_t num_classes = 10);

// Where the MNIST files are looked for: $GENVAE_MNIST_DIR when set and not empty; else
// ../shared/data/mnist from the current directory when it exists; else ../shared/data/mnist from
// the executable's folder or one of its first few parents (so a test run from the build folder
// finds it); else "../shared/data/mnist", for error messages to name.
std::string default_mnist_dir();

}  // namespace gv::data
