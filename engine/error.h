// error.h: typed errors. Library code throws these (never exits or aborts); each message names
// the op, the shapes or values involved, and the source file:line that raised it.
#pragma once
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <stdexcept>
#include <string>

namespace gv {

struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};
struct ShapeError : Error { using Error::Error; };   // shapes that do not fit the op
struct DTypeError : Error { using Error::Error; };   // dtype not supported or mismatched
struct DeviceError : Error { using Error::Error; };  // device mismatch, no CUDA
struct IndexError : Error { using Error::Error; };   // out-of-range axis, index or slice
struct ValueError : Error { using Error::Error; };   // a bad argument value
struct IOError : Error { using Error::Error; };      // files: missing, truncated, corrupt
struct NonFiniteError : Error { using Error::Error; };  // a result or weight that is NaN or infinite

// "NaN" for every NaN (fmt writes "-nan" for some), else fmt's shortest form ("inf", "0.5").
inline std::string number_str(double v) { return v != v ? "NaN" : ::fmt::format("{}", v); }

namespace detail {
inline const char* short_path(const char* f) {
  // keep the path from the project's top folder on ("engine/tensor.cpp")
  std::string_view s(f);
  for (const char* top : {"engine/", "autograd/", "nn/", "vae/", "apps/", "tests/"}) {
    auto p = s.rfind(top);
    if (p != std::string_view::npos) return f + p;
  }
  return f;
}
}  // namespace detail

}  // namespace gv

// GV_THROW(ShapeError, "matmul: shapes {} and {} cannot be multiplied", a, b)
#define GV_THROW(Kind, ...)                                                                        \
  throw ::gv::Kind(::fmt::format(__VA_ARGS__) +                                                    \
                   ::fmt::format(" [{}:{}]", ::gv::detail::short_path(__FILE__), __LINE__))

#define GV_CHECK(cond, Kind, ...)        \
  do {                                   \
    if (!(cond)) GV_THROW(Kind, __VA_ARGS__); \
  } while (0)
