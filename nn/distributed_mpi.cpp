// distributed_mpi.cpp: the MPI ProcessGroup (Open MPI), for CPU tensors; also the start-up and
// host side of the NCCL group. Every collective is MPI's non-blocking form, polled against the
// deadline, so a peer that stops answering becomes a DistributedError instead of a hang.
#define OMPI_SKIP_MPICXX 1  // the C API only; its C++ bindings are deprecated
#include <mpi.h>

#include <chrono>
#include <cstdio>
#include <thread>

#include "nn/distributed.h"
#include "nn/distributed_mpi.h"

namespace gv::nn {

namespace {

MPI_Datatype mpi_type(DType dt, const char* op) {
  switch (dt) {
    case DType::f32: return MPI_FLOAT;
    case DType::f64: return MPI_DOUBLE;
    case DType::i64: return MPI_INT64_T;
    default: GV_THROW(DTypeError, "{}: MPI carries float32, float64 and int64 tensors, not {}", op, dtype_name(dt));
  }
}

int mpi_count(const Tensor& t, const char* op) {
  GV_CHECK(t.device().is_cpu(), DeviceError, "{} over MPI: the tensor {} must be on the CPU", op, t.str());
  GV_CHECK(t.is_contiguous(), ValueError, "{} over MPI: the tensor {} must be contiguous", op, t.str());
  GV_CHECK(t.numel() <= INT32_MAX, ValueError, "{} over MPI: {} elements exceed MPI's count limit of 2^31-1", op,
           t.numel());
  return int(t.numel());
}

// Polls req until it completes or the deadline passes: spins briefly (a step's reduction is
// usually quick), then sleeps in growing steps so that a rank waiting on a slow peer gives its
// core back.
void wait_request(MPI_Request& req, double timeout, const ProcessGroup& pg, const char* what, int64_t numel) {
  const auto t0 = std::chrono::steady_clock::now();
  int done = 0;
  for (int spins = 0; spins < 2000 && !done; ++spins) MPI_Test(&req, &done, MPI_STATUS_IGNORE);
  auto nap = std::chrono::microseconds(20);
  while (!done) {
    const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (timeout > 0 && waited > timeout)
      GV_THROW(DistributedError,
               "{}: the {} of {} elements did not complete within {:g} s (--dist-timeout): another rank stopped "
               "answering or died",
               pg.where(), what, numel, timeout);
    std::this_thread::sleep_for(nap);
    nap = std::min(nap * 2, std::chrono::microseconds(2000));
    MPI_Test(&req, &done, MPI_STATUS_IGNORE);
  }
}

class MpiPending final : public PendingReduce {
 public:
  MpiPending(MPI_Request r, const MpiGroup& pg, int64_t n) : req_(r), pg_(pg), n_(n) {}
  void wait() override {
    if (!done_) wait_request(req_, pg_.timeout(), pg_, "all-reduce", n_);
    done_ = true;
  }
  bool test() override {
    if (!done_) {
      int d = 0;
      MPI_Test(&req_, &d, MPI_STATUS_IGNORE);
      done_ = d != 0;
    }
    return done_;
  }

 private:
  MPI_Request req_;
  const MpiGroup& pg_;
  int64_t n_;
  bool done_ = false;
};

}  // namespace

MpiGroup::MpiGroup(double timeout) {
  timeout_ = timeout;
  int inited = 0;
  MPI_Initialized(&inited);
  if (!inited) {
    int provided = 0;
    // only the main thread calls MPI; OpenMP's workers never do
    MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided);
    owns_ = true;
  }
  // errors come back as codes (checked below) instead of MPI's default of aborting silently
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
  MPI_Comm_size(MPI_COMM_WORLD, &size_);
  MPI_Comm local;
  MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &local);
  MPI_Comm_size(local, &local_size_);
  MPI_Comm_free(&local);
}

MpiGroup::~MpiGroup() {
  if (owns_) {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized) MPI_Finalize();
  }
}

void MpiGroup::check(int rc, const char* what) const {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, text, &len);
  GV_THROW(DistributedError, "{}: MPI's {} failed: {}", where(), what, std::string(text, size_t(len)));
}

std::unique_ptr<PendingReduce> MpiGroup::all_reduce_sum_async(Tensor& t) {
  const int n = mpi_count(t, "all_reduce_sum");
  MPI_Request req;
  check(MPI_Iallreduce(MPI_IN_PLACE, t.raw_data(), n, mpi_type(t.dtype(), "all_reduce_sum"), MPI_SUM,
                       MPI_COMM_WORLD, &req),
        "Iallreduce");
  return std::make_unique<MpiPending>(req, *this, n);
}

void MpiGroup::all_reduce_sum_(Tensor& t) {
  if (t.numel() == 0) return;
  all_reduce_sum_async(t)->wait();
}

void MpiGroup::check_same_shape(const Tensor& t, int root) {
  GV_CHECK(root >= 0 && root < size_, ValueError, "broadcast: root {} is not a rank of {}", root, size_);
  Tensor shape = Tensor::zeros({8}, DType::i64);
  int64_t* s = shape.data<int64_t>();
  s[0] = t.dim(), s[1] = int64_t(t.dtype());
  for (int64_t d = 0; d < std::min<int64_t>(t.dim(), 6); ++d) s[2 + d] = t.size(d);
  const std::vector<int64_t> mine = shape.to_vector<int64_t>();
  MPI_Request req;
  check(MPI_Ibcast(s, 8, MPI_INT64_T, root, MPI_COMM_WORLD, &req), "Ibcast");
  wait_request(req, timeout_, *this, "broadcast of a shape", 8);
  GV_CHECK(shape.to_vector<int64_t>() == mine, DistributedError,
           "{}: broadcast: this rank's tensor {} differs in shape or dtype from rank {}'s", where(), t.str(), root);
}

void MpiGroup::broadcast_(Tensor& t, int root) {
  check_same_shape(t, root);  // first, so that a mismatch is named instead of corrupting memory
  const int n = mpi_count(t, "broadcast");
  if (n == 0) return;
  MPI_Request req;
  check(MPI_Ibcast(t.raw_data(), n, mpi_type(t.dtype(), "broadcast"), root, MPI_COMM_WORLD, &req), "Ibcast");
  wait_request(req, timeout_, *this, "broadcast", n);
}

void MpiGroup::barrier() {
  MPI_Request req;
  check(MPI_Ibarrier(MPI_COMM_WORLD, &req), "Ibarrier");
  wait_request(req, timeout_, *this, "barrier", 0);
}

void MpiGroup::abort(int code) {
  std::fflush(nullptr);
  MPI_Abort(MPI_COMM_WORLD, code);
  std::_Exit(code);
}

std::unique_ptr<ProcessGroup> make_mpi_group(double timeout) { return std::make_unique<MpiGroup>(timeout); }

}  // namespace gv::nn
