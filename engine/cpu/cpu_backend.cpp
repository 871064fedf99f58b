// cpu_backend.cpp: the CPU backend of engine/backend.h. The element-wise kernels walk their
// TensorRefs with cpu::strided_for (engine/cpu/loops.h over engine/strided.h); the arithmetic is
// the functors of engine/functors.h, the same structs the CUDA kernels instantiate. Contiguous
// runs go through cpu::isa_call, so they vectorize for AVX-512 or AVX2 when the CPU has them.
#include "engine/backend.h"

#include <cstring>

#include "engine/cpu/conv_kernels.h"
#include "engine/cpu/index_kernels.h"
#include "engine/cpu/isa_call.h"
#include "engine/cpu/loops.h"
#include "engine/cpu/random_kernels.h"
#include "engine/cpu/reduce_kernels.h"
#include "engine/gemm.h"

namespace gv {
namespace {

template <class F>
void call_unary(UnaryOp op, F&& f) {
  switch (op) {
#define GV_CASE(name, Fn) case UnaryOp::name: f.template operator()<Fn>(); break;
    GV_UNARY_OPS(GV_CASE)
#undef GV_CASE
  }
}
template <class F>
void call_binary(BinaryOp op, F&& f) {
  switch (op) {
#define GV_CASE(name, Fn) case BinaryOp::name: f.template operator()<Fn>(); break;
    GV_BINARY_OPS(GV_CASE)
#undef GV_CASE
  }
}

class CpuBackend final : public Backend {
 public:
  const char* name() const override { return "cpu"; }

  void unary(UnaryOp op, const TensorRef& out, const TensorRef& x, double a, double b) override {
    cpu::dispatch_float(x.dtype, unary_op_name(op), [&]<class T>() {
      const T* px = x.ptr<T>();
      T* py = out.ptr<T>();
      const T ta = T(a), tb = T(b);
      call_unary(op, [&]<class F>() {
        cpu::strided_for<2>({&out, &x}, [&](auto o, int64_t n, auto in) {
          T* d = py + o[0];
          const T* s = px + o[1];
          if (in[0] == 1 && in[1] == 1)
            cpu::isa_call([&] {
              for (int64_t i = 0; i < n; ++i) d[i] = F::template f<T>(s[i], ta, tb);
            });
          else
            for (int64_t i = 0; i < n; ++i) d[i * in[0]] = F::template f<T>(s[i * in[1]], ta, tb);
        });
      });
    });
  }

  void unary_backward(UnaryOp op, const TensorRef& gx, const TensorRef& x, const TensorRef& y, const TensorRef& gout,
                      double a, double b) override {
    cpu::dispatch_float(x.dtype, unary_op_name(op), [&]<class T>() {
      const T *px = x.ptr<T>(), *py = y.ptr<T>(), *pg = gout.ptr<T>();
      T* pd = gx.ptr<T>();
      const T ta = T(a), tb = T(b);
      call_unary(op, [&]<class F>() {
        cpu::strided_for<4>({&gx, &x, &y, &gout}, [&](auto o, int64_t n, auto in) {
          T* d = pd + o[0];
          const T *xs = px + o[1], *ys = py + o[2], *gs = pg + o[3];
          if (in[0] == 1 && in[1] == 1 && in[2] == 1 && in[3] == 1)
            cpu::isa_call([&] {
              for (int64_t i = 0; i < n; ++i) d[i] = gs[i] * F::template df<T>(xs[i], ys[i], ta, tb);
            });
          else
            for (int64_t i = 0; i < n; ++i)
              d[i * in[0]] = gs[i * in[3]] * F::template df<T>(xs[i * in[1]], ys[i * in[2]], ta, tb);
        });
      });
    });
  }

  void binary(BinaryOp op, const TensorRef& out, const TensorRef& a, const TensorRef& b) override {
    cpu::dispatch_all(a.dtype, binary_op_name(op), [&]<class T>() {
      const T *pa = a.ptr<T>(), *pb = b.ptr<T>();
      T* po = out.ptr<T>();
      call_binary(op, [&]<class F>() {
        cpu::strided_for<3>({&out, &a, &b}, [&](auto o, int64_t n, auto in) {
          T* d = po + o[0];
          const T *x = pa + o[1], *y = pb + o[2];
          if (in[0] == 1 && in[1] == 1 && in[2] == 1)
            cpu::isa_call([&] {
              for (int64_t i = 0; i < n; ++i) d[i] = F::template f<T>(x[i], y[i]);
            });
          else if (in[0] == 1 && in[1] == 1 && in[2] == 0)
            cpu::isa_call([&] {
              const T y0 = y[0];
              for (int64_t i = 0; i < n; ++i) d[i] = F::template f<T>(x[i], y0);
            });
          else
            for (int64_t i = 0; i < n; ++i) d[i * in[0]] = F::template f<T>(x[i * in[1]], y[i * in[2]]);
        });
      });
    });
  }

  void where(const TensorRef& out, const TensorRef& cond, const TensorRef& a, const TensorRef& b) override {
    cpu::dispatch_all(a.dtype, "where", [&]<class T>() {
      cpu::dispatch_all(cond.dtype, "where", [&]<class C>() {
        const C* pc = cond.ptr<C>();
        const T *pa = a.ptr<T>(), *pb = b.ptr<T>();
        T* po = out.ptr<T>();
        cpu::strided_for<4>({&out, &cond, &a, &b}, [&](auto o, int64_t n, auto in) {
          for (int64_t i = 0; i < n; ++i)
            po[o[0] + i * in[0]] = pc[o[1] + i * in[1]] != C(0) ? pa[o[2] + i * in[2]] : pb[o[3] + i * in[3]];
        });
      });
    });
  }

