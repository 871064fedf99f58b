// classifier.h: the digit classifier that scores samples (sample quality of the PixelVAE runs): a
// small convolutional network that genvae-classifier trains on binarized MNIST, and the two figures
// it gives a set of samples:
//   mean confidence  the mean over samples of the classifier's top-class probability: how much
//                    each sample looks like some digit to this classifier (real test digits ~0.99);
//   label entropy    the entropy (nats) of the histogram of predicted labels: how evenly the
//                    samples cover the ten classes (log 10 = 2.303 for an even cover).
// Neither measures diversity within a class, closeness to the training set (memorization) or the
// likelihood; a classifier can also be confidently wrong on images unlike any digit.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "apps/common/run_dir.h"
#include "nn/layers.h"

namespace gv::app {

// conv 3x3 1->32, ReLU, conv 4x4 s2 32->64, ReLU, conv 4x4 s2 64->64, ReLU, linear 3136->128,
// ReLU, linear 128->10. Input (B, 1, 28, 28) in [0, 1]; output the logits (B, 10).
class DigitClassifier : public nn::Module {
 public:
  explicit DigitClassifier(Generator& g);
  ag::Var forward(const ag::Var& x);
  // softmax probabilities (B, 10) float64, in batches of 500, without a graph
  Tensor probabilities(const Tensor& x);

 private:
  std::shared_ptr<nn::Sequential> net_;
};

// A genvae-classifier folder (its classifier.safetensors) or the file itself; IOError naming the
// path when it is neither, and load_checkpoint's own checks.
std::unique_ptr<DigitClassifier> load_classifier(const std::string& dir_or_file);

struct SampleQuality {
  int64_t n = 0;
  double mean_confidence = 0, label_entropy = 0;
  std::vector<int64_t> histogram;  // predicted labels 0..9
};
// images (N, 1, 28, 28) in [0, 1]; ShapeError for another shape
SampleQuality score_samples(DigitClassifier& c, const Tensor& images);
json to_json(const SampleQuality& q);

}  // namespace gv::app
