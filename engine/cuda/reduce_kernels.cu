// reduce_kernels.cu: sum, max and argmax over any axes on CUDA (engine/cuda/kernels.h's bodies):
// one thread per output when each output reduces few elements, else one block per output with a
// shared-memory tree. Float sums accumulate in double, as on the CPU; the tree's order is fixed by
// the shape, so results are the same run after run.
#include "engine/cuda/launch.h"

namespace gv::cuda {
namespace {

template <class R, class T>
__global__ void reduce_serial_kernel(kern::ReduceGeom r, const T* x, typename R::Out* out) {
  kern::reduce_serial_body<R>(kern::Grid{blockIdx.x, threadIdx.x, blockDim.x, gridDim.x}, r, x, out);
}

// tests/engine/kernel_harness.h run_reduce_blocks runs this same sequence on the CPU.
template <class R, class T>
__global__ void reduce_block_kernel(kern::ReduceGeom r, const T* x, typename R::Out* out) {
  extern __shared__ __align__(16) unsigned char smem[];
  auto* sh = reinterpret_cast<typename R::Acc*>(smem);
  for (int64_t o = blockIdx.x; o < r.nout; o += gridDim.x) {
    sh[threadIdx.x] = kern::reduce_partial<R>(r, x, o, threadIdx.x, blockDim.x);
    __syncthreads();
    for (int64_t s = blockDim.x / 2; s > 0; s /= 2) {
      kern::reduce_tree_step<R>(sh, threadIdx.x, s);
      __syncthreads();
    }
    if (threadIdx.x == 0) out[o] = R::fin(sh[0]);
    __syncthreads();
  }
}

template <class R, class T>
void run(const char* what, const kern::ReduceGeom& r, const T* x, typename R::Out* out, int device) {
  if (r.nout == 0) return;
  detail::set_device(device, what);
  const kern::ReduceLaunch rl = kern::reduce_launch(r.nout, r.nred, detail::sm_count(device));
  const kern::Launch& l = rl.launch;
  if (rl.serial)
    reduce_serial_kernel<R, T><<<unsigned(l.blocks), unsigned(l.threads)>>>(r, x, out);
  else
    reduce_block_kernel<R, T><<<unsigned(l.blocks), unsigned(l.threads), size_t(l.threads) * sizeof(typename R::Acc)>>>(
        r, x, out);
  detail::check_launch(what, l, device);
}

}  // namespace

void reduce(ReduceOp op, const TensorRef& out, const TensorRef& x, const bool* reduced, int device) {
  const kern::ReduceGeom r = kern::reduce_geom(x, reduced);
  switch (op) {
    case ReduceOp::sum:
      return detail::dispatch_all(x.dtype, "sum", [&]<class T>() {
        run<kern::SumR<T>>("sum", r, x.ptr<T>(), out.ptr<T>(), device);
      });
    case ReduceOp::max:
      return detail::dispatch_all(x.dtype, "max", [&]<class T>() {
        run<kern::MaxR<T>>("max", r, x.ptr<T>(), out.ptr<T>(), device);
      });
    case ReduceOp::argmax:
      return detail::dispatch_all(x.dtype, "argmax", [&]<class T>() {
        run<kern::ArgmaxR<T>>("argmax", r, x.ptr<T>(), out.ptr<int64_t>(), device);
      });
  }
}

}  // namespace gv::cuda
