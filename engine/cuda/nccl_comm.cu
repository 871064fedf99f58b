// nccl_comm.cu: see nccl_comm.h.
#include <nccl.h>

#include <chrono>
#include <cstring>
#include <string>
#include <thread>

#include "engine/cuda/cuda_check.h"
#include "engine/cuda/nccl_comm.h"

namespace gv::cuda {

namespace {

#define GV_NCCL_CHECK(call, what)                                                                       \
  do {                                                                                                  \
    const ncclResult_t gv_nccl_rc_ = (call);                                                            \
    if (gv_nccl_rc_ != ncclSuccess && gv_nccl_rc_ != ncclInProgress)                                                             \
      ::gv::cuda::detail::throw_device_error(std::string("NCCL: ") + (what) + " failed: " +             \
                                             ncclGetErrorString(gv_nccl_rc_), __FILE__, __LINE__);      \
  } while (0)

ncclDataType_t nccl_type(DType dt) {
  switch (dt) {
    case DType::f32: return ncclFloat32;
    case DType::f64: return ncclFloat64;
    case DType::i64: return ncclInt64;
    default: detail::throw_dtype_error("NCCL carries float32, float64 and int64 tensors", __FILE__, __LINE__);
  }
}

ncclComm_t as_comm(void* p) { return static_cast<ncclComm_t>(p); }

}  // namespace

NcclId nccl_unique_id() {
  static_assert(sizeof(ncclUniqueId) == sizeof(NcclId::bytes), "ncclUniqueId is 128 bytes");
  ncclUniqueId u;
  GV_NCCL_CHECK(ncclGetUniqueId(&u), "ncclGetUniqueId");
  NcclId id;
  std::memcpy(id.bytes.data(), &u, sizeof u);
  return id;
}

NcclComm::NcclComm(const NcclId& id, int rank, int world, int device) : device_(device) {
  GV_CUDA_CHECK(cudaSetDevice(device), "selecting GPU " + std::to_string(device) + " for NCCL");
  ncclUniqueId u;
  std::memcpy(&u, id.bytes.data(), sizeof u);
  // non-blocking: initialization and collectives return at once, so wait() can keep a deadline
  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  config.blocking = 0;
  ncclComm_t c = nullptr;
  ncclResult_t rc = ncclCommInitRankConfig(&c, world, u, rank, &config);
  if (rc != ncclSuccess && rc != ncclInProgress)
    detail::throw_device_error(std::string("NCCL: ncclCommInitRankConfig failed: ") + ncclGetErrorString(rc),
                               __FILE__, __LINE__);
  comm_ = c;
  wait("initialization", 600);
}

NcclComm::~NcclComm() {
  if (!comm_) return;
  // a non-blocking communicator finishes its work (ncclCommFinalize, polled) before it is freed
  ncclResult_t st = ncclCommFinalize(as_comm(comm_));
  const auto t0 = std::chrono::steady_clock::now();
  while (st == ncclInProgress && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(30))
    if (ncclCommGetAsyncError(as_comm(comm_), &st) != ncclSuccess) break;
  (void)ncclCommDestroy(as_comm(comm_));
}

// Spins for the first 100 ms without sleeping (a step's reduction is usually done by then, and a
// nap would add its length to every bucket, as polling MPI with naps once did), then polls every
// 100 us up to the deadline.
void NcclComm::wait(const char* what, double timeout_s) {
  const auto t0 = std::chrono::steady_clock::now();
  for (;;) {
    ncclResult_t async = ncclSuccess;
    GV_NCCL_CHECK(ncclCommGetAsyncError(as_comm(comm_), &async), "ncclCommGetAsyncError");
    if (async != ncclSuccess && async != ncclInProgress) {
      (void)ncclCommAbort(as_comm(comm_));
      comm_ = nullptr;
      detail::throw_device_error(std::string("NCCL: the ") + what + " failed: " + ncclGetErrorString(async),
                                 __FILE__, __LINE__);
    }
    if (async == ncclSuccess) {
      const cudaError_t q = cudaStreamQuery(0);
      if (q == cudaSuccess) return;
      if (q != cudaErrorNotReady) GV_CUDA_CHECK(q, std::string("waiting for NCCL's ") + what);
    }
    const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (timeout_s > 0 && waited > timeout_s) {
      (void)ncclCommAbort(as_comm(comm_));
      comm_ = nullptr;
      detail::throw_device_error(std::string("NCCL: the ") + what + " did not complete within " +
                                     std::to_string(timeout_s) + " s: another rank stopped answering or died",
                                 __FILE__, __LINE__);
    }
    if (waited > 0.1) std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
}

void NcclComm::all_reduce_sum(void* p, int64_t n, DType dt, double timeout_s) {
  if (!comm_) detail::throw_device_error("NCCL: the communicator was aborted after an earlier failure", __FILE__, __LINE__);
  GV_CUDA_CHECK(cudaSetDevice(device_), "selecting the GPU of NCCL's communicator");
  GV_NCCL_CHECK(ncclAllReduce(p, p, size_t(n), nccl_type(dt), ncclSum, as_comm(comm_), 0), "ncclAllReduce");
  wait("all-reduce", timeout_s);
}

void NcclComm::broadcast(void* p, int64_t n, DType dt, int root, double timeout_s) {
  if (!comm_) detail::throw_device_error("NCCL: the communicator was aborted after an earlier failure", __FILE__, __LINE__);
  GV_CUDA_CHECK(cudaSetDevice(device_), "selecting the GPU of NCCL's communicator");
  GV_NCCL_CHECK(ncclBroadcast(p, p, size_t(n), nccl_type(dt), root, as_comm(comm_), 0), "ncclBroadcast");
  wait("broadcast", timeout_s);
}

}  // namespace gv::cuda
