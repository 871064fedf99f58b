// cuda_check.cpp: the throwing side of GV_CUDA_CHECK (see cuda_check.h), compiled by the host
// compiler so the messages can use engine/error.h and fmt.
#include "engine/cuda/cuda_check.h"

#include "engine/error.h"

namespace gv::cuda::detail {

void throw_cuda_error(int status, const char* name, const char* description, const char* call,
                      const std::string& context, const char* file, int line) {
  const std::string ctx = context.empty() ? std::string() : " while " + context;
  throw DeviceError(fmt::format("CUDA error: {} failed: {} ({} = {}){}; hint: {} [{}:{}]", call,
                                description, name, status, ctx, hint_for(status),
                                ::gv::detail::short_path(file), line));
}

void throw_device_error(const std::string& msg, const char* file, int line) {
  throw DeviceError(fmt::format("{} [{}:{}]", msg, ::gv::detail::short_path(file), line));
}

void throw_dtype_error(const std::string& msg, const char* file, int line) {
  throw DTypeError(fmt::format("{} [{}:{}]", msg, ::gv::detail::short_path(file), line));
}

void throw_index_error(const std::string& msg, const char* file, int line) {
  throw IndexError(fmt::format("{} [{}:{}]", msg, ::gv::detail::short_path(file), line));
}

void throw_shape_error(const std::string& msg, const char* file, int line) {
  throw ShapeError(fmt::format("{} [{}:{}]", msg, ::gv::detail::short_path(file), line));
}

void throw_value_error(const std::string& msg, const char* file, int line) {
  throw ValueError(fmt::format("{} [{}:{}]", msg, ::gv::detail::short_path(file), line));
}

std::string bytes_str(size_t nbytes) {
  if (nbytes < 1024) return fmt::format("{} bytes", nbytes);
  const char* units[] = {"KiB", "MiB", "GiB", "TiB", "PiB"};
  double v = double(nbytes);
  int u = -1;
  while (v >= 1024 && u < 4) v /= 1024, ++u;
  return fmt::format("{:.1f} {} ({} bytes)", v, units[u], nbytes);
}

}  // namespace gv::cuda::detail
