// cuda_absent.cpp: the CUDA backend of a build without CUDA (-Dcuda=disabled or no nvcc).
// Asking for a CUDA tensor then fails with a DeviceError that says how to get one.
#include "engine/cuda/cuda_backend.h"
#include "engine/cuda/cuda_info.h"
#include "engine/error.h"

namespace gv::cuda {

#define GV_NO_CUDA(what) \
  GV_THROW(DeviceError, "{}: this build of genvae has no CUDA backend (reconfigure with -Dcuda=enabled)", what)

bool compiled() { return false; }
int device_count() { return 0; }
void* alloc(size_t, int) { GV_NO_CUDA("cuda alloc"); }
void free(void*, int) noexcept {}
void copy_to_device(void*, const void*, size_t, int) { GV_NO_CUDA("copy to cuda"); }
void copy_to_host(void*, const void*, size_t, int) { GV_NO_CUDA("copy from cuda"); }
void copy_on_device(void*, const void*, size_t, int) { GV_NO_CUDA("copy on cuda"); }
void synchronize(int) { GV_NO_CUDA("cuda synchronize"); }
void unary(UnaryOp op, DType, const void*, void*, int64_t, double, double, int) {
  GV_NO_CUDA(unary_op_name(op));
}
std::string describe_devices() {
  return "this build of genvae has no CUDA backend (reconfigure with -Dcuda=enabled)";
}

}  // namespace gv::cuda
