// test_cuda.cpp: the CUDA backend against the CPU. A standalone program: exits 77 (meson's SKIP)
// with a line saying why when the build has no CUDA or no GPU can be used, 0 when every check
// passes, 1 otherwise, printing each failure.
//
// Checks: every unary op in float32 and float64 against the CPU on the same input (random values
// plus special ones: zeros, infinities, NaN, overflow ranges), host -> device -> host round trips
// bit for bit, device-to-device copies (Tensor::copy_, clone, raw offsets, overlapping ranges),
// and clear errors: ops with no CUDA kernel, int64 unary, a bad device index, an impossible
// allocation (after which the device must still work).
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "engine/cuda/cuda_backend.h"
#include "engine/cuda/cuda_info.h"
#include "engine/ops.h"
#include "engine/random.h"
#include "nn/distributed.h"
#include "nn/layers.h"
#include "nn/optim.h"
#include "tests/autograd/registry.h"
#include "engine/tensor.h"

using namespace gv;

namespace {

// The device under test. GENVAE_TEST_CUDA_DRY_RUN=1 sets it to the CPU and runs only the parity
// sections, CPU against CPU: that checks the tests' own code on a machine without a GPU (every
// comparison must then hold exactly), not the GPU.
Device kGpu = Device::cuda(0);
bool g_dry = false;
bool dry_runs(const char* name) {
  for (const char* s : {"the whole backend", "fused optimizer", "every registry case", "the masked PixelCNN"})
    if (std::string(name).rfind(s, 0) == 0) return true;
  return false;
}

int g_failures = 0;
int g_checks = 0;

void fail(const std::string& msg, int line) {
  ++g_failures;
  std::printf("FAIL [test_cuda.cpp:%d] %s\n", line, msg.c_str());
}

#define EXPECT(cond, msg)                      \
  do {                                         \
    ++g_checks;                                \
    if (!(cond)) fail(std::string(msg), __LINE__); \
  } while (0)

// Runs body; an exception escaping it is a failure of that section.
void section(const char* name, const std::function<void()>& body) {
  if (g_dry && !dry_runs(name)) return;
  const int before = g_failures;
  try {
    body();
  } catch (const std::exception& e) {
    fail(std::string(name) + ": unexpected exception: " + e.what(), __LINE__);
  }
  std::printf("%s %s\n", g_failures == before ? "ok  " : "FAIL", name);
  std::fflush(stdout);
}

// Expects body to throw an exception of type E whose message contains every one of `needles`.
template <class E>
void expect_throw(const char* what, const std::function<void()>& body,
                  const std::vector<std::string>& needles, int line) {
  ++g_checks;
  try {
    body();
  } catch (const E& e) {
    const std::string m = e.what();
    for (const auto& n : needles)
      if (m.find(n) == std::string::npos) {
        fail(std::string(what) + ": message lacks \"" + n + "\": " + m, line);
        return;
      }
    std::printf("     %s -> %s\n", what, m.c_str());
    return;
  } catch (const std::exception& e) {
    fail(std::string(what) + ": threw the wrong kind of error: " + e.what(), line);
    return;
  }
  fail(std::string(what) + ": did not throw", line);
}


// Input for an op: random values in the op's interesting range, then special values.
template <class T>
std::vector<T> make_input(UnaryOp op, int64_t n, std::mt19937_64& rng) {
  double lo = -8, hi = 8;
  if (op == UnaryOp::log || op == UnaryOp::sqrt) lo = 1e-4, hi = 60;
  if (op == UnaryOp::log1p) lo = -0.999, hi = 60;
  if (op == UnaryOp::exp) lo = -60, hi = 60;
  std::uniform_real_distribution<double> u(lo, hi);
  std::vector<T> v(n);
  for (auto& x : v) x = T(u(rng));
  const T inf = std::numeric_limits<T>::infinity();
  const T specials[] = {T(0), -T(0), T(1), T(-1), T(0.5), T(-0.5), T(1e-30), T(-1e-30), T(30),
                        T(-30), T(100), T(-100), T(800), T(-800), inf, -inf,
                        std::numeric_limits<T>::quiet_NaN(), std::numeric_limits<T>::denorm_min(),
                        std::numeric_limits<T>::max(), std::numeric_limits<T>::lowest(),
                        T(-0.999999), T(0.75), T(-0.25)};
  // spread them through the array (not only at the start)
  size_t k = 0;
  for (int64_t i = 0; i < n && k < std::size(specials); i += n / int64_t(std::size(specials)) + 1)
    v[i] = specials[k++];
  return v;
}

template <class T>
bool is_close(T gpu, T cpu, double atol, double rtol, double* badness) {
  *badness = 0;
  if (std::isnan(cpu) || std::isnan(gpu)) return std::isnan(cpu) && std::isnan(gpu);
  if (std::isinf(cpu) || std::isinf(gpu)) return gpu == cpu;
  const double err = std::fabs(double(gpu) - double(cpu));
  const double tol = atol + rtol * std::fabs(double(cpu));
  *badness = err / tol;
  return err <= tol;
}

struct OpCase {
  UnaryOp op;
  double a, b;
};

std::vector<OpCase> op_cases() {
  std::vector<OpCase> cases;
#define GV_ADD(name, F) cases.push_back({UnaryOp::name, 0.0, 0.0});
  GV_UNARY_OPS_NOARG(GV_ADD)
#undef GV_ADD
  cases.push_back({UnaryOp::leaky_relu, 0.01, 0.0});
  cases.push_back({UnaryOp::leaky_relu, 0.2, 0.0});
  cases.push_back({UnaryOp::clamp, -0.5, 0.75});
  cases.push_back({UnaryOp::clamp, -3.0, 3.0});
  return cases;
}

// CUDA unary vs CPU unary on the same input of n elements.
template <class T>
void check_unary_vs_cpu(const OpCase& c, int64_t n, std::mt19937_64& rng) {
  // device math (CUDA's libdevice) differs from glibc by a few ulp at most
  const double atol = std::is_same_v<T, float> ? 1e-6 : 1e-13;
  const double rtol = std::is_same_v<T, float> ? 1e-5 : 1e-12;
  const char* name = unary_op_name(c.op);
  const std::vector<T> in = make_input<T>(c.op, n, rng);
  const Tensor x = Tensor::from_vector(in, {n});
  const Tensor y_cpu = unary(c.op, x, c.a, c.b);
  const Tensor xg = x.to(kGpu);
  const Tensor yg = unary(c.op, xg, c.a, c.b);
  char params[64] = "";
  if (c.op == UnaryOp::leaky_relu) std::snprintf(params, sizeof params, "(%g)", c.a);
  if (c.op == UnaryOp::clamp) std::snprintf(params, sizeof params, "(%g, %g)", c.a, c.b);
  const std::string label = std::string(name) + params + " " + dtype_name(dtype_of<T>::value) +
                            " n=" + std::to_string(n);
  EXPECT(yg.device() == kGpu, label + ": result is on " + yg.device().str());
  EXPECT(yg.dtype() == x.dtype(), label + ": result dtype " + dtype_name(yg.dtype()));
  EXPECT(yg.shape() == x.shape(), label + ": result shape " + shape_str(yg.shape()));
  // the input must be left as it was
  const std::vector<T> in_back = xg.to(Device::cpu()).template to_vector<T>();
  EXPECT(std::memcmp(in_back.data(), in.data(), n * sizeof(T)) == 0, label + ": input changed");

  const std::vector<T> cpu = y_cpu.template to_vector<T>();
  const std::vector<T> gpu = yg.to(Device::cpu()).template to_vector<T>();
  int64_t bad = 0, worst = -1;
  double worst_badness = -1;
  for (int64_t i = 0; i < n; ++i) {
    double b = 0;  // |cuda - cpu| / tolerance; a NaN or infinity mismatch counts as infinite
    if (!is_close(gpu[i], cpu[i], atol, rtol, &b)) {
      ++bad;
      if (!(b > 1)) b = std::numeric_limits<double>::infinity();
    }
    if (b > worst_badness) worst = i, worst_badness = b;
  }
  ++g_checks;
  if (bad > 0) {
    char buf[512];
    std::snprintf(buf, sizeof buf,
                  "%s: %lld of %lld elements differ from the CPU beyond atol %g + rtol %g; worst at "
                  "[%lld]: x = %.17g, cpu = %.17g, cuda = %.17g",
                  label.c_str(), (long long)bad, (long long)n, atol, rtol, (long long)worst,
                  double(in[worst]), double(cpu[worst]), double(gpu[worst]));
    fail(buf, __LINE__);
  } else if (n > 1000) {
    std::printf("     %-34s worst |cuda-cpu|/tol = %.3g at [%lld] (x = %.9g)\n", label.c_str(),
                worst_badness < 0 ? 0.0 : worst_badness, (long long)worst, double(in[worst]));
  }
}

// Random bytes for n elements of dtype (any bit pattern: NaN payloads, denormals, -0).
Tensor random_bits(const Shape& shape, DType dtype, std::mt19937_64& rng) {
  Tensor t = Tensor::empty(shape, dtype);
  auto* p = static_cast<unsigned char*>(t.raw_data());
  const size_t nbytes = size_t(t.numel()) * dtype_size(dtype);
  for (size_t i = 0; i < nbytes; ++i) p[i] = static_cast<unsigned char>(rng() >> 56);
  return t;
}

bool same_bytes(const Tensor& a, const Tensor& b) {
  const size_t n = size_t(a.numel()) * dtype_size(a.dtype());
  return a.numel() == b.numel() && a.dtype() == b.dtype() && a.device().is_cpu() &&
         b.device().is_cpu() && a.is_contiguous() && b.is_contiguous() &&
         (n == 0 || std::memcmp(a.raw_data(), b.raw_data(), n) == 0);
}

// Without a usable GPU, asking for a CUDA tensor must fail with a DeviceError that says why.
// Returns whether it did.
bool no_gpu_error_is_clear(const std::vector<std::string>& needles) {
  expect_throw<DeviceError>("a CUDA tensor without a GPU",
                            [] { (void)Tensor::ones({4}, DType::f32, kGpu); }, needles, __LINE__);
  return g_failures == 0;
}

}  // namespace