  void gate(const TensorRef& out, const TensorRef& a, const TensorRef& b) override {
    cpu::dispatch_float(a.dtype, "gate", [&]<class T>() {
      const T *pa = a.ptr<T>(), *pb = b.ptr<T>();
      T* po = out.ptr<T>();
      cpu::strided_for<3>({&out, &a, &b}, [&](auto o, int64_t n, auto in) {
        T* d = po + o[0];
        const T *x = pa + o[1], *y = pb + o[2];
        if (in[0] == 1 && in[1] == 1 && in[2] == 1)
          cpu::isa_call([&] {
            for (int64_t i = 0; i < n; ++i) d[i] = GateF::f<T>(x[i], y[i]);
          });
        else
          for (int64_t i = 0; i < n; ++i) d[i * in[0]] = GateF::f<T>(x[i * in[1]], y[i * in[2]]);
      });
    });
  }

  void gate_backward(const TensorRef& ga, const TensorRef& gb, const TensorRef& a, const TensorRef& b,
                     const TensorRef& gout) override {
    cpu::dispatch_float(a.dtype, "gate", [&]<class T>() {
      const T *pa = a.ptr<T>(), *pb = b.ptr<T>(), *pg = gout.ptr<T>();
      T *qa = ga.ptr<T>(), *qb = gb.ptr<T>();
      cpu::strided_for<5>({&ga, &gb, &a, &b, &gout}, [&](auto o, int64_t n, auto in) {
        T *da = qa + o[0], *db = qb + o[1];
        const T *x = pa + o[2], *y = pb + o[3], *g = pg + o[4];
        if (in[0] == 1 && in[1] == 1 && in[2] == 1 && in[3] == 1 && in[4] == 1)
          cpu::isa_call([&] {
            for (int64_t i = 0; i < n; ++i) GateF::df<T>(x[i], y[i], g[i], da[i], db[i]);
          });
        else
          for (int64_t i = 0; i < n; ++i)
            GateF::df<T>(x[i * in[2]], y[i * in[3]], g[i * in[4]], da[i * in[0]], db[i * in[1]]);
      });
    });
  }

  void reduce(ReduceOp op, const TensorRef& out, const TensorRef& x, const bool* reduced) override {
    cpu::reduce(op, out, x, reduced);
  }

  void to_host(void* host_dst, const void* src, size_t nbytes) override {
    if (nbytes) std::memcpy(host_dst, src, nbytes);
  }
  void from_host(void* dst, const void* host_src, size_t nbytes) override {
    if (nbytes) std::memcpy(dst, host_src, nbytes);
  }
  void copy(const TensorRef& dst, const TensorRef& src) override { cpu::copy(dst, src); }
  void fill(const TensorRef& dst, double value) override { cpu::fill(dst, value); }
  void gather(const TensorRef& out, const TensorRef& x, const TensorRef& index, int axis) override {
    cpu::gather(out, x, index, axis);
  }
  void scatter_add(const TensorRef& out, const TensorRef& index, const TensorRef& src, int axis) override {
    cpu::scatter_add(out, index, src, axis);
  }
  void one_hot(const TensorRef& out, const TensorRef& index, int64_t classes) override {
    cpu::one_hot(out, index, classes);
  }

  void random_uniform(const TensorRef& out, uint64_t seed, uint64_t start, double lo, double hi) override {
    cpu::random_uniform(out, seed, start, lo, hi);
  }
  void random_normal(const TensorRef& out, uint64_t seed, uint64_t start, double mean, double std) override {
    cpu::random_normal(out, seed, start, mean, std);
  }
  void random_bernoulli(const TensorRef& out, const TensorRef& p, uint64_t seed, uint64_t start) override {
    cpu::random_bernoulli(out, p, seed, start);
  }

  void gemm(const GemmArgs& g) override {
    cpu::dispatch_float(g.dtype, g.op, [&]<class T>() {
      gv::gemm<T>(g.M, g.N, g.K, T(g.alpha), static_cast<const T*>(g.a), g.rsa, g.csa, static_cast<const T*>(g.b),
                  g.rsb, g.csb, T(g.beta), static_cast<T*>(g.c), g.ldc);
    });
  }

  void conv_forward(DType dt, const ConvGeom& g, int64_t N, int64_t O, const void* x, const void* w, const void* bias,
                    void* out) override {
    cpu::conv_forward(dt, g, N, O, x, w, bias, out);
  }
  void conv_backward_input(DType dt, const ConvGeom& g, int64_t N, int64_t O, const void* gout, const void* w,
                           const void* init, void* gx) override {
    cpu::conv_backward_input(dt, g, N, O, gout, w, init, gx);
  }
  void conv_backward_weight(DType dt, const ConvGeom& g, int64_t N, int64_t O, const void* x, const void* gout,
                            void* gw) override {
    cpu::conv_backward_weight(dt, g, N, O, x, gout, gw);
  }

  void optimizer_update(const UpdateArgs& a) override {
    // cost per element about twice an add's: updates of 16384 elements and more use every thread
    cpu::dispatch_float(a.dtype, "optimizer step", [&]<class T>() {
      cpu::parallel_for(a.n, 2, [&](int64_t b, int64_t e) { cpu::isa_call([&] { apply_update<T>(a, b, e); }); });
    });
  }
};

}  // namespace

Backend& cpu_backend() {
  static CpuBackend b;
  return b;
}

}  // namespace gv
