// nccl_comm.h: NCCL, for data-parallel training of GPU tensors (nn/distributed_nccl.cpp), behind
// a plain C++ seam: no CUDA or NCCL header here, so nn includes none. Implemented in
// nccl_comm.cu, compiled only when the build has NCCL (meson -Dnccl), as is its one user.
// Collectives run on the device's legacy default stream, ordered after the backend's kernels,
// and are waited for with a deadline: past it the communicator is aborted (so no rank is left
// blocked inside NCCL) and DeviceError says how long it waited.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>

#include "engine/dtype.h"

namespace gv::cuda {

struct NcclId {
  std::array<char, 128> bytes{};  // ncclUniqueId: made by rank 0, sent to the others by MPI
};
NcclId nccl_unique_id();

class NcclComm {
 public:
  NcclComm(const NcclId& id, int rank, int world, int device);
  ~NcclComm();
  NcclComm(const NcclComm&) = delete;
  NcclComm& operator=(const NcclComm&) = delete;
  // In place on the device memory p (n elements of dt): the sum over the ranks / root's values.
  void all_reduce_sum(void* p, int64_t n, DType dt, double timeout_s);
  void broadcast(void* p, int64_t n, DType dt, int root, double timeout_s);
  int device() const { return device_; }

 private:
  void wait(const char* what, double timeout_s);
  void* comm_ = nullptr;  // ncclComm_t
  int device_ = 0;
};

}  // namespace gv::cuda
