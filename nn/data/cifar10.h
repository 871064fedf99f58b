// cifar10.h: the CIFAR-10 loader. Reads the JPEG copy of CIFAR-10 (a tar.gz of
// train/<class>/NNNN.jpg and test/<class>/NNNN.jpg) straight from the archive with libarchive,
// streaming, without unpacking it to disk; or the same layout unpacked into a folder. Images are
// decoded in parallel into one float tensor; an optional binary cache makes later loads fast.
//
// Problems with the data (a missing or corrupt archive, an entry that is not a 32x32 RGB JPEG, an
// unknown class folder, no images at all) throw gv::IOError naming the archive and the entry.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace gv::data {

// The 10 class names in sorted order; a label is the position of its folder's name here.
const std::vector<std::string>& cifar10_classes();

struct Cifar10Split {
  Tensor images;  // float32 (N, 3, 32, 32), pixel bytes scaled to [0, 1]
  Tensor labels;  // int64 (N), 0..9
  // Archive members whose path is absolute or holds '..' anywhere: never taken as data, counted,
  // and named in a warning on stderr (0 when the split came from the cache).
  int64_t unsafe_skipped = 0;
};

// Whether an archive member's path may not be taken as data: absolute, or with a '..' part.
bool unsafe_member_path(const std::string& name);

// Loads the training (train = true) or test split from `path`: the .tar.gz (any tar that
// libarchive reads, compressed or not) or a folder holding train/ and test/. Entries are taken in
// the order of their paths (<split>/<class>/<file>, sorted), whatever the archive's order; with
// limit >= 0 only the first min(limit, N) of them are decoded and returned (being sorted by
// class, a small limit takes the first classes only: shuffle or split afterwards). Entries
// outside <split>/<class>/ or not named .jpg/.jpeg/.png are ignored (a README, the other split).
//
// With a cache_dir, the decoded split is also written there (cifar10-<split>[-<limit>].gvcache,
// written to a temporary file then renamed) and read back on the next call whose source (its size
// and modification time) is unchanged. A cache that fails its checks (header, size, checksum) is
// rebuilt with a warning on stderr; one that cannot be written only warns.
Cifar10Split load_cifar10(const std::string& path, bool train, int64_t limit = -1,
                          const std::string& cache_dir = "");

// Where the archive is looked for: $GENVAE_CIFAR10 when set and not empty; else
// ../shared/data/cifar10/cifar10-jpg.tar.gz from the current directory when it exists; else the
// same path from the executable's folder or one of its first few parents; else the relative
// path, for error messages to name.
std::string default_cifar10_path();

}  // namespace gv::data
