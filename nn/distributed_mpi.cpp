// distributed_mpi.cpp: the MPI ProcessGroup (Open MPI), for CPU tensors; also the start-up and
// host side of the NCCL group. Every collective is MPI's non-blocking form, waited for under a
// deadline (Watchdog), so a peer that stops answering ends the run instead of hanging it.
#define OMPI_SKIP_MPICXX 1  // the C API only; its C++ bindings are deprecated
#include <mpi.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <string>
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

// The deadline of the collective in progress. MPI may be called from the main thread only
// (MPI_THREAD_FUNNELED), and it moves data only inside its calls, so the main thread blocks in
// MPI_Wait (which progresses at full speed: polling it with naps between MPI_Tests took 220 ms for
// a 5 MiB all-reduce, docs/performance.md) while this thread watches the clock. Past the deadline
// it names this rank and the collective and ends the process; mpirun then ends the others.
class Watchdog {
 public:
  Watchdog() : thread_([this] { loop(); }) {}
  ~Watchdog() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  void arm(double timeout, std::string where, const char* what, int64_t numel) {
    if (timeout <= 0) return;
    std::lock_guard<std::mutex> lock(mu_);
    deadline_ = std::chrono::steady_clock::now() + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                                          std::chrono::duration<double>(timeout));
    timeout_ = timeout, where_ = std::move(where), what_ = what, numel_ = numel, armed_ = true;
    cv_.notify_all();
  }
  void disarm() {
    std::lock_guard<std::mutex> lock(mu_);
    armed_ = false;
  }

 private:
  void loop() {
    std::unique_lock<std::mutex> lock(mu_);
    while (!stop_) {
      if (!armed_) {
        cv_.wait(lock);
        continue;
      }
      if (cv_.wait_until(lock, deadline_) == std::cv_status::timeout && armed_ &&
          std::chrono::steady_clock::now() >= deadline_) {
        std::fprintf(stderr,
                     "genvae: %s: the %s of %lld elements did not complete within %g s (--dist-timeout): another "
                     "rank stopped answering or died; this rank stops now\n",
                     where_.c_str(), what_, (long long)numel_, timeout_);
        std::fflush(nullptr);
        std::_Exit(1);
      }
    }
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::chrono::steady_clock::time_point deadline_;
  double timeout_ = 0;
  std::string where_;
  const char* what_ = "";
  int64_t numel_ = 0;
  bool armed_ = false, stop_ = false;
  std::thread thread_;
};

Watchdog& watchdog() {
  static Watchdog w;
  return w;
}

// MPI's error text for rc, as a DistributedError naming the rank and the call (MPI_ERRORS_RETURN
// is set, so a failed collective comes back as a code instead of passing as done).
void check_rc(int rc, const ProcessGroup& pg, const char* call, const char* what) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, text, &len);
  GV_THROW(DistributedError, "{}: {} of the {} failed: {}", pg.where(), call, what, std::string(text, size_t(len)));
}

void wait_request(MPI_Request& req, double timeout, const ProcessGroup& pg, const char* what, int64_t numel) {
  int done = 0;
  check_rc(MPI_Test(&req, &done, MPI_STATUS_IGNORE), pg, "MPI_Test", what);
  if (done) return;
  watchdog().arm(timeout, pg.where(), what, numel);
  const int rc = MPI_Wait(&req, MPI_STATUS_IGNORE);
  watchdog().disarm();
  check_rc(rc, pg, "MPI_Wait", what);
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
      check_rc(MPI_Test(&req_, &d, MPI_STATUS_IGNORE), pg_, "MPI_Test", "all-reduce");
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
  MPI_Comm_rank(local, &local_rank_);
  MPI_Comm_free(&local);
}

MpiGroup::~MpiGroup() {
  if (owns_) {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized) MPI_Finalize();
  }
}

std::unique_ptr<PendingReduce> MpiGroup::all_reduce_sum_async(Tensor& t) {
  const int n = mpi_count(t, "all_reduce_sum");
  MPI_Request req;
  check_rc(MPI_Iallreduce(MPI_IN_PLACE, t.raw_data(), n, mpi_type(t.dtype(), "all_reduce_sum"), MPI_SUM,
                          MPI_COMM_WORLD, &req),
           *this, "MPI_Iallreduce", "all-reduce");
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
  check_rc(MPI_Ibcast(s, 8, MPI_INT64_T, root, MPI_COMM_WORLD, &req), *this, "MPI_Ibcast", "broadcast of a shape");
  wait_request(req, timeout_, *this, "broadcast of a shape", 8);
  GV_CHECK(shape.to_vector<int64_t>() == mine, DistributedError,
           "{}: broadcast: this rank's tensor {} differs in shape or dtype from rank {}'s", where(), t.str(), root);
}

void MpiGroup::broadcast_(Tensor& t, int root) {
  check_same_shape(t, root);  // first, so that a mismatch is named instead of corrupting memory
  const int n = mpi_count(t, "broadcast");
  if (n == 0) return;
  MPI_Request req;
  check_rc(MPI_Ibcast(t.raw_data(), n, mpi_type(t.dtype(), "broadcast"), root, MPI_COMM_WORLD, &req), *this,
           "MPI_Ibcast", "broadcast");
  wait_request(req, timeout_, *this, "broadcast", n);
}

void MpiGroup::barrier() {
  MPI_Request req;
  check_rc(MPI_Ibarrier(MPI_COMM_WORLD, &req), *this, "MPI_Ibarrier", "barrier");
  wait_request(req, timeout_, *this, "barrier", 0);
}

void MpiGroup::abort(int code) {
  std::fflush(nullptr);
  MPI_Abort(MPI_COMM_WORLD, code);
  std::_Exit(code);
}

std::unique_ptr<ProcessGroup> make_mpi_group(double timeout) { return std::make_unique<MpiGroup>(timeout); }

}  // namespace gv::nn
