// distributed.h: data-parallel training's seam to an existing communication engine. A
// ProcessGroup is the set of processes of one run (one per rank); what trains calls only these
// collectives, so the same training step runs on one process, over MPI (CPU tensors) and over
// NCCL (GPU tensors):
//   * SingleProcess: world size 1, every collective a no-op; the default, costing nothing.
//   * MPI (Open MPI; meson -Dmpi, on when found): CPU tensors. Launched by mpirun.
//   * NCCL (meson -Dnccl, with CUDA): GPU tensors over NCCL, CPU tensors and start-up over MPI.
//     nn sees it through this seam only; the NCCL calls live in engine/cuda (no CUDA header here).
// Collectives block, with a deadline (set_timeout): past it, a run whose peer hangs stops instead
// of waiting for ever, with a message naming this rank, the collective and the time it waited (MPI:
// a watchdog thread ends the process, since only the main thread may call MPI; NCCL: the
// communicator is aborted and DistributedError thrown). After any error a distributed program
// calls abort(), which ends every rank (mpirun reports which one asked).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "autograd/var.h"
#include "nn/module.h"
#include "nn/optim.h"
#include "engine/tensor.h"

namespace gv {
struct DistributedError : Error { using Error::Error; };  // a peer lost, a collective timed out
}  // namespace gv

namespace gv::nn {

// A collective started by all_reduce_sum_async; wait() completes it (or throws on timeout).
class PendingReduce {
 public:
  virtual ~PendingReduce() = default;
  virtual void wait() = 0;
  virtual bool test() = 0;  // done yet? (drives the transport's progress without blocking)
};

class ProcessGroup {
 public:
  virtual ~ProcessGroup() = default;
  virtual int rank() const = 0;
  virtual int world_size() const = 0;
  virtual int local_size() const { return 1; }  // ranks on this machine (threads are shared by them)
  virtual int local_rank() const { return 0; }  // this rank's place among them
  virtual int gpu() const { return -1; }        // the GPU a NCCL group talks through (-1: none)
  virtual std::string backend() const = 0;      // "single", "mpi", "nccl"

  // In place, on every rank: the element-wise sum over the ranks, the same bits on every rank.
  // t is contiguous, float32/float64/int64, on the device the backend serves.
  virtual void all_reduce_sum_(Tensor& t) = 0;
  // Starts the sum of t and returns at once; t must not be touched until wait() returns.
  virtual std::unique_ptr<PendingReduce> all_reduce_sum_async(Tensor& t);
  // In place: every rank gets root's t (same shape and dtype on every rank, else the collective
  // fails or the check below names it).
  virtual void broadcast_(Tensor& t, int root = 0) = 0;
  virtual void barrier() = 0;
  // Ends every rank of the run now with exit status code (after this rank printed why).
  [[noreturn]] virtual void abort(int code);

  // Deadline of each collective in seconds (default 600); <= 0 waits for ever.
  void set_timeout(double seconds) { timeout_ = seconds; }
  double timeout() const { return timeout_; }

  // Built from the collectives above, so every backend has them.
  std::string broadcast_string(const std::string& s, int root = 0);  // root's s on every rank
  std::vector<int64_t> all_gather(const std::vector<int64_t>& mine);  // rank-major, equal lengths
  double all_reduce_max(double x);
  std::vector<std::string> all_gather_strings(const std::string& mine);  // one per rank
  // "rank 1 of 2 (mpi)", for messages
  std::string where() const;

