// gemm_conv.cu: the GEMM on CUDA (cuBLAS) and the convolutions built on it: our im2col and col2im
// kernels (engine/cuda/kernels.h, engine/cpu/conv.cpp's layout and order) around one product per
// chunk of images.
//
// cuBLAS is column-major; our C (M, N) is row-major, so we ask it for C^T = op(B)^T op(A)^T, an
// (N, M) column-major matrix with leading dimension ldc. An operand goes in as it lies when one of
// its strides is 1 (transposed by flag, never by a copy); otherwise (a broadcast or doubly strided
// view) it is first copied into a packed scratch matrix by our strided copy kernel.
//
// Determinism: one cuBLAS handle per device on the legacy stream, atomics not allowed, no TF32
// (cuda::allow_nondeterministic turns TF32 on). The weight gradient sums the chunks into gw one
// after another, in batch order.
//
// cuBLAS is loaded with dlopen on the first product, not linked: loading libcublas (and the
// libcublasLt it pulls in) costs about 210 MiB of resident memory and 0.1 s, which every CPU-only
// process paid before (docs/performance.md).
#include <cublas_v2.h>
#include <dlfcn.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstdlib>
#include <mutex>
#include <optional>
#include <string>
#include <type_traits>

#include "engine/cuda/launch.h"

namespace gv::cuda {
namespace {

using detail::Scratch;

const char* cublas_status_name(cublasStatus_t s) {
  switch (s) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
    case CUBLAS_STATUS_MAPPING_ERROR: return "CUBLAS_STATUS_MAPPING_ERROR";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    default: return "an unknown cuBLAS status";
  }
}

void check_cublas(cublasStatus_t s, const std::string& what) {
  if (s != CUBLAS_STATUS_SUCCESS)
    detail::throw_device_error("cuBLAS error: " + what + " failed: " + cublas_status_name(s) + " (" +
                                   std::to_string(int(s)) + ")",
                               __FILE__, __LINE__);
}

// The five cuBLAS functions we call, resolved from the library on first use. cublas_v2.h maps
// cublasCreate, cublasSgemm and cublasDgemm to their _v2 symbols, so those are the names looked up.
struct CublasApi {
  decltype(&cublasCreate_v2) create = nullptr;
  decltype(&cublasSetAtomicsMode) set_atomics_mode = nullptr;
  decltype(&cublasSetMathMode) set_math_mode = nullptr;
  decltype(&cublasSgemm_v2) sgemm = nullptr;
  decltype(&cublasDgemm_v2) dgemm = nullptr;
  std::string path;  // the file that was loaded
};

std::string dlerror_text() {
  const char* why = dlerror();
  return why ? why : "no reason given";
}

const CublasApi& cublas() {
  static const CublasApi api = [] {
    const std::string soname = "libcublas.so." + std::to_string(CUBLAS_VER_MAJOR);
    // the executable's run path, LD_LIBRARY_PATH and ld.so's cache, then the toolkit we built with
    std::string tried = soname;
    void* lib = dlopen(soname.c_str(), RTLD_NOW | RTLD_LOCAL);
    std::string why = lib ? "" : dlerror_text();
#ifdef GV_CUDA_LIBDIR
    const std::string dirs = GV_CUDA_LIBDIR;  // ':'-separated
    for (size_t at = 0; !lib && at <= dirs.size();) {
      const size_t end = std::min(dirs.find(':', at), dirs.size());
      const std::string full = dirs.substr(at, end - at) + "/" + soname;
      tried += ", " + full;
      lib = dlopen(full.c_str(), RTLD_NOW | RTLD_LOCAL);
      if (!lib) why = dlerror_text();
      at = end + 1;
    }
#endif
    if (!lib) {
      detail::throw_device_error("cuBLAS: cannot load " + soname + " (tried " + tried + "): " +
                                     why +
                                     "; put the CUDA toolkit's lib64 folder in LD_LIBRARY_PATH",
                                 __FILE__, __LINE__);
    }
    CublasApi a;
    auto resolve = [&](auto& fn, const char* name) {
      dlerror();  // clear a stale error, so that the one read below is dlsym's
      fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(dlsym(lib, name));
      if (!fn)
        detail::throw_device_error("cuBLAS: " + soname + " has no symbol " + name + ": " + dlerror_text(), __FILE__,
                                   __LINE__);
    };
    resolve(a.create, "cublasCreate_v2");
    resolve(a.set_atomics_mode, "cublasSetAtomicsMode");
    resolve(a.set_math_mode, "cublasSetMathMode");
    resolve(a.sgemm, "cublasSgemm_v2");
    resolve(a.dgemm, "cublasDgemm_v2");
    Dl_info info{};
    a.path = dladdr(reinterpret_cast<void*>(a.create), &info) && info.dli_fname ? info.dli_fname : soname;
    return a;  // the library stays loaded for the life of the process
  }();
  return api;
}

}  // namespace

