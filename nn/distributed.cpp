// distributed.cpp: the backend-independent parts of distributed.h (the single process, the
// collectives built from the primitive ones, the choice of backend, the gradient buckets).
#include "nn/distributed.h"

#include <algorithm>
#include <bit>
#include <chrono>
#include <cstdlib>
#include <cstring>

#include "engine/ops.h"

namespace gv::nn {

#if GENVAE_MPI
std::unique_ptr<ProcessGroup> make_mpi_group(double timeout);                 // distributed_mpi.cpp
#endif
#if GENVAE_NCCL
std::unique_ptr<ProcessGroup> make_nccl_group(double timeout, int gpu);       // distributed_nccl.cpp
#endif

namespace {

class Done final : public PendingReduce {
 public:
  void wait() override {}
  bool test() override { return true; }
};

}  // namespace

std::unique_ptr<PendingReduce> ProcessGroup::all_reduce_sum_async(Tensor& t) {
  all_reduce_sum_(t);
  return std::make_unique<Done>();
}

void ProcessGroup::abort(int code) {
  std::fflush(nullptr);
  std::_Exit(code);
}

std::string ProcessGroup::where() const {
  return fmt::format("rank {} of {} ({})", rank(), world_size(), backend());
}

std::string ProcessGroup::broadcast_string(const std::string& s, int root) {
  if (world_size() == 1) return s;
  Tensor len = Tensor::from_vector<int64_t>({int64_t(s.size())}, {1});
  broadcast_(len, root);
  const int64_t n = len.data<int64_t>()[0];
  Tensor words = Tensor::zeros({(n + 7) / 8}, DType::i64);
  if (rank() == root) std::memcpy(words.raw_data(), s.data(), s.size());
  broadcast_(words, root);
  return std::string(static_cast<const char*>(words.raw_data()), size_t(n));
}

std::vector<int64_t> ProcessGroup::all_gather(const std::vector<int64_t>& mine) {
  const int64_t n = int64_t(mine.size()), p = world_size();
  if (p == 1) return mine;
  // every rank fills its own row of zeros; a sum of one value and zeros is that value exactly
  Tensor all = Tensor::zeros({p * n}, DType::i64);
  std::copy(mine.begin(), mine.end(), all.data<int64_t>() + rank() * n);
  all_reduce_sum_(all);
  return all.to_vector<int64_t>();
}

double ProcessGroup::all_reduce_max(double x) {
  if (world_size() == 1) return x;
  const std::vector<int64_t> bits = all_gather({std::bit_cast<int64_t>(x)});
  double m = x;
  for (int64_t b : bits) m = std::max(m, std::bit_cast<double>(b));
  return m;
}

std::vector<std::string> ProcessGroup::all_gather_strings(const std::string& mine) {
  if (world_size() == 1) return {mine};
  const std::vector<int64_t> lengths = all_gather({int64_t(mine.size())});
  std::vector<std::string> all(lengths.size());
  for (int r = 0; r < world_size(); ++r) all[size_t(r)] = lengths[size_t(r)] ? broadcast_string(mine, r) : std::string();
  return all;
}

int launcher_rank() {
  for (const char* v : {"OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK"})
    if (const char* s = std::getenv(v)) return std::atoi(s);
  return 0;
}

std::vector<std::string> process_group_backends() {
  std::vector<std::string> v{"single"};
#if GENVAE_MPI
  v.push_back("mpi");
#endif
#if GENVAE_NCCL
  v.push_back("nccl");
#endif
  return v;
}

bool launched_by_mpi() {
  return std::getenv("OMPI_COMM_WORLD_SIZE") != nullptr || std::getenv("PMI_SIZE") != nullptr ||
         std::getenv("PMIX_RANK") != nullptr;
}

std::string resolve_backend(const std::string& kind, bool on_gpu) {
  if (kind != "auto") return kind;
  if (!launched_by_mpi()) return "single";
  const std::vector<std::string> have = process_group_backends();
  return on_gpu && std::find(have.begin(), have.end(), "nccl") != have.end() ? "nccl" : "mpi";
}

std::unique_ptr<ProcessGroup> make_process_group(const std::string& kind, bool on_gpu, int gpu) {
  const std::vector<std::string> have = process_group_backends();
  const std::string k = resolve_backend(kind, on_gpu);
  GV_CHECK(k == "single" || k == "mpi" || k == "nccl", ValueError,
           "--dist {}: allowed values are auto, single, mpi, nccl", kind);
  GV_CHECK(std::find(have.begin(), have.end(), k) != have.end(), ValueError,
           "--dist {}: this build has no {} backend (it has {}); rebuild with meson configure -D{}=enabled{}", k, k,
           fmt::join(have, ", "), k, k == "nccl" ? " -Dmpi=enabled (CUDA and NCCL found)" : " (Open MPI installed)");
  if (k == "single") {
    const char* n = std::getenv("OMPI_COMM_WORLD_SIZE");
    GV_CHECK(!n || std::atoi(n) <= 1, ValueError,
             "--dist single: the launcher started {} processes, and each would run alone (and write the same run "
             "folder); use --dist auto or mpi", n ? n : "1");
    return std::make_unique<SingleProcess>();
  }
#if GENVAE_NCCL
  if (k == "nccl") return make_nccl_group(600, gpu);
#endif
#if GENVAE_MPI
  if (k == "mpi") return make_mpi_group(600);
#endif
  (void)gpu;
  GV_THROW(ValueError, "--dist {}: not built", k);
}

// ---- start-up and checks ----------------------------------------------------------------------

void broadcast_module(ProcessGroup& pg, Module& m, int root) {
  if (pg.world_size() == 1) return;
  for (auto& [name, v] : m.named_parameters()) {
    Tensor t = v.data().is_contiguous() ? v.data() : v.data().contiguous();
    pg.broadcast_(t, root);
    if (!t.same_storage(v.data())) v.set_data(t);
  }
  for (auto& [name, b] : m.named_buffers()) {
    Tensor t = b.contiguous().clone();
    pg.broadcast_(t, root);
    m.set_buffer(name, t);
  }
}

void broadcast_optimizer(ProcessGroup& pg, Optimizer& opt, int root) {
  if (pg.world_size() == 1) return;
  std::vector<NamedTensor> st = opt.state();
  for (auto& [name, t] : st) pg.broadcast_(t, root);
  Tensor steps = Tensor::from_vector<int64_t>({opt.steps()}, {1});
  pg.broadcast_(steps, root);
  opt.load_state(st, steps.data<int64_t>()[0]);
}

void check_same_weights(ProcessGroup& pg, const Module& m, const std::string& when) {
  if (pg.world_size() == 1) return;
  uint64_t h = 1469598103934665603ull;  // FNV-1a over the bytes
  auto mix = [&](const Tensor& t) {
    const Tensor c = t.to(Device::cpu()).contiguous();
    const auto* p = static_cast<const unsigned char*>(c.raw_data());
    const size_t n = size_t(c.numel()) * dtype_size(c.dtype());
    for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 1099511628211ull;
  };
  for (const auto& [name, v] : m.named_parameters()) mix(v.data());
  for (const auto& [name, b] : m.named_buffers())
    if (b.dtype() != DType::i64) mix(b);
  const std::vector<int64_t> all = pg.all_gather({int64_t(h)});
  for (size_t r = 1; r < all.size(); ++r)
    GV_CHECK(all[r] == all[0], DistributedError,
             "{}: {}: the weights of rank {} differ from rank 0's: the ranks have drifted apart", pg.where(), when, r);
}

// ---- gradient buckets ---------------------------------------------------------------------------

GradReducer::GradReducer(ProcessGroup& pg, std::vector<ag::Var> params, int64_t bucket_bytes, bool overlap)
    : pg_(pg), params_(std::move(params)), overlap_(overlap) {
  GV_CHECK(bucket_bytes > 0, ValueError, "GradReducer: bucket_bytes must be positive, got {}", bucket_bytes);
  // reverse parameter order: backward completes the last layers' gradients first
  for (size_t k = params_.size(); k-- > 0;) {
    const ag::Var& v = params_[k];
    const DType dt = v.dtype();
    const int64_t bytes = v.numel() * int64_t(dtype_size(dt));
    if (buckets_.empty() || buckets_.back().dtype != dt ||
        (buckets_.back().numel * int64_t(dtype_size(dt)) + bytes > bucket_bytes && buckets_.back().numel > 0)) {
      buckets_.emplace_back();
      buckets_.back().dtype = dt;
    }
    buckets_.back().params.push_back(k);
    buckets_.back().numel += v.numel();
  }
  bucket_of_.resize(params_.size());
  for (size_t b = 0; b < buckets_.size(); ++b)
    for (size_t k : buckets_[b].params) bucket_of_[k] = b;
  for (size_t k = 0; k < params_.size(); ++k) index_.push_back({params_[k].impl().get(), k});
  std::sort(index_.begin(), index_.end());
  seen_.assign(params_.size(), 0);
  has_grad_ = Tensor::zeros({int64_t(params_.size())}, DType::i64);
}

int64_t GradReducer::bytes_per_step() const {
  int64_t b = 0;
  for (const Bucket& k : buckets_) b += k.numel * int64_t(dtype_size(k.dtype));
  return b;
}

void GradReducer::pack(Bucket& b) {
  const Device dev = params_[b.params.front()].data().device();
  // kept from step to step: the gradients handed out are views of the mean, never of this buffer
  if (!b.flat.defined() || b.flat.device() != dev) b.flat = Tensor::empty({b.numel}, b.dtype, dev);
  int64_t off = 0;
  for (size_t k : b.params) {
    const ag::Var& v = params_[k];
    Tensor part = b.flat.slice(0, off, off + v.numel());
    const Tensor& g = v.impl()->grad;
    has_grad_.data<int64_t>()[k] = g.defined() ? 1 : 0;
    if (g.defined()) part.copy_(g.reshape({v.numel()}));
    else part.copy_(Tensor::zeros({1}, b.dtype, dev));  // no gradient this step: counts as zeros
    off += v.numel();
  }
}

void GradReducer::start(size_t i) {
  Bucket& b = buckets_[i];
  pack(b);
  b.pending = pg_.all_reduce_sum_async(b.flat);
}

void GradReducer::leaf_ready(const ag::Var& leaf) {
  if (!overlap_ || pg_.world_size() == 1) return;
  const void* key = leaf.impl().get();
  auto it = std::lower_bound(index_.begin(), index_.end(), std::pair<const void*, size_t>{key, 0});
  if (it == index_.end() || it->first != key) return;  // a leaf that is not one of ours
  const size_t k = it->second;
  if (!seen_[k]) {  // counted once per step
    seen_[k] = 1;
    ++buckets_[bucket_of_[k]].ready;
  }
  // start every bucket, in order, whose gradients are all complete
  while (next_start_ < buckets_.size() && buckets_[next_start_].ready == buckets_[next_start_].params.size()) {
    start(next_start_++);
    ++started_early_;
  }
  // let the transport move the buckets in flight along
  for (size_t j = 0; j < next_start_; ++j)
    if (buckets_[j].pending) buckets_[j].pending->test();
}

void GradReducer::finish() {
  const auto t0 = std::chrono::steady_clock::now();
  const int64_t p = pg_.world_size();
  if (p > 1) {
    while (next_start_ < buckets_.size()) start(next_start_++);
    // which parameters some rank had a gradient for (a host tensor: over MPI in every backend)
    pg_.all_reduce_sum_(has_grad_);
    for (Bucket& b : buckets_) {
      b.pending->wait();
      b.pending.reset();
      // the mean over the ranks: the bucket divided once, the gradients views of it
      Tensor mean = div(b.flat, double(p));
      int64_t off = 0;
      for (size_t k : b.params) {
        const ag::Var& v = params_[k];
        if (has_grad_.data<int64_t>()[k] > 0) v.set_grad(mean.slice(0, off, off + v.numel()).view(v.shape()));
        else v.zero_grad();  // no rank had one: the optimizer skips it, as it would on one process
        off += v.numel();
      }
    }
  }
  for (Bucket& b : buckets_) b.ready = 0;
  std::fill(seen_.begin(), seen_.end(), 0);
  next_start_ = 0;
  last_started_early_ = started_early_;
  started_early_ = 0;
  last_wait_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace gv::nn
