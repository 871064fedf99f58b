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