std::string cublas_library() { return cublas().path; }

namespace {

cublasHandle_t handle(int device) {
  static std::mutex m;
  static cublasHandle_t handles[16] = {};
  static bool tf32[16] = {};
  std::lock_guard<std::mutex> lock(m);
  if (handles[device] == nullptr) {
    const CublasApi& api = cublas();
    check_cublas(api.create(&handles[device]), "cublasCreate on cuda:" + std::to_string(device));
    check_cublas(api.set_atomics_mode(handles[device], CUBLAS_ATOMICS_NOT_ALLOWED), "cublasSetAtomicsMode");
    check_cublas(api.set_math_mode(handles[device], CUBLAS_DEFAULT_MATH), "cublasSetMathMode");
  }
  const bool want = nondeterministic_allowed();
  if (tf32[device] != want) {
    check_cublas(cublas().set_math_mode(handles[device], want ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH),
                 "cublasSetMathMode");
    tf32[device] = want;
  }
  return handles[device];
}

// One operand as cuBLAS reads it: the pointer, whether it is transposed, its leading dimension.
struct Operand {
  const void* p;
  cublasOperation_t op;
  int64_t ld;
};

// The (rows x cols) column-major matrix X with X[i, j] at p + i * ri + j * rj (element strides):
// as it lies when ri == 1 (ld = rj) or rj == 1 (transposed, ld = ri); else packed into `pack`.
template <class T>
Operand operand(const T* p, int64_t rows, int64_t cols, int64_t ri, int64_t rj, std::optional<Scratch>& pack,
                int device) {
  const kern::BlasOperand bo = kern::blas_operand(rows, cols, ri, rj);
  if (!bo.packed) return {p, bo.trans ? CUBLAS_OP_T : CUBLAS_OP_N, bo.ld};
  // pack X column-major (rows, cols): dst[i + j rows] = p[i ri + j rj], by the strided copy kernel
  pack.emplace(size_t(rows * cols) * sizeof(T), device);
  TensorRef dst, src;
  dst.data = pack->p;
  src.data = const_cast<T*>(p);
  dst.dtype = src.dtype = dtype_of<T>::value;
  dst.ndim = src.ndim = 2;
  dst.shape[0] = src.shape[0] = cols;
  dst.shape[1] = src.shape[1] = rows;
  dst.strides[0] = rows;
  dst.strides[1] = 1;
  src.strides[0] = rj;
  src.strides[1] = ri;
  copy(dst, src, device);
  return {pack->p, CUBLAS_OP_N, bo.ld};
}

template <class T>
void gemm_typed(const GemmArgs& g, int device) {
  for (int64_t v : {g.M, g.N, g.K, g.ldc})
    if (v > INT_MAX)
      detail::throw_device_error(std::string(g.op) + " on cuda: a dimension of " + std::to_string(v) +
                                     " is beyond cuBLAS's int range",
                                 __FILE__, __LINE__);
  if (g.M == 0 || g.N == 0) return;
  T* c = static_cast<T*>(g.c);
  if (g.K == 0) {  // C = beta C
    TensorRef cr;
    cr.data = c;
    cr.dtype = dtype_of<T>::value;
    cr.ndim = 2;
    cr.shape[0] = g.M;
    cr.shape[1] = g.N;
    cr.strides[0] = g.ldc;
    cr.strides[1] = 1;
    if (g.beta == 0) fill(cr, 0.0, device);
    else if (g.beta != 1) {
      TensorRef br = cr;
      T beta = T(g.beta);
      Scratch s(sizeof(T), device);
      copy_to_device(s.p, &beta, sizeof(T), device);
      br.data = s.p;
      br.strides[0] = br.strides[1] = 0;
      binary(BinaryOp::mul, cr, cr, br, device);
    }
    return;
  }
  detail::set_device(device, g.op);
  // C^T (N x M) = X (N x K) Y (K x M): X = op(B)^T, X[j, k] = b[k rsb + j csb]; Y = op(A)^T,
  // Y[k, i] = a[i rsa + k csa]
  std::optional<Scratch> pack_x, pack_y;  // packed copies, when an operand needs one
  const Operand x = operand<T>(static_cast<const T*>(g.b), g.N, g.K, g.csb, g.rsb, pack_x, device);
  const Operand y = operand<T>(static_cast<const T*>(g.a), g.K, g.M, g.csa, g.rsa, pack_y, device);
  const T alpha = T(g.alpha), beta = T(g.beta);
  cublasHandle_t h = handle(device);
  cublasStatus_t s;
  if constexpr (std::is_same_v<T, float>)
    s = cublas().sgemm(h, x.op, y.op, int(g.N), int(g.M), int(g.K), &alpha, static_cast<const float*>(x.p), int(x.ld),
                    static_cast<const float*>(y.p), int(y.ld), &beta, c, int(g.ldc));
  else
    s = cublas().dgemm(h, x.op, y.op, int(g.N), int(g.M), int(g.K), &alpha, static_cast<const double*>(x.p), int(x.ld),
                    static_cast<const double*>(y.p), int(y.ld), &beta, c, int(g.ldc));
  check_cublas(s, std::string(g.op) + " (" + std::to_string(g.M) + "x" + std::to_string(g.K) + " by " +
                      std::to_string(g.K) + "x" + std::to_string(g.N) + ")");
}

// ---- convolutions ---------------------------------------------------------------------------------
template <class T>
__global__ void im2col_kernel(kern::ConvArgs a, const T* x, T* col) {
  kern::im2col_body<T>(kern::Grid{blockIdx.x, threadIdx.x, blockDim.x, gridDim.x}, a, x, col);
}
template <class T>
__global__ void col2im_kernel(kern::ConvArgs a, const T* col, const T* init, T* img) {
  kern::col2im_body<T>(kern::Grid{blockIdx.x, threadIdx.x, blockDim.x, gridDim.x}, a, col, init, img);
}
template <class T>
__global__ void unpack_rows_kernel(const T* y, int64_t m, int64_t O, int64_t L, const T* bias, T* out) {
  kern::unpack_rows_body<T>(kern::Grid{blockIdx.x, threadIdx.x, blockDim.x, gridDim.x}, y, m, O, L, bias, out);
}
template <class T>
__global__ void pack_rows_kernel(const T* gout, int64_t m, int64_t O, int64_t L, T* G) {
  kern::pack_rows_body<T>(kern::Grid{blockIdx.x, threadIdx.x, blockDim.x, gridDim.x}, gout, m, O, L, G);
}

constexpr int64_t kColBudgetBytes = int64_t(256) << 20;  // the col buffer that sets the chunk

kern::ConvArgs conv_args(const ConvShape& g, int64_t m) { return {g, m}; }
template <class T>
int64_t chunk(int64_t N, const ConvShape& g) {
  const int64_t per = std::max<int64_t>(1, g.C * g.kh * g.kw * g.Ho * g.Wo * int64_t(sizeof(T)));
  return std::clamp<int64_t>(kColBudgetBytes / per, 1, std::max<int64_t>(N, 1));
}
kern::Launch grid(int64_t n, int device) { return kern::launch_for(n, detail::sm_count(device)); }
#define GV_LAUNCH(kernel, n, ...)                                                     \
  do {                                                                                \
    const kern::Launch l_ = grid((n), device);                                        \
    kernel<<<unsigned(l_.blocks), unsigned(l_.threads)>>>(__VA_ARGS__);               \
    detail::check_launch(#kernel, l_, device);                                        \
  } while (0)

GemmArgs rowmajor(const char* op, DType dt, int64_t M, int64_t N, int64_t K, bool ta, bool tb, const void* a,
                  const void* b, void* c, bool accumulate) {
  // A stored (M, K) or, transposed, (K, M); B stored (K, N) or (N, K); C (M, N)
  GemmArgs g{op, dt, M, N, K, 1.0, accumulate ? 1.0 : 0.0, a, ta ? 1 : K, ta ? M : 1, b, tb ? 1 : N, tb ? K : 1, c, N};
  return g;
}

template <class T>
void conv_forward_t(const ConvShape& g, int64_t N, int64_t O, const T* x, const T* w, const T* bias, T* out,
                    int device) {
  const int64_t K = g.C * g.kh * g.kw, L = g.Ho * g.Wo, nb = chunk<T>(N, g);
  Scratch col(size_t(K * nb * L) * sizeof(T), device), y(size_t(O * nb * L) * sizeof(T), device);
  for (int64_t n0 = 0; n0 < N; n0 += nb) {
    const int64_t m = std::min(nb, N - n0);
    const kern::ConvArgs a = conv_args(g, m);
    GV_LAUNCH(im2col_kernel<T>, K * m * L, a, x + n0 * g.C * g.H * g.W, col.as<T>());
    gemm(rowmajor("conv2d", dtype_of<T>::value, O, m * L, K, false, false, w, col.p, y.p, false), device);
    GV_LAUNCH(unpack_rows_kernel<T>, m * O * L, y.as<T>(), m, O, L, bias, out + n0 * O * L);
  }
}

template <class T>
void conv_backward_input_t(const ConvShape& g, int64_t N, int64_t O, const T* gout, const T* w, const T* init, T* gx,
                           int device) {
  const int64_t K = g.C * g.kh * g.kw, L = g.Ho * g.Wo, nb = chunk<T>(N, g);
  Scratch gcol(size_t(K * nb * L) * sizeof(T), device), G(size_t(O * nb * L) * sizeof(T), device);
  for (int64_t n0 = 0; n0 < N; n0 += nb) {
    const int64_t m = std::min(nb, N - n0);
    GV_LAUNCH(pack_rows_kernel<T>, m * O * L, gout + n0 * O * L, m, O, L, G.as<T>());
    gemm(rowmajor("conv2d_backward_input", dtype_of<T>::value, K, m * L, O, true, false, w, G.p, gcol.p, false), device);
    GV_LAUNCH(col2im_kernel<T>, m * g.C * g.H * g.W, conv_args(g, m), gcol.as<T>(), init, gx + n0 * g.C * g.H * g.W);
  }
}

template <class T>
void conv_backward_weight_t(const ConvShape& g, int64_t N, int64_t O, const T* x, const T* gout, T* gw, int device) {
  const int64_t K = g.C * g.kh * g.kw, L = g.Ho * g.Wo, nb = chunk<T>(N, g);
  Scratch col(size_t(K * nb * L) * sizeof(T), device), G(size_t(O * nb * L) * sizeof(T), device);
  for (int64_t n0 = 0; n0 < N; n0 += nb) {
    const int64_t m = std::min(nb, N - n0);
    GV_LAUNCH(pack_rows_kernel<T>, m * O * L, gout + n0 * O * L, m, O, L, G.as<T>());
    GV_LAUNCH(im2col_kernel<T>, K * m * L, conv_args(g, m), x + n0 * g.C * g.H * g.W, col.as<T>());
    // gw = G col^T, the first chunk overwrites (beta 0 never reads gw), the others add
    gemm(rowmajor("conv2d_backward_weight", dtype_of<T>::value, O, K, m * L, false, true, G.p, col.p, gw, n0 > 0), device);
  }
  if (N == 0) {
    TensorRef r;
    r.data = gw;
    r.dtype = dtype_of<T>::value;
    r.ndim = 1;
    r.shape[0] = O * K;
    r.strides[0] = 1;
    fill(r, 0.0, device);
  }
}

// The choice of convolution: GENVAE_CUDA_CONV at first use, unless set_conv_impl came first.
std::atomic<int> g_conv_impl{-1};

}  // namespace

void set_conv_impl(ConvImpl impl) { g_conv_impl.store(int(impl)); }

ConvImpl conv_impl() {
  int v = g_conv_impl.load();
  if (v < 0) {
    const char* e = std::getenv("GENVAE_CUDA_CONV");
    const std::string s = e ? e : "im2col";
    if (s != "im2col" && s != "cudnn")
      detail::throw_device_error("GENVAE_CUDA_CONV=" + s + ": must be im2col (ours, the default) or cudnn", __FILE__,
                                 __LINE__);
    v = s == "cudnn" ? int(ConvImpl::cudnn) : int(ConvImpl::im2col);
    int expected = -1;
    g_conv_impl.compare_exchange_strong(expected, v);
    v = g_conv_impl.load();
  }
  return ConvImpl(v);
}

void gemm(const GemmArgs& g, int device) {
  detail::dispatch_float(g.dtype, g.op, [&]<class T>() { gemm_typed<T>(g, device); });
}

void conv_forward(DType dt, const ConvShape& g, int64_t N, int64_t O, const void* x, const void* w, const void* bias,
                  void* out, int device) {
  if (conv_impl() == ConvImpl::cudnn) return cudnn_conv_forward(dt, g, N, O, x, w, bias, out, device);
  detail::set_device(device, "conv2d");
  detail::dispatch_float(dt, "conv2d", [&]<class T>() {
    conv_forward_t<T>(g, N, O, static_cast<const T*>(x), static_cast<const T*>(w), static_cast<const T*>(bias),
                      static_cast<T*>(out), device);
  });
}
void conv_backward_input(DType dt, const ConvShape& g, int64_t N, int64_t O, const void* gout, const void* w,
                         const void* init, void* gx, int device) {
  if (conv_impl() == ConvImpl::cudnn) return cudnn_conv_backward_input(dt, g, N, O, gout, w, init, gx, device);
  detail::set_device(device, "conv2d_backward_input");
  detail::dispatch_float(dt, "conv2d_backward_input", [&]<class T>() {
    conv_backward_input_t<T>(g, N, O, static_cast<const T*>(gout), static_cast<const T*>(w),
                             static_cast<const T*>(init), static_cast<T*>(gx), device);
  });
}
void conv_backward_weight(DType dt, const ConvShape& g, int64_t N, int64_t O, const void* x, const void* gout,
                          void* gw, int device) {
  if (conv_impl() == ConvImpl::cudnn) return cudnn_conv_backward_weight(dt, g, N, O, x, gout, gw, device);
  detail::set_device(device, "conv2d_backward_weight");
  detail::dispatch_float(dt, "conv2d_backward_weight", [&]<class T>() {
    conv_backward_weight_t<T>(g, N, O, static_cast<const T*>(x), static_cast<const T*>(gout), static_cast<T*>(gw),
                              device);
  });
}

}  // namespace gv::cuda
