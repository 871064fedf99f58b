// resume_model.h: the small training run behind the exact-resume checks, shared by
// test_checkpoint.cpp (two runs in one process) and resume_driver.cpp (runs in fresh processes).
//
// A 2-layer MLP (4 -> 16 -> 1, tanh) regresses a fixed random data set with Adam and an
// exponentially decaying learning rate. Everything a resume must restore is exercised: the
// parameters, Adam's moments and step count, a buffer updated every step (a running mean of the
// inputs), a random stream drawn every step (input noise), and the data order position (each
// epoch visits the examples in a permutation seeded by the epoch; a resumed run recomputes it and
// skips the batches already consumed).
#pragma once
#include <cstring>
#include <string>
#include <vector>

#include "autograd/ops.h"
#include "engine/random.h"
#include "nn/checkpoint.h"
#include "nn/optim.h"

namespace gv::resume_test {

inline constexpr int64_t kExamples = 40, kBatch = 8, kIn = 4, kHidden = 16;
inline constexpr int64_t kBatchesPerEpoch = kExamples / kBatch;

class Mlp : public nn::Module {
 public:
  explicit Mlp(Generator& g) {
    w1 = register_parameter("w1", normal({kIn, kHidden}, g, 0, 0.5));  // (4, 16)
    b1 = register_parameter("b1", Tensor::zeros({kHidden}));           // (16)
    w2 = register_parameter("w2", normal({kHidden, 1}, g, 0, 0.25));   // (16, 1)
    b2 = register_parameter("b2", Tensor::zeros({1}));                 // (1)
    register_buffer("input_mean", Tensor::zeros({kIn}));               // (4), running mean of x
  }
  // x (B, 4) -> (B, 1)
  ag::Var forward(const ag::Var& x) const { return ag::matmul(ag::tanh(ag::matmul(x, w1) + b1), w2) + b2; }
  // input_mean <- 0.9 input_mean + 0.1 mean_b x
  void track_inputs(const Tensor& x) {
    set_buffer("input_mean", buffer("input_mean") * 0.9 + mean(x, {0}) * 0.1);
  }
  ag::Var w1, b1, w2, b2;
};

// Rows `rows` of x (N, C), as a new (rows.size(), C) tensor.
inline Tensor take_rows(const Tensor& x, const std::vector<int64_t>& rows) {
  const int64_t c = x.size(1);
  std::vector<float> all = x.to_vector<float>(), out;
  for (int64_t r : rows) out.insert(out.end(), all.begin() + r * c, all.begin() + (r + 1) * c);
  return Tensor::from_vector(out, {(int64_t)rows.size(), c});
}

// One training run; a fresh Run is what a fresh process builds before it resumes.
struct Run {
  Generator init{1};  // parameters
  Mlp model{init};
  nn::Adam opt{model.named_parameters(), 1e-2};
  nn::ExponentialLR schedule{1e-2, 0.5, 20};
  nn::TrainState state;
  Tensor x, y;  // the data set: x (40, 4), y (40, 1) = tanh(2 x . v)

  Run() {
    Generator data(2);
    x = normal({kExamples, kIn}, data);
    y = tanh(matmul(x, normal({kIn, 1}, data)) * 2.0);
    state.rngs = {{"noise", Generator(3)}};
    state.extra["config"] = R"({"hidden": 16, "batch": 8})";
  }

  void step() {
    Generator order(1000 + uint64_t(state.epoch));  // this epoch's permutation
    std::vector<int64_t> perm = randperm(kExamples, order).to_vector<int64_t>();
    std::vector<int64_t> rows(perm.begin() + state.batch_in_epoch * kBatch,
                              perm.begin() + (state.batch_in_epoch + 1) * kBatch);
    Tensor xb = take_rows(x, rows) + normal({kBatch, kIn}, state.rng("noise"), 0, 0.1);
    Tensor yb = take_rows(y, rows);

    opt.set_lr(schedule.lr(state.step));
    opt.zero_grad();
    ag::Var loss = ag::mean(ag::square(model.forward(ag::Var(xb)) - ag::Var(yb)));
    loss.backward();
    opt.step();
    model.track_inputs(xb);
    advance();
  }

  void train(int64_t steps) {
    for (int64_t i = 0; i < steps; ++i) step();
  }

  void save(const std::string& path) const { nn::save_checkpoint(path, model, &opt, state); }
  void load(const std::string& path) { nn::load_checkpoint(path, model, &opt, state); }

 private:
  void advance() {
    ++state.step;
    if (++state.batch_in_epoch == kBatchesPerEpoch) {
      state.batch_in_epoch = 0;
      ++state.epoch;
    }
  }
};

// "" when the two files hold the same tensors (names, dtypes, shapes, bytes) and metadata, else
// the first difference.
inline std::string compare_files(const std::string& a, const std::string& b) {
  nn::SafetensorsFile fa = nn::read_safetensors(a), fb = nn::read_safetensors(b);
  if (fa.tensors.size() != fb.tensors.size())
    return fmt::format("{} tensors against {}", fa.tensors.size(), fb.tensors.size());
  for (size_t i = 0; i < fa.tensors.size(); ++i) {
    const auto& [na, ta] = fa.tensors[i];
    const auto& [nb, tb] = fb.tensors[i];
    if (na != nb) return fmt::format("tensor {}: named {} against {}", i, na, nb);
    if (ta.str() != tb.str()) return fmt::format("{}: {} against {}", na, ta.str(), tb.str());
    if (std::memcmp(ta.raw_data(), tb.raw_data(), ta.numel() * dtype_size(ta.dtype())) != 0)
      return fmt::format("{}: values differ", na);
  }
  for (const auto& [k, v] : fa.metadata) {
    auto it = fb.metadata.find(k);
    if (it == fb.metadata.end()) return fmt::format("metadata {} only in {}", k, a);
    if (it->second != v) return fmt::format("metadata {}: \"{}\" against \"{}\"", k, v, it->second);
  }
  if (fa.metadata.size() != fb.metadata.size()) return fmt::format("metadata only in {}", b);
  return "";
}

}  // namespace gv::resume_test
