// device.h: where a Tensor's storage lives. Every op dispatches on this.
#pragma once
#include <cstdint>
#include <string>

namespace gv {

enum class DeviceType : uint8_t { CPU, CUDA };

struct Device {
  DeviceType type = DeviceType::CPU;
  int index = 0;
  static Device cpu() { return {}; }
  static Device cuda(int i = 0) { return {DeviceType::CUDA, i}; }
  bool is_cpu() const { return type == DeviceType::CPU; }
  bool is_cuda() const { return type == DeviceType::CUDA; }
  bool operator==(const Device& o) const { return type == o.type && (is_cpu() || index == o.index); }
  std::string str() const { return is_cpu() ? "cpu" : "cuda:" + std::to_string(index); }
};

// Whether this build has the CUDA backend compiled in, and whether a device can be used now.
bool cuda_compiled();
bool cuda_available();

}  // namespace gv