 protected:
  double timeout_ = 600;
};

class SingleProcess final : public ProcessGroup {
 public:
  int rank() const override { return 0; }
  int world_size() const override { return 1; }
  std::string backend() const override { return "single"; }
  void all_reduce_sum_(Tensor&) override {}
  void broadcast_(Tensor&, int) override {}
  void barrier() override {}
};

// The backends this build has, for --dist's help: {"single", "mpi", "nccl"} or a subset.
std::vector<std::string> process_group_backends();
// True when this process was started by a launcher (mpirun: OMPI_COMM_WORLD_SIZE, PMI_SIZE).
bool launched_by_mpi();
// This process's rank as the launcher set it (before MPI starts); 0 when not launched so.
int launcher_rank();
// kind "single", "mpi", "nccl", or "auto": mpi when launched by mpirun (nccl when also
// on_gpu and NCCL is built), else single. A kind this build lacks is a ValueError naming the
// meson option that turns it on, and so is "single" under a launcher that started several
// processes (each would think itself the only one). mpi and nccl initialize MPI (once per
// process); gpu is the CUDA device NCCL uses, -1 for this machine's GPU number local_rank (mod the
// GPUs it has). Keep the group alive until the program ends.
std::unique_ptr<ProcessGroup> make_process_group(const std::string& kind, bool on_gpu = false, int gpu = -1);
// The backend kind "auto" stands for here (others are returned as they are, checked by
// make_process_group).
std::string resolve_backend(const std::string& kind, bool on_gpu);

// Start-up and checks of data-parallel training.
// Every rank gets root's parameters and buffers (in place: the layers' handles see them), and
// root's optimizer state and step count. Both sides must have the same names and shapes.
void broadcast_module(ProcessGroup& pg, Module& m, int root = 0);
void broadcast_optimizer(ProcessGroup& pg, Optimizer& opt, int root = 0);
// A checksum of every parameter's and float buffer's bits (in name order; int64 buffers are
// counters, such as a dropout stream's position, that rank 0's evaluations may move), compared over the ranks:
// DistributedError naming the first rank whose weights differ from rank 0's (ranks that drifted
// apart would go on training different models without a word).
void check_same_weights(ProcessGroup& pg, const Module& m, const std::string& when);

// Data-parallel gradient averaging between backward and clipping (nn/train_step.h). The
// parameters' gradients go into buckets of about bucket_bytes (in reverse order of the
// parameters, the order backward completes them), each summed over the ranks in one collective
// and divided by the world size. With overlap, a bucket's reduction starts as soon as backward
// has completed all of its gradients (Var::backward's hook), in bucket order, and the rest of
// backward runs while it travels; without, all buckets are reduced after backward. Either way
// the result is the same bits: each bucket is the same flat sum. A parameter that this step's
// graph does not reach holds its bucket, and the ones after it, until finish().
class GradReducer {
 public:
  GradReducer(ProcessGroup& pg, std::vector<ag::Var> params, int64_t bucket_bytes = 4 << 20, bool overlap = true);
  ProcessGroup& group() const { return pg_; }
  bool overlap() const { return overlap_; }
  int64_t buckets() const { return int64_t(buckets_.size()); }
  // Called by Var::backward's hook for every leaf whose gradient is complete.
  void leaf_ready(const ag::Var& leaf);
  // Finishes the step: reduces what has not been reduced yet, waits for all, averages and writes
  // the gradients back. A parameter without a gradient on this rank counts as zeros; one that no
  // rank gave a gradient keeps none (as a single process's optimizer would skip it), which one
  // more small all-reduce of per-parameter flags decides.
  void finish();
  // Buckets whose reduction started during backward on the last step (0 without overlap).
  int64_t started_early() const { return last_started_early_; }
  // Seconds spent in finish() on the last step (the reduction not hidden by backward), and the
  // bytes reduced per step.
  double last_wait_seconds() const { return last_wait_; }
  int64_t bytes_per_step() const;

 private:
  struct Bucket {
    std::vector<size_t> params;  // indices into params_, in reverse parameter order
    int64_t numel = 0;
    DType dtype = DType::f32;
    Tensor flat;
    size_t ready = 0;
    std::unique_ptr<PendingReduce> pending;
  };
  void start(size_t b);
  void pack(Bucket& b);
  ProcessGroup& pg_;
  std::vector<ag::Var> params_;
  std::vector<Bucket> buckets_;
  std::vector<std::pair<const void*, size_t>> index_;  // param impl -> its index, sorted for lookup
  std::vector<size_t> bucket_of_;                      // per param: its bucket
  std::vector<char> seen_;                             // per param: reported ready this step
  size_t next_start_ = 0;                              // buckets start in order
  int64_t started_early_ = 0, last_started_early_ = 0;
  Tensor has_grad_;                                    // int64 (params): this rank had a gradient
  bool overlap_;
  double last_wait_ = 0;
};

}  // namespace gv::nn
