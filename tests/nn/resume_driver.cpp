// resume_driver.cpp: trains the run of resume_model.h, or compares two checkpoints, so that
// resume_test.sh can check exact resume across processes:
//   resume_driver --steps K --out FILE [--resume CKPT]   train K steps (after loading CKPT), save
//   resume_driver --compare A B                          exit 1 unless A and B are bit-identical
#include <cstdio>
#include <cstring>
#include <string>

#include "tests/nn/resume_model.h"

namespace {

int usage() {
  std::fprintf(stderr,
               "usage: resume_driver --steps K --out FILE [--resume CKPT]\n"
               "       resume_driver --compare A B\n");
  return 2;
}

int compare(const std::string& a, const std::string& b) {
  std::string diff = gv::resume_test::compare_files(a, b);
  if (diff.empty()) {
    std::printf("identical: %s and %s\n", a.c_str(), b.c_str());
    return 0;
  }
  std::printf("DIFFERENT: %s and %s: %s\n", a.c_str(), b.c_str(), diff.c_str());
  return 1;
}

int train(long steps, const std::string& out, const std::string& resume) {
  gv::resume_test::Run run;
  if (!resume.empty()) run.load(resume);
  run.train(steps);
  run.save(out);
  std::printf("trained to step %lld (epoch %lld, batch %lld), saved %s\n", (long long)run.state.step,
              (long long)run.state.epoch, (long long)run.state.batch_in_epoch, out.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    if (argc == 4 && std::strcmp(argv[1], "--compare") == 0) return compare(argv[2], argv[3]);
    long steps = -1;
    std::string out, resume;
    for (int i = 1; i + 1 < argc; i += 2) {
      std::string flag = argv[i];
      if (flag == "--steps") steps = std::stol(argv[i + 1]);
      else if (flag == "--out") out = argv[i + 1];
      else if (flag == "--resume") resume = argv[i + 1];
      else return usage();
    }
    if (argc % 2 == 0 || steps < 0 || out.empty()) return usage();
    return train(steps, out, resume);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "resume_driver: %s\n", e.what());
    return 1;
  }
}
