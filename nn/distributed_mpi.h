// distributed_mpi.h: the MPI ProcessGroup (distributed_mpi.cpp), declared for the NCCL group,
// which uses it for start-up and CPU tensors. No MPI header here: only the .cpp includes mpi.h.
#pragma once
#include "nn/distributed.h"

namespace gv::nn {

class MpiGroup : public ProcessGroup {
 public:
  explicit MpiGroup(double timeout);  // MPI_Init_thread unless MPI is running already
  ~MpiGroup() override;               // MPI_Finalize when this group started MPI
  int rank() const override { return rank_; }
  int world_size() const override { return size_; }
  int local_size() const override { return local_size_; }
  int local_rank() const override { return local_rank_; }
  std::string backend() const override { return "mpi"; }
  void all_reduce_sum_(Tensor& t) override;
  std::unique_ptr<PendingReduce> all_reduce_sum_async(Tensor& t) override;
  void broadcast_(Tensor& t, int root = 0) override;
  void barrier() override;
  [[noreturn]] void abort(int code) override;

 protected:
  // DistributedError on a rank whose t differs in shape or dtype from root's (a broadcast's check)
  void check_same_shape(const Tensor& t, int root);

 private:
  int rank_ = 0, size_ = 1, local_size_ = 1, local_rank_ = 0;
  bool owns_ = false;
};

}  // namespace gv::nn