int main() {
  if (const char* d = std::getenv("GENVAE_TEST_CUDA_DRY_RUN"); d && std::string(d) == "1") {
    g_dry = true;
    kGpu = Device::cpu();
    std::printf("dry run: the parity sections with the CPU as the device under test\n");
  }
  if (!g_dry && !cuda_compiled()) {
    if (!no_gpu_error_is_clear({"no CUDA backend", "-Dcuda=enabled"})) return 1;
    std::printf("SKIP: this build has no CUDA backend (configured with -Dcuda=disabled, or nvcc "
                "was not found)\n");
    return 77;
  }
  if (!g_dry && !cuda_available()) {
    if (!no_gpu_error_is_clear({"CUDA error", "cudaSetDevice", "hint"})) return 1;
    std::printf("SKIP: no CUDA device available (%s)\n", cuda::describe_devices().c_str());
    return 77;
  }
  if (!g_dry) std::printf("CUDA devices: %s\n", cuda::describe_devices().c_str());
  std::mt19937_64 rng(20170615);

  section("unary ops match the CPU (float32, float64)", [&] {
    // sizes: empty, one element, not a multiple of the block, and more than one grid-stride pass
    for (const OpCase& c : op_cases())
      for (int64_t n : {int64_t(0), int64_t(1), int64_t(1000), int64_t(3'000'017)}) {
        check_unary_vs_cpu<float>(c, n, rng);
        check_unary_vs_cpu<double>(c, n, rng);
      }
  });

  section("unary on shapes: scalar, 3-D, views of contiguous data", [&] {
    const Tensor s = Tensor::scalar(-2.5, DType::f64, kGpu);
    const Tensor r = gv::relu(s);
    EXPECT(r.shape().empty() && r.device() == kGpu, "relu of a scalar: " + r.str());
    EXPECT(r.item() == 0.0, "relu(-2.5) on cuda = " + std::to_string(r.item()));
    EXPECT(gv::exp(Tensor::scalar(0.0, DType::f32, kGpu)).item() == 1.0, "exp(0) on cuda != 1");
    const Tensor x3 = random_bits({4, 5, 6}, DType::f32, rng);
    const Tensor x = gv::clamp(x3, -1e30, 1e30);  // finite values from random bits (NaN stays NaN)
    const Tensor yc = gv::tanh(x), yg = gv::tanh(x.to(kGpu));
    EXPECT(yg.shape() == Shape({4, 5, 6}), "tanh keeps the shape: " + shape_str(yg.shape()));
    const auto a = yc.to_vector<float>(), b = yg.to_vector<float>();
    int bad = 0;
    for (size_t i = 0; i < a.size(); ++i) {
      double w;
      bad += !is_close(b[i], a[i], 1e-6, 1e-5, &w);
    }
    EXPECT(bad == 0, std::to_string(bad) + " tanh values of a 3-D tensor differ from the CPU");
    // a contiguous view with an offset: the kernel must start at the view's first element
    const Tensor full_g = x.to(kGpu).reshape({120});
    const Tensor part = full_g.slice(0, 30, 90);
    EXPECT(part.is_contiguous(), "slice of a 1-D tensor is contiguous");
    const auto pc = gv::neg(x.reshape({120}).slice(0, 30, 90)).to_vector<float>();
    const auto pg = gv::neg(part).to_vector<float>();
    EXPECT(std::memcmp(pc.data(), pg.data(), pc.size() * sizeof(float)) == 0,
           "neg of an offset view differs from the CPU");
  });

  section("host -> device -> host round trips are bit-identical", [&] {
    for (DType dt : {DType::f32, DType::f64, DType::i64})
      for (Shape shape : {Shape{0}, Shape{}, Shape{1}, Shape{7}, Shape{0, 5}, Shape{333, 17},
                          Shape{1 << 20, 3}}) {
        const Tensor h = random_bits(shape, dt, rng);
        const Tensor g = h.to(kGpu);
        EXPECT(g.device() == kGpu && g.shape() == shape && g.dtype() == dt,
               "upload gives " + g.str());
        const Tensor back = g.to(Device::cpu());
        EXPECT(same_bytes(h, back), std::string("round trip changed bytes: ") + h.str());
      }
    // a non-contiguous host tensor is uploaded in logical (row-major) order
    const Tensor h = random_bits({64, 48}, DType::f64, rng);
    const Tensor ht = h.t();
    EXPECT(same_bytes(ht.contiguous(), ht.to(kGpu).to(Device::cpu())),
           "upload of a transposed host tensor is not its row-major copy");
    // to_vector and item read through the device
    const Tensor v = Tensor::from_list({1.5, -2.25, 3.0}, {3}, DType::f64).to(kGpu);
    EXPECT(v.to_vector<double>() == std::vector<double>({1.5, -2.25, 3.0}),
           "to_vector of a cuda tensor");
  });

  section("copies on the device", [&] {
    for (DType dt : {DType::f32, DType::f64, DType::i64}) {
      const Tensor h = random_bits({1000, 33}, dt, rng);
      const Tensor g = h.to(kGpu);
      Tensor d = Tensor::empty({1000, 33}, dt, kGpu);
      d.copy_(g);  // device -> device
      EXPECT(!d.same_storage(g), "copy_ target shares storage with its source");
      EXPECT(same_bytes(h, d.to(Device::cpu())), std::string("copy_ on cuda changed bytes: ") + d.str());
      const Tensor c = g.clone();
      EXPECT(same_bytes(h, c.to(Device::cpu())), std::string("clone on cuda changed bytes: ") + c.str());
      Tensor e = Tensor::empty({1000, 33}, dt, kGpu);
      e.copy_(h);  // host tensor into a device tensor
      EXPECT(same_bytes(h, e.to(Device::cpu())), "copy_ from the host into cuda changed bytes");
    }
    // fill_ / full / zeros on the device
    const Tensor f = Tensor::full({5, 5}, 0.125, DType::f32, kGpu);
    for (float x : f.to_vector<float>()) EXPECT(x == 0.125f, "full on cuda: " + std::to_string(x));
    Tensor z = Tensor::zeros({17}, DType::f64, kGpu);
    z.fill_(-3.0);
    for (double x : z.to_vector<double>()) EXPECT(x == -3.0, "fill_ on cuda: " + std::to_string(x));

    // the backend directly: offsets into one buffer, and overlapping ranges (memmove semantics)
    const int64_t n = 4096;
    std::vector<int64_t> host(n);
    for (int64_t i = 0; i < n; ++i) host[i] = i * 1000003 + 7;
    const size_t nb = n * sizeof(int64_t);
    void* p = cuda::alloc(nb, 0);
    void* q = cuda::alloc(nb, 0);
    cuda::copy_to_device(p, host.data(), nb, 0);
    cuda::copy_on_device(q, p, nb, 0);
    auto* qi = static_cast<int64_t*>(q);
    auto* pi = static_cast<int64_t*>(p);
    cuda::copy_on_device(qi + 100, pi + 2000, 500 * sizeof(int64_t), 0);  // disjoint sub-range
    std::vector<int64_t> want = host;
    std::copy(host.begin() + 2000, host.begin() + 2500, want.begin() + 100);
    std::vector<int64_t> got(n, -1);
    cuda::copy_to_host(got.data(), q, nb, 0);
    EXPECT(got == want, "copy_on_device of a sub-range at an offset");
    cuda::copy_on_device(pi + 10, pi, 3000 * sizeof(int64_t), 0);  // overlapping, forwards
    want = host;
    std::copy(host.begin(), host.begin() + 3000, want.begin() + 10);
    cuda::copy_to_host(got.data(), p, nb, 0);
    EXPECT(got == want, "copy_on_device of overlapping ranges (dst after src)");
    cuda::copy_to_device(p, host.data(), nb, 0);
    cuda::copy_on_device(pi, pi + 10, 3000 * sizeof(int64_t), 0);  // overlapping, backwards
    want = host;
    std::copy(host.begin() + 10, host.begin() + 3010, want.begin());
    cuda::copy_to_host(got.data(), p, nb, 0);
    EXPECT(got == want, "copy_on_device of overlapping ranges (dst before src)");
    cuda::synchronize(0);
    cuda::free(p, 0);
    cuda::free(q, 0);
    cuda::free(nullptr, 0);
    EXPECT(cuda::alloc(0, 0) == nullptr, "alloc of 0 bytes gives nullptr");
  });

  // The rest of the backend against the CPU: each op on the same inputs, views and broadcasts
  // included. Tolerances: float64 results within 1e-12 relative (the GPU's libm and cuBLAS's
  // summation order differ from ours by a few ulp); float32 within 1e-5 relative plus 1e-6
  // absolute (the same, at float32's unit roundoff 6e-8, times the sums' lengths here, <= 100).
  auto close_to_cpu = [&](const std::string& what, const Tensor& gpu, const Tensor& cpu) {
    EXPECT(gpu.device() == kGpu, what + ": result on " + gpu.device().str());
    EXPECT(gpu.shape() == cpu.shape(), what + ": shape " + shape_str(gpu.shape()) + " vs " + shape_str(cpu.shape()));
    if (gpu.shape() != cpu.shape()) return;
    const bool f32 = cpu.dtype() == DType::f32;
    const double atol = f32 ? 1e-6 : 1e-13, rtol = f32 ? 1e-5 : 1e-12;
    const auto g = gpu.to_vector<double>(), c = cpu.to_vector<double>();
    int64_t bad = 0, worst = -1;
    for (size_t i = 0; i < g.size(); ++i) {
      double b = 0;
      if (!is_close(g[i], c[i], atol, rtol, &b)) ++bad, worst = int64_t(i);
    }
    EXPECT(bad == 0, what + ": " + std::to_string(bad) + " of " + std::to_string(g.size()) +
                         " elements differ from the CPU" +
                         (worst >= 0 ? " (e.g. [" + std::to_string(worst) + "]: cuda " + std::to_string(g[size_t(worst)]) +
                                           ", cpu " + std::to_string(c[size_t(worst)]) + ")"
                                     : std::string()));
  };
  auto gpu_of = [](const Tensor& t) { return t.to(kGpu); };

  section("the whole backend matches the CPU (float32, float64)", [&] {
    for (DType dt : {DType::f32, DType::f64}) {
      const std::string d = std::string(" ") + dtype_name(dt);
      Generator g(5);
      const Tensor a = normal({3, 1, 50}, g, 0, 1, dt), b = normal({4, 50}, g, 0, 1, dt);
      const Tensor av = normal({50, 4, 3}, g, 0, 1, dt).permute({2, 1, 0});  // a strided view
      for (BinaryOp op : {BinaryOp::add, BinaryOp::sub, BinaryOp::mul, BinaryOp::div, BinaryOp::maximum,
                          BinaryOp::lt})
        close_to_cpu(std::string(binary_op_name(op)) + " broadcast" + d, binary(op, gpu_of(a), gpu_of(b)),
                     binary(op, a, b));
      close_to_cpu("add of a strided view" + d, gpu_of(av.contiguous()).permute({0, 1, 2}) + gpu_of(b),
                   av.contiguous() + b);
      close_to_cpu("contiguous() of a permuted view" + d, gpu_of(av.contiguous().permute({2, 0, 1})).contiguous(),
                   av.contiguous().permute({2, 0, 1}).contiguous());
      close_to_cpu("tanh backward" + d,
                   unary_backward(UnaryOp::tanh, gpu_of(av.contiguous()), gv::tanh(gpu_of(av.contiguous())),
                                  gpu_of(av.contiguous())),
                   unary_backward(UnaryOp::tanh, av.contiguous(), gv::tanh(av.contiguous()), av.contiguous()));
      close_to_cpu("where" + d, where(gpu_of(gt(a, b)), gpu_of(a), gpu_of(b)), where(gt(a, b), a, b));
      const Tensor big = normal({7, 300, 5}, g, 0, 1, dt);
      for (const Axes& ax : {Axes{0}, Axes{1}, Axes{2}, Axes{0, 2}, Axes{}}) {
        close_to_cpu("sum" + d, gv::sum(gpu_of(big), ax), gv::sum(big, ax));
        close_to_cpu("max" + d, gv::max(gpu_of(big), ax), gv::max(big, ax));
      }
      close_to_cpu("softmax" + d, softmax(gpu_of(big), 1), softmax(big, 1));
      close_to_cpu("log_softmax" + d, log_softmax(gpu_of(big), 2), log_softmax(big, 2));
      EXPECT(argmax(gpu_of(big), 1).to_vector<int64_t>() == argmax(big, 1).to_vector<int64_t>(), "argmax" + d);
      const Tensor xg = normal({6, 5}, g, 0, 1, dt);
      const Tensor idx = Tensor::from_vector<int64_t>({0, 4, 4, 1, 2, 3, 0, 0, 1, 4, 2, 2}, {6, 2});
      close_to_cpu("gather" + d, gather(gpu_of(xg), 1, gpu_of(idx)), gather(xg, 1, idx));
      const Tensor src = normal({6, 2}, g, 0, 1, dt);
      close_to_cpu("scatter_add" + d, scatter_add({6, 5}, 1, gpu_of(idx), gpu_of(src)), scatter_add({6, 5}, 1, idx, src));
      close_to_cpu("one_hot" + d, one_hot(gpu_of(idx), 5, dt), one_hot(idx, 5, dt));
      close_to_cpu("concat" + d, concat({gpu_of(a), gpu_of(a)}, 1), concat({a, a}, 1));
      // GEMM: plain, transposed operands by flag, a batch, and linear with its bias
      const Tensor m1 = normal({37, 19}, g, 0, 1, dt), m2 = normal({19, 23}, g, 0, 1, dt);
      close_to_cpu("matmul" + d, matmul(gpu_of(m1), gpu_of(m2)), matmul(m1, m2));
      close_to_cpu("matmul of transposed views" + d, matmul(gpu_of(m2).t(), gpu_of(m1).t()), matmul(m2.t(), m1.t()));
      const Tensor bm = normal({4, 8, 19}, g, 0, 1, dt);
      close_to_cpu("batched matmul" + d, matmul(gpu_of(bm), gpu_of(m2)), matmul(bm, m2));
      const Tensor w = normal({11, 19}, g, 0, 1, dt), bias = normal({11}, g, 0, 1, dt);
      close_to_cpu("linear" + d, linear(gpu_of(m1), gpu_of(w), gpu_of(bias)), linear(m1, w, bias));
      // convolutions
      const Tensor x = normal({3, 2, 9, 8}, g, 0, 1, dt), k = normal({4, 2, 3, 3}, g, 0, 1, dt), kb = normal({4}, g, 0, 1, dt);
      const Conv2dParams p = Conv2dParams::make(2, 1);
      const Tensor y = conv2d(x, k, kb, p), gy = normal(y.shape(), g, 0, 1, dt);
      close_to_cpu("conv2d" + d, conv2d(gpu_of(x), gpu_of(k), gpu_of(kb), p), y);
      close_to_cpu("conv2d_backward_input" + d, conv2d_backward_input(gpu_of(gy), gpu_of(k), x.shape(), p),
                   conv2d_backward_input(gy, k, x.shape(), p));
      close_to_cpu("conv2d_backward_weight" + d, conv2d_backward_weight(gpu_of(x), gpu_of(gy), k.shape(), p),
                   conv2d_backward_weight(x, gy, k.shape(), p));
      close_to_cpu("conv_transpose2d" + d, conv_transpose2d(gpu_of(y), gpu_of(k), Tensor(), p),
                   conv_transpose2d(y, k, Tensor(), p));
      // Philox: the same bits on both devices
      Generator c1(77), c2(77);
      for (int64_t n : {int64_t(1), int64_t(7), int64_t(100003)}) {
        EXPECT(uniform({n}, c1, -1, 2, dt, kGpu).to_vector<double>() == uniform({n}, c2, -1, 2, dt).to_vector<double>(),
               "uniform bits" + d);
        EXPECT(normal({n}, c1, 0.5, 3, dt, kGpu).to_vector<double>() == normal({n}, c2, 0.5, 3, dt).to_vector<double>(),
               "normal bits" + d);
        const Tensor pr = uniform({n}, c1, 0, 1, dt);
        (void)uniform({n}, c2, 0, 1, dt);
        EXPECT(bernoulli(gpu_of(pr), c1).to_vector<double>() == bernoulli(pr, c2).to_vector<double>(),
               "bernoulli bits" + d);
      }
    }
  });

  section("fused optimizer steps, gradient clipping and Module::to on the GPU match the CPU", [&] {
    for (DType dt : {DType::f32, DType::f64}) {
      Generator g(9);
      const Tensor w0 = normal({300, 7}, g, 0, 1, dt), g0 = normal({300, 7}, g, 0, 1, dt);
      auto run = [&](Device dev, const std::string& which) {
        ag::Var w(w0.to(dev).clone(), true);
        std::unique_ptr<nn::Optimizer> opt;
        if (which == "sgd") opt = std::make_unique<nn::SGD>(std::vector<nn::NamedVar>{{"w", w}}, 0.1, 0.9, 0.01, true);
        else if (which == "adam") opt = std::make_unique<nn::Adam>(std::vector<nn::NamedVar>{{"w", w}}, 0.01);
        else opt = std::make_unique<nn::Adamax>(std::vector<nn::NamedVar>{{"w", w}}, 0.01);
        for (int s = 0; s < 3; ++s) {
          w.set_grad(g0.to(dev).clone());
          (void)nn::clip_grad_norm({{"w", w}}, 5.0);
          opt->step();
        }
        return w.data();
      };
      for (const char* which : {"sgd", "adam", "adamax"})
        close_to_cpu(std::string(which) + " steps " + dtype_name(dt), run(kGpu, which), run(Device::cpu(), which));
    }
  });

  // The op registry of the gradient checks (tests/autograd/registry.cpp), every case on the GPU:
  // the forward value and, through sum(out * w) with fixed weights w, every input's gradient,
  // against the CPU's, in float64 and float32. The CPU's gradients are the ones the float64
  // gradient checks verify, so agreement carries that check over to the GPU.
  section("every registry case forward and backward on the GPU matches the CPU", [&] {
    int cases = 0;
    for (const test::OpCase& c : test::registry()) {
      for (DType dt : {DType::f64, DType::f32}) {
        const std::string what = c.op + " [" + c.label + "] " + dtype_name(dt);
        try {
          auto run = [&](Device dev, std::vector<Tensor>& grads) {
            std::vector<ag::Var> in;
            for (size_t i = 0; i < c.inputs.size(); ++i) {
              const Tensor t = test::sample_input(c.inputs[i], i + 31 * std::hash<std::string>{}(c.op + c.label));
              in.emplace_back(t.to(dt).to(dev), c.inputs[i].grad);
            }
            ag::Var out = c.fn(in);
            const Tensor w = test::sample_input({out.shape(), -1, 1}, 999).to(dt).to(dev);
            ag::sum(out * ag::Var(w)).backward();
            for (const ag::Var& v : in) grads.push_back(v.grad().defined() ? v.grad() : Tensor());
            return out.data();
          };
          std::vector<Tensor> gg, gc;
          const Tensor yg = run(kGpu, gg), yc = run(Device::cpu(), gc);
          close_to_cpu(what + " forward", yg, yc);
          for (size_t i = 0; i < gc.size(); ++i)
            if (gc[i].defined()) close_to_cpu(what + " gradient of input " + std::to_string(i), gg[i], gc[i]);
          ++cases;
        } catch (const std::exception& e) {
          fail(what + ": " + e.what(), __LINE__);
        }
      }
    }
    std::printf("     %d registry cases (each in float64 and float32) compared\n", cases / 2);
  });

  section("the masked PixelCNN convolutions (types A and B) on the GPU match the CPU, forward and backward", [&] {
    for (DType dt : {DType::f32, DType::f64})
      for (char type : {'A', 'B'})
        for (int64_t k : {3, 7}) {
          const std::string what = std::string("MaskedConv2d ") + type + " " + std::to_string(k) + "x" +
                                   std::to_string(k) + " " + dtype_name(dt);
          nn::ConvOptions opt;
          opt.dtype = dt;
          Generator g1(21), g2(21), gx(22);
          nn::MaskedConv2d cpu_layer(type, 3, 4, k, g1, opt), gpu_layer(type, 3, 4, k, g2, opt);
          gpu_layer.to(kGpu);
          const Tensor x = normal({2, 3, 9, 8}, gx, 0, 1, dt);
          ag::Var xc(x, true), xg(x.to(kGpu), true);
          const ag::Var yc = cpu_layer.forward(xc), yg = gpu_layer.forward(xg);
          close_to_cpu(what + " forward", yg.data(), yc.data());
          ag::sum(ag::square(yc)).backward();
          ag::sum(ag::square(yg)).backward();
          close_to_cpu(what + " input gradient", xg.grad(), xc.grad());
          const auto pc = cpu_layer.named_parameters(), pg = gpu_layer.named_parameters();
          for (size_t i = 0; i < pc.size(); ++i)
            close_to_cpu(what + " gradient of " + pc[i].first, pg[i].second.grad(), pc[i].second.grad());
        }
  });

  section("cuDNN's convolutions match the CPU, repeat bit for bit, and cache their algorithms", [&] {
    cuda::set_conv_impl(cuda::ConvImpl::cudnn);
    for (DType dt : {DType::f32, DType::f64}) {
      const std::string d = std::string(" (cuDNN) ") + dtype_name(dt);
      Generator g(15);
      const Tensor x = normal({4, 3, 11, 9}, g, 0, 1, dt), k = normal({5, 3, 3, 3}, g, 0, 1, dt), kb = normal({5}, g, 0, 1, dt);
      for (const Conv2dParams& p : {Conv2dParams::make(1, 1), Conv2dParams::make(2, 1), Conv2dParams::make(1, 2, 2)}) {
        const Tensor y = conv2d(x, k, kb, p), gy = normal(y.shape(), g, 0, 1, dt);
        const Tensor yg = conv2d(gpu_of(x), gpu_of(k), gpu_of(kb), p);
        close_to_cpu("conv2d" + d, yg, y);
        EXPECT(same_bytes(yg.to(Device::cpu()), conv2d(gpu_of(x), gpu_of(k), gpu_of(kb), p).to(Device::cpu())),
               "conv2d" + d + " differs between two runs");
        close_to_cpu("conv2d_backward_input" + d, conv2d_backward_input(gpu_of(gy), gpu_of(k), x.shape(), p),
                     conv2d_backward_input(gy, k, x.shape(), p));
        close_to_cpu("conv2d_backward_weight" + d, conv2d_backward_weight(gpu_of(x), gpu_of(gy), k.shape(), p),
                     conv2d_backward_weight(x, gy, k.shape(), p));
        const Tensor tb = normal({3}, g, 0, 1, dt);
        close_to_cpu("conv_transpose2d with bias" + d, conv_transpose2d(gpu_of(y), gpu_of(k), gpu_of(tb), p),
                     conv_transpose2d(y, k, tb, p));
      }
    }
    EXPECT(cuda::cudnn_cached_algorithms() > 0, "cuDNN's algorithm cache is empty after the convolutions");
    cuda::set_conv_impl(cuda::ConvImpl::im2col);
  });

  section("caching allocator: a freed block is handed out again", [&] {
    const cuda::CacheStats before = cuda::cache_stats(0);
    { Tensor t = Tensor::empty({1 << 20}, DType::f32, kGpu); }
    { Tensor t = Tensor::empty({1 << 20}, DType::f32, kGpu); }
    const cuda::CacheStats after = cuda::cache_stats(0);
    EXPECT(after.hits > before.hits, "the second 4 MiB tensor did not reuse the first's block");
    cuda::cache_release(0);
    EXPECT(cuda::cache_stats(0).cached_bytes == 0, "cache_release left blocks cached");
  });

  section("clear errors", [&] {
    const Tensor a = Tensor::ones({3}, DType::f32, kGpu);
    expect_throw<DeviceError>("cpu + cuda", [&] { (void)gv::add(a, Tensor::ones({3})); }, {"add"},
                              __LINE__);
    expect_throw<DTypeError>("int64 unary on cuda",
                             [&] { (void)gv::neg(Tensor::arange(5, DType::i64, kGpu)); }, {"neg"},
                             __LINE__);
    expect_throw<IndexError>("a bad gather index, raised at the next wait",
                             [&] {
                               const Tensor x = Tensor::ones({2, 3}, DType::f32, kGpu);
                               const Tensor idx = Tensor::from_vector<int64_t>({0, 3}, {2, 1}).to(kGpu);
                               (void)gv::gather(x, 1, idx).to(Device::cpu());
                             },
                             {"gather", "index value 3", "position 1", "[0, 3)"}, __LINE__);
    const int bad_dev = cuda::device_count();
    expect_throw<DeviceError>("tensor on a missing device",
                              [&] { (void)Tensor::empty({4}, DType::f32, Device::cuda(bad_dev)); },
                              {"cudaSetDevice", "cuda:" + std::to_string(bad_dev), "hint"}, __LINE__);
    expect_throw<DeviceError>("allocating 1 PiB",
                              [&] { (void)cuda::alloc(size_t(1) << 50, 0); },
                              {"out of memory", "PiB"}, __LINE__);
    // the failed allocation must leave the device usable
    const Tensor s = gv::sqrt(Tensor::full({1000}, 4.0, DType::f64, kGpu));
    for (double x : s.to_vector<double>()) EXPECT(x == 2.0, "sqrt after a failed alloc: " + std::to_string(x));
    cuda::synchronize(0);
  });

  // A 1-rank NCCL group (MPI starts as a singleton): the collectives on GPU tensors, and a
  // CPU tensors of the same group over MPI.
  section("NCCL on one rank: all-reduce, broadcast", [&] {
    const auto have = nn::process_group_backends();
    if (std::find(have.begin(), have.end(), "nccl") == have.end()) {
      std::printf("     (this build has no NCCL: -Dnccl)\n");
      return;
    }
    auto pg = nn::make_process_group("nccl", true, 0);
    EXPECT(pg->backend() == "nccl" && pg->world_size() == 1 && pg->rank() == 0, "NCCL group: " + pg->where());
    Tensor x = random_bits({1000, 3}, DType::f32, rng).to(kGpu);
    const std::vector<float> before = x.to_vector<float>();
    pg->all_reduce_sum_(x);
    EXPECT(x.to_vector<float>() == before, "NCCL all-reduce over one rank changed the values");
    Tensor d = Tensor::arange(17, DType::i64).to(DType::f64).to(kGpu);
    pg->broadcast_(d, 0);
    EXPECT(d.to_vector<double>()[16] == 16.0, "NCCL broadcast over one rank changed the values");
    Tensor h = Tensor::ones({5}, DType::f64);  // CPU tensors go over MPI
    pg->all_reduce_sum_(h);
    EXPECT(h.to_vector<double>()[4] == 1.0, "MPI all-reduce of a CPU tensor in the NCCL group");
  });

  std::printf("%s: %d checks, %d failures\n", g_failures ? "FAILED" : "PASSED", g_checks, g_failures);
  return g_failures ? 1 : 0;
}
