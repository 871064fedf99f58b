// checkpoint.h: saving and restoring training, in the safetensors format (so Python's
// `safetensors` package opens genvae's files). Two layers:
//
//  * write_safetensors / read_safetensors: named tensors (float32, float64, int64) plus string
//    metadata. Writing is atomic (temporary file in the same folder, fsync, rename, fsync of the
//    folder), so a crash mid-save leaves the previous file whole. Reading validates every field of
//    the header before it trusts any of it; each problem is an IOError naming the file.
//  * save_checkpoint / load_checkpoint: a Module's parameters and buffers ("model.<name>"), an
//    optimizer's state ("optim.<slot>.<name>") and a TrainState (step counters and every random
//    stream), enough to resume a run bit for bit in a fresh process.
//
// The file layout (https://github.com/huggingface/safetensors, "Format"):
//   8 bytes      N, the header's length, unsigned little-endian
//   N bytes      JSON: {"__metadata__": {str: str}, "<name>": {"dtype": "F32"|"F64"|"I64",
//                "shape": [d0, ...], "data_offsets": [begin, end]}, ...}, padded with spaces so
//                that the data starts 8-byte aligned
//   the rest     the tensors' raw little-endian bytes, in order of name, back to back; offsets
//                count from the start of this section, and every byte belongs to one tensor
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "engine/random.h"
#include "nn/module.h"
#include "nn/optim.h"

namespace gv::nn {

// Largest header read_safetensors accepts (the limit of the reference implementation).
inline constexpr uint64_t kMaxSafetensorsHeader = 100'000'000;
// The checkpoint format this build writes and the newest it reads.
inline constexpr int kCheckpointFormatVersion = 1;

using Metadata = std::map<std::string, std::string>;

struct SafetensorsFile {
  std::vector<NamedTensor> tensors;  // in order of name; each a fresh contiguous CPU tensor
  Metadata metadata;
};

struct WriteOptions {
  // For tests: when >= 0, the writer stops after this many bytes of the temporary file and throws
  // IOError, as a crash mid-save would (the target file is left as it was).
  int64_t fail_after_bytes = -1;
};

// Writes tensors (any device or layout; names unique and not "__metadata__") and metadata to
// path, atomically. Bad arguments throw ValueError; a failed write throws IOError naming the file.
void write_safetensors(const std::string& path, const std::vector<NamedTensor>& tensors,
                       const Metadata& metadata = {}, const WriteOptions& options = {});

// Reads and validates a whole safetensors file. Every problem (truncated, header length too
// large, bad JSON, unknown dtype, bad shape or offsets, overlaps, holes, duplicate names,
// non-string metadata, unreadable) throws IOError naming the file and what is wrong.
SafetensorsFile read_safetensors(const std::string& path);

// Where a training run stands, beyond the model and optimizer.
struct TrainState {
  int64_t step = 0;            // optimizer updates done
  int64_t epoch = 0;           // current epoch
  int64_t batch_in_epoch = 0;  // batches of the current epoch already consumed (data order position)
  std::vector<std::pair<std::string, Generator>> rngs;  // every random stream, by name
  std::map<std::string, std::string> extra;             // free-form (e.g. the run's config JSON)

  // The generator called name; ValueError listing the names when there is none.
  Generator& rng(const std::string& name);
};

// Saves model, optimizer (may be null) and state to path atomically. Metadata written:
// format, format_version, step, epoch, batch_in_epoch, rng.<name> ("<seed>:<offset>"),
// extra.<key>, and with an optimizer: optimizer (its kind), optimizer_steps, lr.
void save_checkpoint(const std::string& path, const Module& model, const Optimizer* optimizer,
                     const TrainState& state, const WriteOptions& options = {});

// Restores what save_checkpoint wrote. Checks everything before changing anything:
//  * the file (IOError, as read_safetensors), its format and version (IOError; a newer version
//    says so), the metadata fields (IOError naming the field);
//  * every model tensor against the module: missing, unexpected, shape or dtype mismatch, all
//    listed in one ValueError by name with both shapes;
//  * every model tensor (and, with an optimizer, every optimizer tensor) finite: NonFiniteError
//    naming the file, the tensor and its first bad index;
//  * the optimizer: same kind (ValueError), then Optimizer::load_state's own checks;
//  * the generators: when state.rngs is not empty on entry, the file must hold exactly those
//    names (ValueError), restored in place and in their order; when empty, it is filled from the
//    file in order of name.
// Then copies values into the existing parameter tensors (every handle sees them), replaces the
// buffers, restores the optimizer's state, step count and learning rate, and fills state.
// optimizer may be null (evaluation): the file's optimizer state is then ignored.
void load_checkpoint(const std::string& path, Module& model, Optimizer* optimizer, TrainState& state);

}  // namespace gv::nn
