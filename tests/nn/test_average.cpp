// test_average.cpp: Polyak averaging of weights (nn/average.h): the update against its formula,
// written out here, including the early-step decay (1+t)/(10+t); Swap puts the averages in and
// the trained weights back bit for bit; a checkpoint carries the averages and their count.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <vector>

#include "engine/ops.h"
#include "nn/average.h"
#include "nn/checkpoint.h"
#include "nn/layers.h"

using namespace gv;
using namespace gv::nn;

// This file's helpers and tests in a namespace of their own: the unity build (scripts/test.sh)
// compiles several test files as one, and their helpers must not meet.
namespace file_nn_test_average {

TEST_CASE("WeightAverage: the moving average of every parameter, with TensorFlow's early decay") {
  Generator g(1);
  Linear lin(3, 2, g, true, DType::f64);
  WeightAverage avg(lin, 0.9);
  const std::vector<double> w0 = lin.weight().data().to_vector<double>();
  std::vector<double> want = w0;  // the averages start as the weights
  for (int t = 0; t < 30; ++t) {
    Tensor w = lin.weight().data();
    w.copy_(w + normal(w.shape(), g, 0, 1, DType::f64));  // an "update"
    avg.update();
    const double d = std::min(0.9, (1.0 + t) / (10.0 + t));
    const std::vector<double> now = lin.weight().data().to_vector<double>();
    for (size_t i = 0; i < want.size(); ++i) want[i] = d * want[i] + (1 - d) * now[i];
  }
  CHECK(avg.updates() == 30);
  const std::vector<double> trained = lin.weight().data().to_vector<double>();
  {
    WeightAverage::Swap s(avg);
    const std::vector<double> in = lin.weight().data().to_vector<double>();
    for (size_t i = 0; i < want.size(); ++i) CHECK(in[i] == doctest::Approx(want[i]).epsilon(1e-12));  // float64 sums
    CHECK(in != trained);
  }
  CHECK(lin.weight().data().to_vector<double>() == trained);  // bit for bit back
  CHECK_THROWS_WITH_AS(WeightAverage(lin, 1.0), doctest::Contains("(0, 1)"), ValueError);
}

namespace {
// A module whose last child is the average of the others, as vae::VAE keeps it.
struct Averaged : Module {
  explicit Averaged(Generator& g) {
    lin = register_module("lin", std::make_shared<Linear>(2, 2, g));
    avg = register_module("average", std::make_shared<WeightAverage>(*this, 0.99));
  }
  std::shared_ptr<Linear> lin;
  std::shared_ptr<WeightAverage> avg;
};
}  // namespace

TEST_CASE("WeightAverage: a checkpoint carries the averages and their count") {
  Generator g(2);
  Averaged a(g);
  for (int t = 0; t < 5; ++t) {
    Tensor w = a.lin->weight().data();
    w.copy_(w * 0.5 + 1.0);
    a.avg->update();
  }
  const std::string path = (std::filesystem::temp_directory_path() / "genvae_test_average.safetensors").string();
  TrainState st;
  save_checkpoint(path, a, nullptr, st);
  Generator g2(3);
  Averaged b(g2);
  TrainState st2;
  load_checkpoint(path, b, nullptr, st2);
  std::filesystem::remove(path);
  CHECK(b.avg->updates() == 5);
  b.avg->copy_to_model();
  WeightAverage::Swap s(*a.avg);
  CHECK(b.lin->weight().data().to_vector<float>() == a.lin->weight().data().to_vector<float>());
}

}  // namespace file_nn_test_average
