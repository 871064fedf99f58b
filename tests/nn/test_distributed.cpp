// test_distributed.cpp: the process group seam in one process (the MPI ranks are
// tests/nn/dist_test.sh's): the single process's collectives, the choice of backend and its
// errors, and a training step through a GradReducer that must change nothing on one rank.
#include <doctest/doctest.h>

#include "autograd/ops.h"
#include "engine/random.h"
#include "nn/distributed.h"
#include "nn/layers.h"
#include "nn/train_step.h"

using namespace gv;

// This file's helpers and tests in a namespace of their own: the unity build (scripts/test.sh)
// compiles several test files as one, and their helpers must not meet.
namespace file_nn_test_distributed {

TEST_CASE("SingleProcess: world 1, collectives that change nothing") {
  auto pg = nn::make_process_group("single");
  CHECK(pg->world_size() == 1);
  CHECK(pg->rank() == 0);
  CHECK(pg->where() == "rank 0 of 1 (single)");
  Tensor t = Tensor::from_list({1.5, -2}, {2}, DType::f64);
  pg->all_reduce_sum_(t);
  pg->broadcast_(t, 0);
  CHECK(t.to_vector<double>() == std::vector<double>{1.5, -2});
  CHECK(pg->broadcast_string("abc") == "abc");
  CHECK(pg->all_gather({4, 5}) == std::vector<int64_t>{4, 5});
  CHECK(pg->all_reduce_max(2.5) == 2.5);
  CHECK(pg->all_gather_strings("x") == std::vector<std::string>{"x"});
}

TEST_CASE("make_process_group: auto outside mpirun is single; unknown kinds name the allowed ones") {
  if (!nn::launched_by_mpi()) CHECK(nn::make_process_group("auto")->backend() == "single");
  CHECK_THROWS_WITH_AS(nn::make_process_group("gloo"), doctest::Contains("allowed values are auto, single, mpi, nccl"),
                       ValueError);
  const auto have = nn::process_group_backends();
  if (std::find(have.begin(), have.end(), "nccl") == have.end())
    CHECK_THROWS_WITH_AS(nn::make_process_group("nccl"), doctest::Contains("-Dnccl=enabled"), ValueError);
}

TEST_CASE("GradReducer on one rank: the same step, bit for bit, as without it") {
  auto run = [](bool with_reducer) {
    Generator g(3);
    nn::Linear a(6, 5, g, true, DType::f64), b(5, 1, g, true, DType::f64);
    std::vector<nn::NamedVar> params = a.named_parameters();
    for (auto& p : b.named_parameters()) params.push_back({"b." + p.first, p.second});
    nn::SGD opt(params, 0.1, 0.9);
    std::vector<ag::Var> vars;
    for (auto& p : params) vars.push_back(p.second);
    nn::SingleProcess pg;
    nn::GradReducer reducer(pg, vars, 64, true);  // 64 bytes: several buckets
    CHECK(reducer.buckets() > 1);
    CHECK(reducer.bytes_per_step() == (6 * 5 + 5 + 5 + 1) * 8);
    const Tensor x = normal({4, 6}, g, 0, 1, DType::f64);
    for (int s = 0; s < 3; ++s)
      nn::train_step(opt, [&] { return ag::mean(ag::square(b(ag::tanh(a(ag::Var(x)))))); },
                     std::numeric_limits<double>::infinity(), with_reducer ? &reducer : nullptr);
    std::vector<double> w;
    for (auto& v : vars)
      for (double d : v.data().to_vector<double>()) w.push_back(d);
    return w;
  };
  CHECK(run(true) == run(false));
}

namespace {
// Two ranks as one process sees them: the "other rank" sent twice this rank's values, so every
// sum is 3x, every mean 1.5x; each call is counted.
class FakePair final : public nn::ProcessGroup {
 public:
  int rank() const override { return 0; }
  int world_size() const override { return 2; }
  std::string backend() const override { return "fake"; }
  void all_reduce_sum_(Tensor& t) override {
    ++reduces;
    if (t.dtype() == DType::i64) {
      for (int64_t i = 0; i < t.numel(); ++i) t.data<int64_t>()[i] *= 2;  // the other rank had the same flags
      return;
    }
    t.copy_(mul(t, 3.0));
  }
  void broadcast_(Tensor&, int) override {}
  void barrier() override {}
  int reduces = 0;
};
}  // namespace

TEST_CASE("GradReducer on two ranks: the mean over ranks, in buckets, started during backward with overlap") {
  for (bool overlap : {true, false}) {
    Generator g(5);
    nn::Linear a(6, 5, g, true, DType::f64), b(5, 1, g, true, DType::f64), unused(2, 2, g, true, DType::f64);
    std::vector<ag::Var> vars;
    // unused first: its bucket is the last (reverse order), and it never becomes ready in backward,
    // so the buckets before it must not wait for it
    for (auto* m : std::vector<nn::Module*>{&unused, &a, &b})
      for (auto& p : m->named_parameters()) vars.push_back(p.second);
    const Tensor x = normal({4, 6}, g, 0, 1, DType::f64);
    auto loss = [&] { return ag::mean(ag::square(b(ag::tanh(a(ag::Var(x)))))); };
    // the local gradients, without a reducer
    ag::Var l = loss();
    l.backward();
    std::vector<std::vector<double>> local;
    for (auto& v : vars) local.push_back(v.grad().defined() ? v.grad().to_vector<double>() : std::vector<double>{});
    for (auto& v : vars) v.zero_grad();
    FakePair pg;
    nn::GradReducer reducer(pg, vars, 64, overlap);  // 64 bytes: a bucket per parameter or so
    for (int step = 0; step < 2; ++step) {           // twice: the buckets start afresh every step
      pg.reduces = 0;
      loss().backward(Tensor(), [&](const ag::Var& leaf) { reducer.leaf_ready(leaf); });
      reducer.finish();
      CHECK(pg.reduces == reducer.buckets() + 1);  // one per bucket, and the flags
      if (overlap) CHECK(reducer.started_early() > 0);
      else CHECK(reducer.started_early() == 0);
      for (size_t i = 0; i < vars.size(); ++i) {
        if (local[i].empty()) {
          CHECK_FALSE(vars[i].grad().defined());  // no rank had a gradient: none is made up
          continue;
        }
        const std::vector<double> got = vars[i].grad().to_vector<double>();
        REQUIRE(got.size() == local[i].size());
        for (size_t j = 0; j < got.size(); ++j) CHECK(got[j] == 1.5 * local[i][j]);  // (x + 2x) / 2, exact
      }
      for (auto& v : vars) v.zero_grad();
    }
  }
}

}  // namespace file_nn_test_distributed
