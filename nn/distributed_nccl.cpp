// distributed_nccl.cpp: the NCCL ProcessGroup: GPU tensors over NCCL (engine/cuda/nccl_comm.h),
// CPU tensors and start-up over MPI (rank 0's NCCL id reaches the others by MPI_Bcast).
#include <cstring>

#include "engine/cuda/cuda_backend.h"
#include "engine/cuda/nccl_comm.h"
#include "nn/distributed.h"
#include "nn/distributed_mpi.h"

namespace gv::nn {

namespace {

class NcclGroup final : public MpiGroup {
 public:
  NcclGroup(double timeout, int gpu) : MpiGroup(timeout) {
    cuda::NcclId id;
    if (rank() == 0) id = cuda::nccl_unique_id();
    Tensor bytes = Tensor::zeros({int64_t(sizeof id.bytes / 8)}, DType::i64);
    std::memcpy(bytes.raw_data(), id.bytes.data(), sizeof id.bytes);
    MpiGroup::broadcast_(bytes, 0);
    std::memcpy(id.bytes.data(), bytes.raw_data(), sizeof id.bytes);
    if (gpu < 0) {  // this machine's GPU number local_rank
      const int gpus = cuda::device_count();
      GV_CHECK(gpus > 0, DeviceError, "{}: --dist nccl needs a GPU, and this machine has none usable", where());
      gpu = local_rank() % gpus;
    }
    comm_ = std::make_unique<cuda::NcclComm>(id, rank(), world_size(), gpu);
  }
  std::string backend() const override { return "nccl"; }
  int gpu() const override { return comm_->device(); }

  void all_reduce_sum_(Tensor& t) override {
    if (t.device().is_cpu()) return MpiGroup::all_reduce_sum_(t);
    check_device(t, "all_reduce_sum");
    try {
      comm_->all_reduce_sum(t.raw_data(), t.numel(), t.dtype(), timeout_);
    } catch (const Error& e) {
      GV_THROW(DistributedError, "{}: {}", where(), e.what());
    }
  }
  std::unique_ptr<PendingReduce> all_reduce_sum_async(Tensor& t) override {
    if (t.device().is_cpu()) return MpiGroup::all_reduce_sum_async(t);
    return ProcessGroup::all_reduce_sum_async(t);  // waits: NCCL's stream is the kernels' stream
  }
  void broadcast_(Tensor& t, int root) override {
    if (t.device().is_cpu()) return MpiGroup::broadcast_(t, root);
    check_device(t, "broadcast");
    check_same_shape(t, root);  // over MPI, as for CPU tensors
    try {
      comm_->broadcast(t.raw_data(), t.numel(), t.dtype(), root, timeout_);
    } catch (const Error& e) {
      GV_THROW(DistributedError, "{}: {}", where(), e.what());
    }
  }

 private:
  void check_device(const Tensor& t, const char* op) const {
    GV_CHECK(t.device().is_cuda() && t.device().index == comm_->device(), DeviceError,
             "{} over NCCL: the tensor {} must be on cuda:{}, the communicator's GPU", op, t.str(), comm_->device());
    GV_CHECK(t.is_contiguous(), ValueError, "{} over NCCL: the tensor {} must be contiguous", op, t.str());
  }
  std::unique_ptr<cuda::NcclComm> comm_;
};

}  // namespace

std::unique_ptr<ProcessGroup> make_nccl_group(double timeout, int gpu) {
  return std::make_unique<NcclGroup>(timeout, gpu);
}

}  // namespace gv::nn
