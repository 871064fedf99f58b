// index_kernels.cu: gather, scatter_add and one_hot on CUDA (engine/cuda/kernels.h's bodies). A bad
// index value is recorded in the device's error word and raised at the next wait (launch.h).
#include "engine/cuda/launch.h"

namespace gv::cuda {
namespace {

template <class T>
__global__ void gather_kernel(kern::IndexGeom ig, const T* x, const int64_t* index, T* out, kern::ErrorWord* err) {
  kern::gather_body<T>(kern::Grid{blockIdx.x, threadIdx.x, blockDim.x, gridDim.x}, ig, x, index, out, err);
}
template <class T>
__global__ void scatter_add_kernel(kern::IndexGeom ig, const int64_t* index, const T* src, T* out,
                                   kern::ErrorWord* err) {
  kern::scatter_add_body<T>(kern::Grid{blockIdx.x, threadIdx.x, blockDim.x, gridDim.x}, ig, index, src, out, err);
}
template <class T>
__global__ void one_hot_kernel(kern::IndexGeom ig, const int64_t* index, int64_t classes, T* out,
                               kern::ErrorWord* err) {
  kern::one_hot_body<T>(kern::Grid{blockIdx.x, threadIdx.x, blockDim.x, gridDim.x}, ig, index, classes, out, err);
}

void check_index(const TensorRef& index, const char* op) {
  if (index.dtype != DType::i64)
    detail::throw_dtype_error(std::string(op) + " on cuda: the index must be int64, got " + dtype_name(index.dtype),
                              __FILE__, __LINE__);
}

}  // namespace

void gather(const TensorRef& out, const TensorRef& x, const TensorRef& index, int axis, int device) {
  check_index(index, "gather");
  const kern::IndexGeom ig = kern::index_geom(index, &x, nullptr, axis, x.shape[axis]);
  if (ig.numel == 0) return;
  detail::set_device(device, "gather");
  const kern::Launch l = kern::launch_for(ig.numel, detail::sm_count(device));
  kern::ErrorWord* err = detail::error_word(device);
  detail::dispatch_all(x.dtype, "gather", [&]<class T>() {
    gather_kernel<T><<<unsigned(l.blocks), unsigned(l.threads)>>>(ig, x.ptr<T>(), index.ptr<int64_t>(), out.ptr<T>(),
                                                                  err);
  });
  detail::check_launch("gather", l, device);
}

void scatter_add(const TensorRef& out, const TensorRef& index, const TensorRef& src, int axis, int device) {
  check_index(index, "scatter_add");
  const kern::IndexGeom ig = kern::index_geom(index, &out, &src, axis, out.shape[axis]);
  if (ig.numel == 0) return;
  detail::set_device(device, "scatter_add");
  const kern::Launch l = kern::launch_for(ig.numel / ig.shape[axis], detail::sm_count(device));
  kern::ErrorWord* err = detail::error_word(device);
  detail::dispatch_all(src.dtype, "scatter_add", [&]<class T>() {
    scatter_add_kernel<T><<<unsigned(l.blocks), unsigned(l.threads)>>>(ig, index.ptr<int64_t>(), src.ptr<T>(),
                                                                       out.ptr<T>(), err);
  });
  detail::check_launch("scatter_add", l, device);
}

void one_hot(const TensorRef& out, const TensorRef& index, int64_t classes, int device) {
  check_index(index, "one_hot");
  const kern::IndexGeom ig = kern::index_geom(index, nullptr, nullptr, 0, classes);
  if (ig.numel == 0) return;
  detail::set_device(device, "one_hot");
  const kern::Launch l = kern::launch_for(ig.numel, detail::sm_count(device));
  kern::ErrorWord* err = detail::error_word(device);
  detail::dispatch_all(out.dtype, "one_hot", [&]<class T>() {
    one_hot_kernel<T><<<unsigned(l.blocks), unsigned(l.threads)>>>(ig, index.ptr<int64_t>(), classes, out.ptr<T>(), err);
  });
  detail::check_launch("one_hot", l, device);
}

}  // namespace gv::cuda
