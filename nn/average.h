// average.h: Polyak averaging of a module's weights (an exponential moving average, as PixelCNN++
// evaluates and samples with), kept as a Module of buffers so that a checkpoint carries it.
//   avg <- d_t avg + (1 - d_t) p after each update, d_t = min(decay, (1 + t) / (10 + t)),
// t the number of updates so far: TensorFlow's ExponentialMovingAverage with num_updates, so that a
// short run's average is not mostly its random initial weights (decay 0.9995 alone keeps 47% of
// them after 1500 steps). The averages start as the weights. Buffer names are the parameters'
// dotted names with "." spelled "-" (module names hold no dots); "updates" counts t.
#pragma once
#include <memory>
#include <vector>

#include "nn/module.h"

namespace gv::nn {

class WeightAverage : public Module {
 public:
  // Averages every parameter of `model` (their names and shapes fixed now). decay in (0, 1).
  WeightAverage(const Module& model, double decay);
  double decay() const { return decay_; }
  int64_t updates() const;
  // One step of the average with the model's current weights.
  void update();
  // The averages in place of the model's weights for one scope (evaluation, sampling); the trained
  // weights come back on exit, exceptions included. No update may run inside.
  class Swap {
   public:
    explicit Swap(WeightAverage& a) : a_(a) { a_.swap(); }
    ~Swap() { a_.swap(); }
    Swap(const Swap&) = delete;
    Swap& operator=(const Swap&) = delete;

   private:
    WeightAverage& a_;
  };
  // The averages into the model's weights for good (a program that only evaluates).
  void copy_to_model();

 private:
  void swap();
  std::vector<NamedVar> params_;  // the model's, by name
  std::vector<std::string> names_;  // their buffer names
  double decay_;
};

}  // namespace gv::nn
