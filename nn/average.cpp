// average.cpp: the moving average of a module's weights (average.h).
#include "nn/average.h"

#include "engine/ops.h"

#include <algorithm>
#include <cmath>

namespace gv::nn {

WeightAverage::WeightAverage(const Module& model, double decay) : params_(model.named_parameters()), decay_(decay) {
  GV_CHECK(decay > 0 && decay < 1, ValueError, "WeightAverage: decay must be in (0, 1), got {}", decay);
  for (const auto& [name, v] : params_) {
    std::string b = name;
    std::replace(b.begin(), b.end(), '.', '-');
    names_.push_back(b);
    register_buffer(b, v.data().clone());
  }
  register_buffer("updates", Tensor::from_vector(std::vector<int64_t>{0}, {1}));
}

int64_t WeightAverage::updates() const { return buffer("updates").data<int64_t>()[0]; }

void WeightAverage::update() {
  const int64_t t = updates();
  const double d = std::min(decay_, (1.0 + double(t)) / (10.0 + double(t)));
  for (size_t i = 0; i < params_.size(); ++i) {
    Tensor avg = buffer(names_[i]);  // shares storage with the buffer: updated in place
    avg.copy_(avg * d + params_[i].second.data() * (1 - d));
  }
  set_buffer("updates", Tensor::from_vector(std::vector<int64_t>{t + 1}, {1}));
}

void WeightAverage::swap() {
  for (size_t i = 0; i < params_.size(); ++i) {
    Tensor p = params_[i].second.data(), avg = buffer(names_[i]);  // handles: in place
    const Tensor w = p.clone();
    p.copy_(avg);
    avg.copy_(w);
  }
}

void WeightAverage::copy_to_model() {
  for (size_t i = 0; i < params_.size(); ++i) {
    Tensor p = params_[i].second.data();
    p.copy_(buffer(names_[i]));
  }
}

}  // namespace gv::nn
