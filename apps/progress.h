// progress.h: a progress line with elapsed time and an estimate of the time left, for long loops
// in the command-line programs. On a terminal it redraws one line; otherwise it prints a line
// every few seconds, so logs stay readable.
#pragma once
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>

#include <fmt/format.h>

namespace gv::app {

class Progress {
 public:
  Progress(std::string label, int64_t total) : label_(std::move(label)), total_(total), start_(clock::now()) {}

  // Report that `done` of `total` units are finished; `extra` is appended (e.g. the loss).
  void update(int64_t done, const std::string& extra = "") {
    double el = seconds();
    bool last = done >= total_;
    if (!last && el - last_print_ < (tty_ ? 0.2 : 5.0)) return;
    last_print_ = el;
    double left = done > 0 ? el * double(total_ - done) / double(done) : 0;
    std::string line = fmt::format("{} {}/{} ({:.0f}%) {} | {:.1f}s elapsed, {:.1f}s left", label_, done, total_,
                                   100.0 * double(done) / double(total_ > 0 ? total_ : 1), extra, el, left);
    if (tty_) std::fprintf(stderr, "\r%s\033[K%s", line.c_str(), last ? "\n" : "");
    else std::fprintf(stderr, "%s\n", line.c_str());
    std::fflush(stderr);
  }
  double seconds() const { return std::chrono::duration<double>(clock::now() - start_).count(); }

 private:
  using clock = std::chrono::steady_clock;
  std::string label_;
  int64_t total_;
  clock::time_point start_;
  double last_print_ = -1e9;
  bool tty_ = isatty(STDERR_FILENO);
};

}  // namespace gv::app
