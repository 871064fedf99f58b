// flags.cpp: see flags.h.
#include "apps/common/flags.h"

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdlib>

#include <fmt/format.h>

#include "engine/cuda/cuda_info.h"
#include "engine/error.h"
#include "engine/tensor.h"

namespace gv::app {

namespace {
template <class T>
std::optional<T> parse_integer(const std::string& s) {
  const char* b = s.data();
  const char* e = b + s.size();
  if (b != e && *b == '+' && std::is_signed_v<T>) ++b;  // from_chars takes '-' but not '+'
  T v{};
  auto [p, ec] = std::from_chars(b, e, v);
  if (ec != std::errc() || p != e || b == e) return std::nullopt;
  return v;
}

// Why s is not an integer: "not a number" when it is not a number at all, else "not an integer".
std::string not_integer(const std::string& s, const std::string& range) {
  return fmt::format("{}: '{}' (expected an integer {})", parse_double(s) ? "not an integer" : "not a number", s,
                     range);
}
}  // namespace

std::optional<int64_t> parse_int64(const std::string& s) { return parse_integer<int64_t>(s); }
std::optional<uint64_t> parse_uint64(const std::string& s) { return parse_integer<uint64_t>(s); }

std::optional<double> parse_double(const std::string& s) {
  if (s.empty() || std::isspace((unsigned char)s[0])) return std::nullopt;
  errno = 0;
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (end != s.c_str() + s.size() || std::isnan(v)) return std::nullopt;
  return v;
}

namespace {
// An optional sign and decimal digits only: an integer, whatever its size.
bool all_digits(const std::string& s) {
  const size_t b = !s.empty() && (s[0] == '-' || s[0] == '+');
  return s.size() > b && s.find_first_not_of("0123456789", b) == std::string::npos;
}
}  // namespace

CLI::Validator int_range(int64_t lo, int64_t hi) {
  const bool open = hi == std::numeric_limits<int64_t>::max();
  const std::string range = open ? fmt::format(">= {}", lo) : fmt::format("in {}..{}", lo, hi);
  return CLI::Validator(
      [lo, hi, range](std::string& s) {
        if (!all_digits(s)) return not_integer(s, range);
        const auto v = parse_int64(s);  // fails only when beyond 64 bits
        if (!v || *v < lo || *v > hi) return fmt::format("must be an integer {}, got {}", range, s);
        return std::string();
      },
      range);
}

CLI::Validator uint64_any() {
  const std::string range = fmt::format("in 0..{}", std::numeric_limits<uint64_t>::max());
  return CLI::Validator(
      [range](std::string& s) {
        if (!all_digits(s)) return not_integer(s, range);
        if (!parse_uint64(s)) return fmt::format("must be an integer {}, got {}", range, s);
        return std::string();
      },
      "");
}

CLI::Validator number_above(double lo, bool inclusive) {
  return CLI::Validator(
      [lo, inclusive](std::string& s) {
        const auto v = parse_double(s);
        if (!v) return fmt::format("not a number: '{}' (expected a number {} {})", s, inclusive ? ">=" : ">", lo);
        if (!std::isfinite(*v) || !(inclusive ? *v >= lo : *v > lo))
          return fmt::format("must be a finite number {} {}, got {}", inclusive ? ">=" : ">", lo, s);
        return std::string();
      },
      fmt::format("{} {}", inclusive ? ">=" : ">", lo));
}

CLI::Validator number_range(double lo, double hi) {
  return CLI::Validator(
      [lo, hi](std::string& s) {
        const auto v = parse_double(s);
        if (!v) return fmt::format("not a number: '{}' (expected a number in [{}, {}])", s, lo, hi);
        if (!(*v >= lo && *v <= hi)) return fmt::format("must be a number in [{}, {}], got {}", lo, hi, s);
        return std::string();
      },
      fmt::format("in [{}, {}]", lo, hi));
}

namespace {
std::optional<Device> device_of(const std::string& s) {
  if (s == "cpu") return Device::cpu();
  if (s == "cuda") return Device::cuda(0);
  if (s.rfind("cuda:", 0) == 0) {
    const std::optional<uint64_t> n = parse_uint64(s.substr(5));
    if (n && *n < 16) return Device::cuda(int(*n));
  }
  return std::nullopt;
}
}  // namespace

CLI::Validator device_spec() {
  return CLI::Validator(
      [](std::string& s) {
        return device_of(s) ? std::string() : "must be cpu, cuda or cuda:N (N in 0..15), got '" + s + "'";
      },
      "cpu|cuda[:N]");
}

Device parse_device(const std::string& spec) {
  const std::optional<Device> d = device_of(spec);
  GV_CHECK(d.has_value(), ValueError, "--device: must be cpu, cuda or cuda:N (N in 0..15), got '{}'", spec);
  return *d;
}

Device checked_device(const std::string& spec) {
  const Device d = parse_device(spec);
  if (d.is_cpu()) return d;
  GV_CHECK(cuda_compiled(), DeviceError,
           "--device {}: this build of genvae has no CUDA backend (reconfigure with -Dcuda=enabled, with nvcc and "
           "cuBLAS installed)", spec);
  GV_CHECK(cuda_available(), DeviceError, "--device {}: no CUDA device can be used here ({})", spec,
           cuda::describe_devices());
  Tensor probe = Tensor::zeros({1}, DType::f32, d);  // a missing index fails here, naming what was found
  return d;
}

CLI::Option* add_device_flag(CLI::App& app, std::string& spec) {
  return app.add_option("--device", spec, "where tensors live and kernels run: cpu, cuda or cuda:N")
      ->check(device_spec())
      ->capture_default_str();
}

}  // namespace gv::app
