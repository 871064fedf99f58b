// dist_driver.cpp: a small data-parallel training run for tests/nn/dist_test.sh, started by
// mpirun with any number of ranks (or alone):
//   dist_driver --steps N --out FILE [--batch B] [--overlap 0|1] [--bucket-bytes K]
// An MLP (8 -> 32 -> 32 -> 1, tanh, float64) regresses a fixed random data set with SGD and
// momentum, through nn::train_step with a GradReducer; each rank takes its slice of every global
// batch (BatchLoader::set_shard). Rank 0 writes FILE as text, one "key value..." line each:
//   loss S l1 ... lN          the global batch's mean loss per step (the ranks' means averaged)
//   first_losses S e1 ... eB  the per-example losses of the first batch, gathered in batch order,
//                             as hex bit patterns (the forward pass is compared bit for bit)
//   weights S w1 ...          every parameter after N steps, as %.17g
//   buckets K / world P / started_early E (buckets started during backward) / rank_wait_s T
// The model and data have no random draws after initialization, so 1 rank on the whole batch
// and P ranks on slices of it compute the same thing up to the order of the gradient sums.
#include <bit>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "autograd/ops.h"
#include "engine/ops.h"
#include "engine/random.h"
#include "nn/data/loader.h"
#include "nn/distributed.h"
#include "nn/layers.h"
#include "nn/optim.h"
#include "nn/train_step.h"

using namespace gv;

namespace {

constexpr int64_t kExamples = 96, kIn = 8, kHidden = 32;

int usage() {
  std::fprintf(stderr, "usage: dist_driver --steps N --out FILE [--batch B] [--overlap 0|1] [--bucket-bytes K]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  long steps = -1, batch = 24, overlap = 1, bucket_bytes = 4 << 20;
  std::string out;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--steps") steps = std::stol(argv[i + 1]);
    else if (flag == "--out") out = argv[i + 1];
    else if (flag == "--batch") batch = std::stol(argv[i + 1]);
    else if (flag == "--overlap") overlap = std::stol(argv[i + 1]);
    else if (flag == "--bucket-bytes") bucket_bytes = std::stol(argv[i + 1]);
    else return usage();
  }
  if (argc % 2 == 0 || steps < 0 || out.empty()) return usage();
  std::unique_ptr<nn::ProcessGroup> pg;
  try {
    pg = nn::make_process_group("auto");
    const int64_t P = pg->world_size(), R = pg->rank();
    Generator g(11);
    data::Dataset ds;
    ds.images = normal({kExamples, kIn}, g, 0, 1, DType::f64);
    const Tensor target = sum(ds.images, {1}, true) * 0.25;  // (N, 1): a smooth function to regress
    ds.labels = Tensor::arange(kExamples);                   // the item's index, to look its target up
    nn::Sequential model{std::make_shared<nn::Linear>(kIn, kHidden, g, true, DType::f64),
                         std::make_shared<nn::Tanh>(),
                         std::make_shared<nn::Linear>(kHidden, kHidden, g, true, DType::f64),
                         std::make_shared<nn::Tanh>(),
                         std::make_shared<nn::Linear>(kHidden, 1, g, true, DType::f64)};
    nn::SGD opt(model.named_parameters(), 0.05, 0.9);
    nn::GradReducer reducer(*pg, model.parameters(), bucket_bytes, overlap != 0);
    data::BatchLoader loader(ds, batch, true, 5, true);
    loader.set_shard(R, P);

    std::vector<double> losses;
    std::vector<int64_t> first(size_t(batch), 0);
    data::Batch b;
    for (long s = 0; s < steps; ++s) {
      if (!loader.next(b)) loader.next(b);
      const Tensor t = gather(target, 0, b.labels.reshape({b.labels.numel(), 1}));
      Tensor per_example;
      const nn::StepResult r = nn::train_step(
          opt,
          [&] {
            ag::Var y = model(ag::Var(b.images));
            ag::Var e = ag::square(y - ag::Var(t));  // (b, 1)
            per_example = e.data();
            return ag::mean(e);
          },
          std::numeric_limits<double>::infinity(), &reducer);
      // the global mean: the ranks' means (equal slices) averaged
      Tensor l = Tensor::from_vector<double>({r.loss}, {1});
      pg->all_reduce_sum_(l);
      losses.push_back(l.data<double>()[0] / double(P));
      if (s == 0) {
        const std::vector<double> mine = per_example.to_vector<double>();
        std::vector<int64_t> bits;
        for (double v : mine) bits.push_back(std::bit_cast<int64_t>(v));
        first = pg->all_gather(bits);  // rank-major = the batch's order
      }
    }
    if (R == 0) {
      std::ofstream f(out);
      f << "world " << P << "\nbuckets " << reducer.buckets() << "\nstarted_early " << reducer.started_early()
        << "\nrank_wait_s " << reducer.last_wait_seconds()
        << "\nloss " << losses.size();
      char buf[64];
      for (double v : losses) std::snprintf(buf, sizeof buf, " %.17g", v), f << buf;
      f << "\nfirst_losses " << first.size();
      for (int64_t v : first) std::snprintf(buf, sizeof buf, " %016llx", (unsigned long long)v), f << buf;
      std::vector<double> w;
      for (const ag::Var& v : model.parameters())
        for (double x : v.data().to_vector<double>()) w.push_back(x);
      f << "\nweights " << w.size();
      for (double v : w) std::snprintf(buf, sizeof buf, " %.17g", v), f << buf;
      f << "\n";
      GV_CHECK(f.good(), IOError, "dist_driver: cannot write {}", out);
    }
    pg->barrier();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "dist_driver: %s: %s\n", pg ? pg->where().c_str() : "start-up", e.what());
    if (pg && pg->world_size() > 1) pg->abort(1);
    return 1;
  }
  return 0;
}
