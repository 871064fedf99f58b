// elementwise_kernels.cu: the element-wise kernels of the CUDA backend (unary and its backward,
// binary, where, the gate, copy with dtype conversion, fill). One grid-stride kernel over
// engine/strided.h's index space, instantiated with the appliers of engine/cuda/kernels.h, which
// call the functors of engine/functors.h: the CPU's math. Any strides, broadcast included.
#include <array>

#include "engine/cuda/launch.h"

namespace gv::cuda {
namespace {

using detail::check_launch;
using detail::dispatch_all;
using detail::dispatch_float;

template <int K, class Op>
__global__ void strided_kernel(StridedSpace<K> s, Op op) {
  kern::strided_body<K>(kern::Grid{blockIdx.x, threadIdx.x, blockDim.x, gridDim.x}, s, op);
}

template <int K, class Op>
void launch(const char* what, std::array<const TensorRef*, K> refs, const Op& op, int device) {
  const StridedSpace<K> s = kern::space_of<K>(refs.data());
  if (s.too_many_axes)
    detail::throw_shape_error(std::string(what) + " on cuda: more than " + std::to_string(kMaxDims) +
                                  " axes remain after merging",
                              __FILE__, __LINE__);
  if (s.empty) return;
  detail::set_device(device, what);
  const kern::Launch l = kern::launch_for(s.numel, detail::sm_count(device));
  strided_kernel<K, Op><<<unsigned(l.blocks), unsigned(l.threads)>>>(s, op);
  check_launch(what, l, device);
}

template <class F>
void call_unary(UnaryOp op, F&& f) {
  switch (op) {
#define GV_CASE(name, Fn) case UnaryOp::name: f.template operator()<Fn>(); return;
    GV_UNARY_OPS(GV_CASE)
#undef GV_CASE
  }
}
template <class F>
void call_binary(BinaryOp op, F&& f) {
  switch (op) {
#define GV_CASE(name, Fn) case BinaryOp::name: f.template operator()<Fn>(); return;
    GV_BINARY_OPS(GV_CASE)
#undef GV_CASE
  }
}

template <class T>
__global__ void update_kernel(UpdateArgs a) {
  const int64_t stride = int64_t(blockDim.x) * gridDim.x;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < a.n; i += stride) apply_update<T>(a, i, i + 1);
}

}  // namespace

void optimizer_update(const UpdateArgs& a, int device) {
  if (a.n == 0) return;
  detail::set_device(device, "optimizer step");
  const kern::Launch l = kern::launch_for(a.n, detail::sm_count(device));
  dispatch_float(a.dtype, "optimizer step", [&]<class T>() {
    update_kernel<T><<<unsigned(l.blocks), unsigned(l.threads)>>>(a);
  });
  check_launch("optimizer step", l, device);
}

void unary(UnaryOp op, const TensorRef& out, const TensorRef& x, double a, double b, int device) {
  dispatch_float(x.dtype, unary_op_name(op), [&]<class T>() {
    call_unary(op, [&]<class F>() {
      launch<2>(unary_op_name(op), {&out, &x}, kern::UnaryApply<F, T>{out.ptr<T>(), x.ptr<T>(), T(a), T(b)}, device);
    });
  });
}

void unary_backward(UnaryOp op, const TensorRef& gx, const TensorRef& x, const TensorRef& y, const TensorRef& gout,
                    double a, double b, int device) {
  dispatch_float(x.dtype, unary_op_name(op), [&]<class T>() {
    call_unary(op, [&]<class F>() {
      launch<4>(unary_op_name(op), {&gx, &x, &y, &gout},
                kern::UnaryBackApply<F, T>{gx.ptr<T>(), x.ptr<T>(), y.ptr<T>(), gout.ptr<T>(), T(a), T(b)}, device);
    });
  });
}

void binary(BinaryOp op, const TensorRef& out, const TensorRef& a, const TensorRef& b, int device) {
  dispatch_all(a.dtype, binary_op_name(op), [&]<class T>() {
    call_binary(op, [&]<class F>() {
      launch<3>(binary_op_name(op), {&out, &a, &b}, kern::BinaryApply<F, T>{out.ptr<T>(), a.ptr<T>(), b.ptr<T>()},
                device);
    });
  });
}

void where(const TensorRef& out, const TensorRef& cond, const TensorRef& a, const TensorRef& b, int device) {
  dispatch_all(a.dtype, "where", [&]<class T>() {
    dispatch_all(cond.dtype, "where", [&]<class C>() {
      launch<4>("where", {&out, &cond, &a, &b},
                kern::WhereApply<T, C>{out.ptr<T>(), cond.ptr<C>(), a.ptr<T>(), b.ptr<T>()}, device);
    });
  });
}

void gate(const TensorRef& out, const TensorRef& a, const TensorRef& b, int device) {
  dispatch_float(a.dtype, "gate", [&]<class T>() {
    launch<3>("gate", {&out, &a, &b}, kern::GateApply<T>{out.ptr<T>(), a.ptr<T>(), b.ptr<T>()}, device);
  });
}

void gate_backward(const TensorRef& ga, const TensorRef& gb, const TensorRef& a, const TensorRef& b,
                   const TensorRef& gout, int device) {
  dispatch_float(a.dtype, "gate backward", [&]<class T>() {
    launch<5>("gate backward", {&ga, &gb, &a, &b, &gout},
              kern::GateBackApply<T>{ga.ptr<T>(), gb.ptr<T>(), a.ptr<T>(), b.ptr<T>(), gout.ptr<T>()}, device);
  });
}

void copy(const TensorRef& dst, const TensorRef& src, int device) {
  if (dst.dtype == src.dtype && ref_is_contiguous(dst) && ref_is_contiguous(src)) {
    copy_on_device(dst.data, src.data, size_t(ref_numel(dst)) * dtype_size(dst.dtype), device);
    return;
  }
  dispatch_all(dst.dtype, "copy_", [&]<class D>() {
    dispatch_all(src.dtype, "copy_", [&]<class S>() {
      launch<2>("copy_", {&dst, &src}, kern::CopyApply<D, S>{dst.ptr<D>(), src.ptr<S>()}, device);
    });
  });
}

void fill(const TensorRef& dst, double value, int device) {
  dispatch_all(dst.dtype, "fill_", [&]<class T>() {
    launch<1>("fill_", {&dst}, kern::FillApply<T>{dst.ptr<T>(), T(value)}, device);
  });
}

}  // namespace gv::cuda
