// classifier.cpp: the digit classifier and the sample-quality figures (classifier.h).
#include "apps/common/classifier.h"

#include <cmath>
#include <filesystem>

#include "engine/ops.h"
#include "nn/checkpoint.h"

namespace gv::app {

DigitClassifier::DigitClassifier(Generator& g) {
  using nn::Conv2d, nn::ConvOptions;
  net_ = register_module("net", std::make_shared<nn::Sequential>(std::initializer_list<std::shared_ptr<nn::Layer>>{
                                    std::make_shared<Conv2d>(1, 32, 3, g, ConvOptions{.padding = 1}),
                                    std::make_shared<nn::ReLU>(),
                                    std::make_shared<Conv2d>(32, 64, 4, g, ConvOptions{.stride = 2, .padding = 1}),
                                    std::make_shared<nn::ReLU>(),
                                    std::make_shared<Conv2d>(64, 64, 4, g, ConvOptions{.stride = 2, .padding = 1}),
                                    std::make_shared<nn::ReLU>(), std::make_shared<nn::Flatten>(),
                                    std::make_shared<nn::Linear>(3136, 128, g), std::make_shared<nn::ReLU>(),
                                    std::make_shared<nn::Linear>(128, 10, g)}));
}

ag::Var DigitClassifier::forward(const ag::Var& x) {
  GV_CHECK(x.dim() == 4 && x.size(1) == 1 && x.size(2) == 28 && x.size(3) == 28, ShapeError,
           "DigitClassifier: expects MNIST-sized images (B, 1, 28, 28), got {}", shape_str(x.shape()));
  return (*net_)(x);
}

Tensor DigitClassifier::probabilities(const Tensor& x) {
  ag::NoGradGuard no_grad;
  std::vector<Tensor> parts;
  for (int64_t s = 0; s < x.size(0); s += 500) {
    const int64_t e = std::min(x.size(0), s + 500);
    const Tensor xb = x.slice(0, s, e).to(DType::f32).to(device()).contiguous();  // to the net's device, and back
    parts.push_back(softmax(forward(ag::Var(xb)).data(), 1).to(DType::f64).to(Device::cpu()));
  }
  GV_CHECK(!parts.empty(), ShapeError, "DigitClassifier: no images to classify");
  return concat(parts, 0);
}

std::unique_ptr<DigitClassifier> load_classifier(const std::string& dir_or_file) {
  namespace fs = std::filesystem;
  const fs::path p = fs::is_directory(dir_or_file) ? fs::path(dir_or_file) / "classifier.safetensors" : fs::path(dir_or_file);
  GV_CHECK(fs::is_regular_file(p), IOError,
           "--classifier: no classifier at {} (expected a genvae-classifier folder or its classifier.safetensors)",
           p.string());
  Generator g(0);
  auto c = std::make_unique<DigitClassifier>(g);
  nn::TrainState state;
  nn::load_checkpoint(p.string(), *c, nullptr, state);
  return c;
}

SampleQuality score_samples(DigitClassifier& c, const Tensor& images) {
  GV_CHECK(images.dim() == 4 && images.size(0) > 0, ShapeError, "score_samples: expects images (N, 1, 28, 28), got {}",
           shape_str(images.shape()));
  const Tensor prob = c.probabilities(images);
  const std::vector<double> p = prob.to_vector<double>();
  SampleQuality q;
  q.n = images.size(0);
  q.histogram.assign(10, 0);
  double conf = 0;
  for (int64_t i = 0; i < q.n; ++i) {
    int64_t best = 0;
    for (int64_t k = 1; k < 10; ++k)
      if (p[size_t(i * 10 + k)] > p[size_t(i * 10 + best)]) best = k;
    conf += p[size_t(i * 10 + best)];
    ++q.histogram[size_t(best)];
  }
  q.mean_confidence = conf / double(q.n);
  for (int64_t h : q.histogram)
    if (h > 0) q.label_entropy -= double(h) / double(q.n) * std::log(double(h) / double(q.n));
  GV_CHECK(std::isfinite(q.mean_confidence) && std::isfinite(q.label_entropy), NonFiniteError,
           "score_samples: the classifier gave non-finite probabilities");
  return q;
}

json to_json(const SampleQuality& q) {
  return json{{"n", q.n}, {"mean_confidence", q.mean_confidence}, {"label_entropy", q.label_entropy},
              {"label_entropy_max", std::log(10.0)}, {"histogram", q.histogram}};
}

}  // namespace gv::app
